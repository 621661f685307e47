/**
 * What the agent hides by default: it is privileged and sees other programs'
 * secrets. URL query values, and the values of headers that carry credentials.
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

export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER_LENGTHS.has(name.length) && SECRET_HEADERS.has(name.toLowerCase());
}

export function redactHeaders(headers: ReadonlyArray<readonly [string, string]>): Array<[string, string]> {
  return headers.map(([n, v]) => [n, isSecretHeader(n) ? REDACTED : v]);
}
