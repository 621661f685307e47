/** W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/). */

export interface TraceContext {
  traceId: string;
  parentId: string;
  flags: number;
  traceState?: string;
}

const HEX = /^[0-9a-f]+$/;

/** Parse a traceparent value; undefined when it is not valid (then a new trace starts, per the spec). */
export function parseTraceparent(value: string | undefined): TraceContext | undefined {
  if (value === undefined) return undefined;
  const parts = value.trim().split('-');
  if (parts.length < 4) return undefined;
  const [version, traceId, parentId, flags] = parts as [string, string, string, string];
  if (version.length !== 2 || !HEX.test(version) || version === 'ff') return undefined;
  if (version === '00' && parts.length !== 4) return undefined;
  if (traceId.length !== 32 || !HEX.test(traceId) || /^0+$/.test(traceId)) return undefined;
  if (parentId.length !== 16 || !HEX.test(parentId) || /^0+$/.test(parentId)) return undefined;
  if (flags.length !== 2 || !HEX.test(flags)) return undefined;
  return { traceId, parentId, flags: parseInt(flags, 16) };
}

export function formatTraceparent(traceId: string, spanId: string, flags = 1): string {
  return `00-${traceId}-${spanId}-${flags.toString(16).padStart(2, '0')}`;
}
