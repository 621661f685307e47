/**
 * One fuzzing campaign per parser: mutated conversations fed whole, at
 * random splits, and as the kernel copies them (cut records with gaps). What
 * counts against a parser: any exception, any split whose messages differ
 * from the whole feed's (after errors too), and an error without a code of
 * its module's taxonomy.
 */
import { createParser, moduleOf } from '../../src/parsers/protocols';
import type { MessageBase, ProtocolParser } from '../../src/parsers/types';
import { runCopied, runTurns, shape, type Turn } from '../parser-harness';
import { cuts, mutate, Rng } from './mutate';
import { StreamMasker } from '../../src/security/redact-payload';

export interface Finding {
  count: number;
  /** The first input that showed it, as hex per turn ("c:..." / "s:..."). */
  example: string;
  detail: string;
}

export interface FuzzReport {
  protocol: string;
  inputs: number;
  /** Exceptions by kind (error name, message without its numbers, top frame in src/). */
  exceptions: Map<string, Finding>;
  splitDiffs: Finding | undefined;
  /** Messages with an error whose parseErrorCode is missing or not of the module's taxonomy. */
  uncoded?: Finding;
}

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
const hexOf = (turns: Turn[]) => turns.map((t) => `${t.side[0]}:${t.bytes.toString('hex')}`).join(' ');

function kindOf(e: unknown): { kind: string; detail: string } {
  const err = e instanceof Error ? e : new Error(String(e));
  const frame =
    (err.stack ?? '')
      .split('\n')
      .find((l) => l.includes('/src/'))
      ?.trim()
      .replace(/^at /, '')
      .replace(/\(.*\/src\//, '(src/') ?? '';
  return { kind: `${err.name}: ${err.message.replace(/\d+/g, 'N')} @ ${frame.replace(/:\d+\)$/, ')')}`, detail: `${err.message} @ ${frame}` };
}

export function fuzzParser(protocol: string, seeds: Turn[][], inputs: number, seed: number): FuzzReport {
  const make = () => createParser(protocol) as ProtocolParser<MessageBase>;
  const rng = new Rng(seed);
  const report: FuzzReport = { protocol, inputs, exceptions: new Map(), splitDiffs: undefined };
  const fault = (e: unknown, turns: Turn[]) => {
    const { kind, detail } = kindOf(e);
    const f = report.exceptions.get(kind);
    if (f) f.count++;
    else report.exceptions.set(kind, { count: 1, example: hexOf(turns), detail });
  };
  const codes = new Set(Object.values(moduleOf(protocol)?.parseErrors ?? {}));
  /** A message with an error but no code of the module's taxonomy: the first input that shows it. */
  const checkCodes = (messages: MessageBase[], turns: Turn[]) => {
    const bad = messages.find((m) => m.error !== undefined && !codes.has(m.parseErrorCode ?? ''));
    if (!bad) return;
    if (report.uncoded) report.uncoded.count++;
    else report.uncoded = { count: 1, example: hexOf(turns), detail: `${bad.error} (code ${bad.parseErrorCode ?? 'none'})` };
  };
  for (let i = 0; i < inputs; i++) {
    const turns = mutate(rng.pick(seeds), rng, seeds);
    let whole: string | undefined;
    try {
      const messages = runTurns(make, turns);
      checkCodes(messages, turns);
      whole = json(shape(messages));
    } catch (e) {
      fault(e, turns);
    }
    try {
      const split = json(shape(runTurns(make, turns, cuts(rng, 3 * turns.length))));
      if (whole !== undefined && split !== whole) {
        // The shortest input that shows it is the one to read.
        const example = hexOf(turns);
        const detail = `whole ${whole} / split ${split}`;
        if (!report.splitDiffs) report.splitDiffs = { count: 1, example, detail };
        else {
          report.splitDiffs.count++;
          if (example.length < report.splitDiffs.example.length) Object.assign(report.splitDiffs, { example, detail });
        }
      }
    } catch (e) {
      fault(e, turns);
    }
    try {
      checkCodes(runCopied(make, turns, rng.pick([8, 64, 512]), rng.pick([Infinity, 100, 1000])), turns);
    } catch (e) {
      fault(e, turns);
    }
  }
  return report;
}

/**
 * The payload masker as the live agent runs it (src/security): both directions of a connection
 * sharing what they learn of the socket, each record masked in place. What counts against it: any
 * exception, and any split whose masked bytes differ from the whole feed's (a capture must not keep
 * other bytes because the kernel cut them otherwise).
 */
export interface MaskerReport extends FuzzReport {
  /** Inputs whose start named no protocol, so masking was decided per record (StreamMasker.decidedPerRecord). */
  perRecord: number;
  /** Split differences among those: expected of per-record decisions, counted apart. */
  perRecordSplitDiffs: number;
}

export function fuzzMasker(protocol: string, seeds: Turn[][], inputs: number, seed: number): MaskerReport {
  const rng = new Rng(seed);
  const report: MaskerReport = { protocol, inputs, exceptions: new Map(), splitDiffs: undefined, perRecord: 0, perRecordSplitDiffs: 0 };
  let perRecord = false;
  const run = (turns: Turn[], cutsOf: (length: number) => number[]): Buffer[] => {
    const socket = {};
    const maskers = { client: new StreamMasker(socket), server: new StreamMasker(socket) };
    const out = turns.map((t) => {
      const bytes = Buffer.from(t.bytes);
      const points = [...new Set([0, ...cutsOf(bytes.length).map((c) => c % (bytes.length + 1)), bytes.length])].sort((a, b) => a - b);
      for (let i = 0; i + 1 < points.length; i++) maskers[t.side].mask(bytes.subarray(points[i]!, points[i + 1]!));
      return bytes;
    });
    perRecord = maskers.client.decidedPerRecord || maskers.server.decidedPerRecord;
    return out;
  };
  for (let i = 0; i < inputs; i++) {
    const turns = mutate(rng.pick(seeds), rng, seeds);
    try {
      const whole = run(turns, () => []);
      const wholePerRecord = perRecord;
      const pieces = cuts(rng, 3);
      const split = run(turns, () => pieces);
      const differs = whole.findIndex((b, k) => !b.equals(split[k]!));
      if (wholePerRecord || perRecord) {
        report.perRecord++;
        if (differs >= 0) report.perRecordSplitDiffs++;
      } else if (differs >= 0) {
        const example = hexOf(turns);
        const detail = `turn ${differs}: whole ${whole[differs]!.toString('hex')} / split at ${pieces.join(',')} ${split[differs]!.toString('hex')}`;
        if (!report.splitDiffs) report.splitDiffs = { count: 1, example, detail };
        else {
          report.splitDiffs.count++;
          if (example.length < report.splitDiffs.example.length) Object.assign(report.splitDiffs, { example, detail });
        }
      }
    } catch (e) {
      const { kind, detail } = kindOf(e);
      const f = report.exceptions.get(kind);
      if (f) f.count++;
      else report.exceptions.set(kind, { count: 1, example: hexOf(turns), detail });
    }
  }
  return report;
}
