/**
 * Replay: a capture's records through the pipeline into one output format.
 * Used by `loupe replay`, `make demo` and the replay tests.
 */
import { openCapture } from '../sources/capture-file';
import type { Span } from '../correlator/span';
import type { ExportOptions } from '../export/export-config';
import { mergeCaptures, type HostClock } from './merge';
import { OutputPipeline, type RunSummary, type SpanFormat } from './output';

/** A replay of a file, a step per batch of records; its return value is the summary. */
function* replaying(
  file: string,
  format: SpanFormat,
  write: (text: string) => void,
  exports: ExportOptions | undefined,
  onProgress: ((p: { done: number; total: number }) => void) | undefined,
): Generator<OutputPipeline, RunSummary> {
  const source = openCapture(file);
  const replay = new OutputPipeline(source.header, format, write, exports);
  try {
    for (const batch of source.batches()) {
      replay.pushRecords(batch, file);
      onProgress?.(source.progress());
      yield replay;
    }
  } catch (e) {
    replay.finish();
    throw e;
  }
  return replay.finish();
}

/**
 * Replay a capture file. On a corrupt or truncated file the spans from the
 * records before the fault are still written, then the CaptureError is thrown.
 */
export function replayFile(
  file: string,
  format: SpanFormat,
  write: (text: string) => void,
  exports?: ExportOptions,
  onProgress?: (p: { done: number; total: number }) => void,
): RunSummary {
  const steps = replaying(file, format, write, exports, onProgress);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * replayFile for a replay that exports over OTLP: between batches of records
 * it waits while the export queue is more than half full, so a capture of any
 * size reaches the collector whole (a replay that never yields filled the
 * queue in a moment and dropped all but its last spans).
 */
export async function replayFileExporting(
  file: string,
  format: SpanFormat,
  write: (text: string) => void,
  exports: ExportOptions,
  onProgress?: (p: { done: number; total: number }) => void,
): Promise<RunSummary> {
  const steps = replaying(file, format, write, exports, onProgress);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await step.value.exporters?.room();
  }
}

/**
 * Captures of several hosts replayed as one (see merge.ts): all their records
 * on one timeline into one pipeline, and each host's clock offset.
 */
export function replayHosts(files: string[], format: SpanFormat | 'spans', write: (text: string) => void): { summary: RunSummary; hosts: HostClock[]; spans: readonly Span[] } {
  const merged = mergeCaptures(files);
  const replay = new OutputPipeline(merged.header, format, write);
  replay.pushEvents(merged.events);
  const summary = replay.finish();
  return { summary, hosts: merged.hosts, spans: format === 'spans' ? replay.spans : [] };
}

/** All spans of a capture, or of several hosts' captures merged, for the views (`loupe view`, `loupe report`). */
export function spansOfCaptures(files: string[]): { spans: Span[]; summary: RunSummary; hosts?: HostClock[] } {
  if (files.length === 1) return spansOfCapture(files[0]!);
  const { spans, summary, hosts } = replayHosts(files, 'spans', () => {});
  return { spans: [...spans], summary, hosts };
}

/** All spans of a capture, for the views (`loupe view`, `loupe report`). */
export function spansOfCapture(file: string): { spans: Span[]; summary: RunSummary } {
  const source = openCapture(file);
  const replay = new OutputPipeline(source.header, 'spans', () => {});
  for (const batch of source.batches()) replay.pushRecords(batch, file);
  const summary = replay.finish();
  return { spans: [...replay.spans], summary };
}
