/**
 * http.route for server spans and metrics: a configured pattern when one
 * matches (`/factorial/{n}`), nothing for ignored paths, else a heuristic that
 * keeps cardinality bounded: path segments that look like identifiers —
 * numbers, UUIDs, hex hashes, long random tokens, dates, emails — become
 * `{id}` (or a more specific name), so `/users/42/orders/9f86d08...` is
 * `/users/{id}/orders/{hash}`.
 */

export interface RouteConfig {
  /** Patterns with `{name}` segments (one segment each) or a trailing `{*rest}`. */
  patterns?: string[];
  /** Paths (patterns too) that get no route and no metrics: health checks, metrics scrapes. */
  ignore?: string[];
  /** Apply the heuristic to unmatched paths (default on); off: unmatched paths get no route. */
  heuristic?: boolean;
}

interface Compiled {
  pattern: string;
  re: RegExp;
  /** Literal segments count: the most specific match wins. */
  literals: number;
}

function compile(pattern: string): Compiled {
  const segments = pattern.split('/');
  let literals = 0;
  const parts = segments.map((seg) => {
    if (/^\{\*[^}]*\}$/.test(seg)) return '.*';
    if (/^\{[^}]+\}$/.test(seg)) return '[^/]+';
    if (seg === '*') return '[^/]+';
    literals++;
    return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return { pattern, re: new RegExp(`^${parts.join('/')}/?$`), literals };
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const HEX_HASH = /^(?:0x)?[0-9a-f]{16,}$/i;
const NUMBER = /^-?\d+(?:\.\d+)?$/;
const DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?/;
const EMAIL = /^[^@/]+@[^@/]+\.[a-z]{2,}$/i;
/** Segments with digits mixed into letters, or long base64-ish tokens, are identifiers too. */
function looksRandom(seg: string): boolean {
  if (seg.length >= 20 && /^[A-Za-z0-9_=-]+$/.test(seg) && /\d/.test(seg)) return true;
  const digits = seg.replace(/[^0-9]/g, '').length;
  return seg.length >= 6 && digits >= 3 && digits / seg.length >= 0.3 && /^[A-Za-z0-9_.-]+$/.test(seg);
}

/** One path segment as the heuristic names it. */
export function generalizeSegment(raw: string): string {
  let seg = raw;
  try {
    seg = decodeURIComponent(raw);
  } catch {
    /* keep it raw */
  }
  if (seg === '') return seg;
  if (NUMBER.test(seg)) return '{id}';
  if (UUID.test(seg)) return '{uuid}';
  if (HEX_HASH.test(seg)) return '{hash}';
  if (DATE.test(seg)) return '{date}';
  if (EMAIL.test(seg)) return '{email}';
  if (looksRandom(seg)) return '{id}';
  return raw;
}

export function heuristicRoute(path: string): string {
  const clean = path.split('?')[0]!.split('#')[0]!;
  if (clean === '' || clean === '/') return '/';
  const segments = clean.split('/').map(generalizeSegment);
  // Deep paths are usually files or data: past 8 segments the rest collapses.
  if (segments.length > 9) return `${segments.slice(0, 9).join('/')}/{*rest}`;
  return segments.join('/');
}

const RECENT_ROUTES = 4096;

export class Router {
  private readonly patterns: Compiled[];
  private readonly ignored: Compiled[];
  private readonly heuristic: boolean;

  constructor(config: RouteConfig = {}) {
    this.patterns = (config.patterns ?? []).map(compile).sort((a, b) => b.literals - a.literals);
    this.ignored = (config.ignore ?? []).map(compile);
    this.heuristic = config.heuristic ?? true;
  }

  /** Routes of recent paths: a service is asked about the same few paths again and again. */
  private readonly recent = new Map<string, string | undefined>();

  /** The route of a request path; undefined when ignored (or unmatched with the heuristic off). */
  route(path: string): string | undefined {
    if (this.recent.has(path)) return this.recent.get(path);
    const route = this.routeOf(path);
    if (this.recent.size >= RECENT_ROUTES) this.recent.clear();
    this.recent.set(path, route);
    return route;
  }

  private routeOf(path: string): string | undefined {
    const clean = path.split('?')[0]!.split('#')[0]!;
    if (this.ignored.some((c) => c.re.test(clean))) return undefined;
    const hit = this.patterns.find((c) => c.re.test(clean));
    if (hit) return hit.pattern;
    return this.heuristic ? heuristicRoute(clean) : undefined;
  }

  isIgnored(path: string): boolean {
    const clean = path.split('?')[0]!.split('#')[0]!;
    return this.ignored.some((c) => c.re.test(clean));
  }
}
