/**
 * The fuzz targets, one per parser, at a fixed budget (`make fuzz` runs them
 * longer: scripts/fuzz.ts). Seeds are the committed captures' conversations
 * and synthetic messages they lack; the generator is seeded, so a failure
 * here fails the same way again.
 */
import { describe, expect, it } from 'vitest';
import { hasParser, PROTOCOLS } from '../src/parsers/protocols';
import { fuzzMasker, fuzzParser } from './fuzz/run';
import { allSeeds } from './fuzz/seeds';

const INPUTS = Number(process.env.LOUPE_FUZZ_INPUTS ?? 5000);
const seeds = allSeeds();

describe('fuzz targets', () => {
  it('has seeds for every parser', () => {
    expect(PROTOCOLS.filter((p) => hasParser(p) && !seeds.get(p)?.length)).toEqual([]);
  });

  for (const protocol of PROTOCOLS.filter(hasParser)) {
    it(`${protocol}: ${INPUTS} mutated conversations throw nothing, any split gives the whole feed's messages, and every error has a code of the protocol's`, () => {
      const report = fuzzParser(protocol, seeds.get(protocol)!, INPUTS, 0x10c0 + protocol.length);
      expect([...report.exceptions].map(([kind, f]) => `${f.count} × ${kind}\n${f.example}`)).toEqual([]);
      expect(report.splitDiffs && `${report.splitDiffs.count} inputs, the shortest: ${report.splitDiffs.example}\n${report.splitDiffs.detail}`).toBeUndefined();
      expect(report.uncoded && `${report.uncoded.count} inputs, the first: ${report.uncoded.example}\n${report.uncoded.detail}`).toBeUndefined();
    }, 120_000);

    it(`${protocol} masking: ${INPUTS} mutated conversations throw nothing, and a split masks the same bytes unless HTTP/2 frames were looked for record by record`, () => {
      const report = fuzzMasker(protocol, seeds.get(protocol)!, INPUTS, 0x3a5c + protocol.length);
      expect([...report.exceptions].map(([kind, f]) => `${f.count} × ${kind}\n${f.example}`)).toEqual([]);
      expect(report.splitDiffs && `${report.splitDiffs.count} inputs, the shortest: ${report.splitDiffs.example}\n${report.splitDiffs.detail}`).toBeUndefined();
      // What is left to per-record decisions is a part of the inputs, not all: the property above covers the rest.
      expect(report.perRecord).toBeLessThan(INPUTS);
    }, 120_000);
  }
});
