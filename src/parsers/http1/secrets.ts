/**
 * What the agent hides by default: it is privileged and sees other programs'
 * secrets. URL query values, and the values of every header not known to be
 * harmless (an allowlist: custom headers carry tokens — X-Access-Token,
 * Referer and Location with tokens in their URLs — more often than not).
 * Headers that always carry credentials are masked wherever they are met,
 * also in bytes whose message start was never seen.
 */
export const REDACTED = 'REDACTED';

const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'x-auth-token']);
/** No longer name is a secret header's. */
export const SECRET_HEADER_MAX_LENGTH = Math.max(...[...SECRET_HEADERS].map((h) => h.length));
/** The lengths secret header names have: a name of another length needs no lower-casing and lookup. */
export const SECRET_HEADER_LENGTHS: ReadonlySet<number> = new Set([...SECRET_HEADERS].map((h) => h.length));

export function redactQuery(query: string): string {
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq < 0 ? pair : `${pair.slice(0, eq)}=${REDACTED}`;
    })
    .join('&');
}

/** A request target with its query values redacted (fragment dropped). */
export function redactTarget(target: string): string {
  const q = target.indexOf('?');
  if (q < 0) return target;
  const hash = target.indexOf('#', q);
  return `${target.slice(0, q)}?${redactQuery(target.slice(q + 1, hash < 0 ? undefined : hash))}`;
}

/** Headers that always carry credentials: masked wherever a line names one. */
export function isCredentialHeader(name: string): boolean {
  return SECRET_HEADER_LENGTHS.has(name.length) && SECRET_HEADERS.has(name.toLowerCase());
}

/**
 * Headers whose values say how a message is framed, negotiated, cached or
 * traced, and nothing of who sent it: kept. Every other header's value is
 * masked unless --no-redact. The one list: captures, parse output, spans.
 */
export const HARMLESS_HEADERS: ReadonlySet<string> = new Set([
  ':method',
  ':scheme',
  ':authority',
  ':path',
  ':status',
  ':protocol',
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
  'accept-ranges',
  'access-control-allow-credentials',
  'access-control-allow-headers',
  'access-control-allow-methods',
  'access-control-allow-origin',
  'access-control-expose-headers',
  'access-control-max-age',
  'access-control-request-headers',
  'access-control-request-method',
  'age',
  'allow',
  'alt-svc',
  'cache-control',
  'connection',
  'content-encoding',
  'content-language',
  'content-length',
  'content-range',
  'content-type',
  'date',
  'etag',
  'expect',
  'expires',
  'host',
  'http2-settings',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'keep-alive',
  'last-modified',
  'max-forwards',
  'origin',
  'pragma',
  'priority',
  'range',
  'retry-after',
  'server',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'vary',
  'via',
  'x-content-type-options',
  'x-forwarded-proto',
  'x-frame-options',
  'x-request-id',
  'x-xss-protection',
  'traceparent',
  'tracestate',
  'grpc-accept-encoding',
  'grpc-encoding',
  'grpc-message',
  'grpc-status',
  'grpc-timeout',
]);
/** No harmless header's name is longer: a longer one is masked without lower-casing it. */
export const HARMLESS_HEADER_MAX_LENGTH = Math.max(...[...HARMLESS_HEADERS].map((h) => h.length));

export function isHarmlessHeader(name: string): boolean {
  return name.length <= HARMLESS_HEADER_MAX_LENGTH && HARMLESS_HEADERS.has(name.toLowerCase());
}

/** A header value Loupe hides by default: any header not on the allowlist. */
export function isSecretHeader(name: string): boolean {
  return !isHarmlessHeader(name);
}

export function redactHeaders(headers: ReadonlyArray<readonly [string, string]>): Array<[string, string]> {
  return headers.map(([n, v]) => [n, isSecretHeader(n) ? REDACTED : v]);
}
