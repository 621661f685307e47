/**
 * HTTP messages -> OpenTelemetry semantic-convention attributes. Query values
 * are redacted by default: the agent is privileged and URLs carry secrets.
 */
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import { ATTR_HTTP_REQUEST_BODY_SIZE, ATTR_HTTP_RESPONSE_BODY_SIZE } from '@opentelemetry/semantic-conventions/incubating';
import { headerValue, type Http1Request, type Http1Response } from './messages';
import type { Address, RedactionOptions } from '../module';
import type { Attributes, SpanDraft } from '../spans';
import { redactQuery } from './secrets';

const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE', 'QUERY']);

export interface Target {
  path: string;
  query?: string;
  /** Host from an absolute-form target (a request to a proxy). */
  host?: string;
}

export function splitTarget(target: string): Target {
  let rest = target;
  let host: string | undefined;
  // Origin-form ("/path?q"), nearly every request, cannot be absolute-form: no regex for it.
  const absolute = target.charCodeAt(0) === 0x2f ? null : /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)(.*)$/.exec(target);
  if (absolute) {
    host = absolute[1];
    rest = absolute[2] || '/';
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  const out: Target = q < 0 ? { path: rest } : { path: rest.slice(0, q), query: rest.slice(q + 1) };
  if (host !== undefined) out.host = host;
  return out;
}

/** Parsed Host values: a client names the same few hosts on every request. Entries are never changed. */
const recentHosts = new Map<string, { host?: string; port?: number }>();

function hostAndPort(hostHeader: string | undefined): { host?: string; port?: number } {
  if (!hostHeader) return {};
  let parsed = recentHosts.get(hostHeader);
  if (parsed === undefined) {
    if (recentHosts.size >= 1024) recentHosts.clear();
    recentHosts.set(hostHeader, (parsed = parseHost(hostHeader)));
  }
  return parsed;
}

function parseHost(hostHeader: string): { host?: string; port?: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader.trim());
  if (!m) return {};
  return { host: m[1]!.replace(/^\[|\]$/g, ''), ...(m[2] ? { port: Number(m[2]) } : {}) };
}

export function normalizedMethod(method: string): { method: string; original?: string } {
  if (KNOWN_METHODS.has(method)) return { method };
  const upper = method.toUpperCase();
  return KNOWN_METHODS.has(upper) ? { method: upper, original: method } : { method: '_OTHER', original: method };
}

/** Attributes known once the request is seen. */
export function requestAttributes(
  kind: 'server' | 'client',
  req: Http1Request,
  local: Address | undefined,
  remote: Address | undefined,
  redaction: RedactionOptions,
  tls = false,
): Attributes {
  const scheme = tls ? 'https' : 'http';
  const a: Attributes = {};
  const { method, original } = normalizedMethod(req.method);
  a[ATTR_HTTP_REQUEST_METHOD] = method;
  if (original !== undefined) a[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = original;
  const target = splitTarget(req.target);
  const query = target.query === undefined ? undefined : redaction.queryValues ? redactQuery(target.query) : target.query;
  const host = hostAndPort(target.host ?? headerValue(req.headers, 'host'));
  const version = req.version === 'HTTP/1.1' ? '1.1' : /^HTTP\/(\d\.\d)$/.exec(req.version)?.[1];
  if (kind === 'server') {
    a[ATTR_URL_PATH] = target.path;
    if (query !== undefined) a[ATTR_URL_QUERY] = query;
    a[ATTR_URL_SCHEME] = scheme;
    if (host.host ?? local?.addr) a[ATTR_SERVER_ADDRESS] = (host.host ?? local?.addr)!;
    if (host.port ?? local?.port) a[ATTR_SERVER_PORT] = (host.port ?? local?.port)!;
    if (remote) {
      a[ATTR_CLIENT_ADDRESS] = remote.addr;
      a[ATTR_CLIENT_PORT] = remote.port;
    }
  } else {
    const authority = target.host ?? headerValue(req.headers, 'host') ?? (remote ? `${remote.addr}:${remote.port}` : '');
    a[ATTR_URL_FULL] = `${scheme}://${authority}${target.path}${query !== undefined ? `?${query}` : ''}`;
    if (host.host ?? remote?.addr) a[ATTR_SERVER_ADDRESS] = (host.host ?? remote?.addr)!;
    const port = host.port ?? remote?.port;
    if (port) a[ATTR_SERVER_PORT] = port;
  }
  if (remote) {
    a[ATTR_NETWORK_PEER_ADDRESS] = remote.addr;
    a[ATTR_NETWORK_PEER_PORT] = remote.port;
  }
  if (version) a[ATTR_NETWORK_PROTOCOL_VERSION] = version;
  const agent = headerValue(req.headers, 'user-agent');
  if (agent !== undefined && kind === 'server') a[ATTR_USER_AGENT_ORIGINAL] = agent;
  if (req.bodyBytes > 0) a[ATTR_HTTP_REQUEST_BODY_SIZE] = req.bodyBytes;
  return a;
}

/** Fill in what the response tells: status code, span status, body size. */
export function applyResponse(span: SpanDraft, res: Http1Response): void {
  span.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = res.status;
  if (res.bodyBytes > 0) span.attributes[ATTR_HTTP_RESPONSE_BODY_SIZE] = res.bodyBytes;
  // Server spans fail on 5xx only: a 4xx is the client's mistake (OTel HTTP conventions).
  const failed = res.status >= 500 || (span.kind === 'client' && res.status >= 400);
  if (failed) {
    span.status = { code: 'error' };
    span.attributes[ATTR_ERROR_TYPE] = String(res.status);
  }
}

export function spanName(kind: 'server' | 'client', req: Http1Request, route?: string): string {
  const { method } = normalizedMethod(req.method);
  const name = method === '_OTHER' ? 'HTTP' : method;
  return kind === 'server' && route ? `${name} ${route}` : name;
}
