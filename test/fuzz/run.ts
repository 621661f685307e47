/**
 * One fuzzing campaign per parser: mutated conversations fed whole, at
 * random splits, and as the kernel copies them (cut records with gaps). What
 * counts against a parser: any exception, and any split whose messages differ
 * from the whole feed's (after errors too).
 */
import { createParser } from '../../src/parsers/registry';
import type { MessageBase, ProtocolParser } from '../../src/parsers/types';
import { runCopied, runTurns, shape, type Turn } from '../parser-harness';
import { cuts, mutate, Rng } from './mutate';

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
}

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
const hexOf = (turns: Turn[]) => turns.map((t) => `${t.side[0]}:${t.bytes.toString('hex')}`).join(' ');

function kindOf(e: unknown): { kind: string; detail: string } {
  const err = e instanceof Error ? e : new Error(String(e));
  const frame = (err.stack ?? '').split('\n').find((l) => l.includes('/src/'))?.trim().replace(/^at /, '').replace(/\(.*\/src\//, '(src/') ?? '';
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
  for (let i = 0; i < inputs; i++) {
    const turns = mutate(rng.pick(seeds), rng, seeds);
    let whole: string | undefined;
    try {
      whole = json(shape(runTurns(make, turns)));
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
      runCopied(make, turns, rng.pick([8, 64, 512]), rng.pick([Infinity, 100, 1000]));
    } catch (e) {
      fault(e, turns);
    }
  }
  return report;
}
