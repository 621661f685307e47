/** The span model the correlator produces and every sink reads. */
import type { AttributeValue, MetricFamily, SpanKind, SpanStatus } from '../parsers/spans';

/** A span this one links to (OTel span link): its trace and span id. */
export interface SpanLink {
  traceId: string;
  spanId: string;
  traceState: string;
}

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
  status: SpanStatus;
  /**
   * Other spans this one is causally linked to without being their child: a consumer's links to the
   * producers of the messages it received (see Correlator.messageLinks). Absent when there are none.
   */
  links?: SpanLink[];
  /** The RED histogram the span counts in (its protocol module says); none for a phase. Not exported. */
  family?: MetricFamily;
}
