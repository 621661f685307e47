import type { MessageBase } from '../types';

/** Header fields in wire order, names as sent. */
export type HeaderList = Array<[name: string, value: string]>;

export interface Http1Request extends MessageBase {
  protocol: 'http1';
  kind: 'request';
  method: string;
  target: string;
  version: string;
  headers: HeaderList;
  bodyBytes: number;
  /** A chunked body: its chunks (the last, empty one not counted), and the trailer fields after them, apart from the headers. */
  chunks?: number;
  trailers?: HeaderList;
}

export interface Http1Response extends MessageBase {
  protocol: 'http1';
  kind: 'response';
  version: string;
  status: number;
  reason: string;
  headers: HeaderList;
  bodyBytes: number;
  /** A chunked body: its chunks (the last, empty one not counted), and the trailer fields after them, apart from the headers. */
  chunks?: number;
  trailers?: HeaderList;
}

export type Http1Message = Http1Request | Http1Response;

export function headerValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (n.toLowerCase() === lower) return v;
  return undefined;
}
