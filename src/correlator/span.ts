/** The span model the correlator produces and every sink reads. */

/** OTel's span kinds: a request served or made, a message sent (producer) or received and handled (consumer), a phase. */
export type SpanKind = 'server' | 'client' | 'producer' | 'consumer' | 'internal';
export type AttributeValue = string | number | boolean;

export interface Span {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  /** The parent came from a header (another process or host), not from a span we made. */
  parentIsRemote: boolean;
  traceState: string;
  /**
   * The sampled flag of the traceparent this trace came in with, passed on
   * from parent to child span; undefined in a trace that began here (a
   * sampler decides those by trace id, src/export/sampling.ts).
   */
  remoteSampled?: boolean;
  name: string;
  kind: SpanKind;
  /** Kernel monotonic ns; sinks add the capture's boot time for wall-clock time. */
  startNs: bigint;
  endNs: bigint;
  service: string;
  pid: number;
  attributes: Record<string, AttributeValue>;
  status: { code: 'unset' | 'ok' | 'error'; message?: string };
}
