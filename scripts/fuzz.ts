/**
 * `make fuzz`: every parser's fuzz target (test/fuzz) for a longer budget
 * than make test gives it, with a table of inputs tried, exceptions and split
 * differences, as FUZZING.md records. Usage: npx tsx scripts/fuzz.ts [INPUTS per parser] [SEED]
 */
import { fuzzMasker, fuzzParser } from '../test/fuzz/run';
import { allSeeds } from '../test/fuzz/seeds';

const inputs = Number(process.argv[2] ?? 200_000);
const seed = Number(process.argv[3] ?? 1);
const seeds = allSeeds();
let bad = 0;
console.log(`| parser | seeds | inputs (each fed whole, split and cut) | exceptions | split differences | seconds |`);
console.log('|---|---|---|---|---|---|');
for (const protocol of ['http1', 'http2', 'postgres', 'mysql', 'redis']) {
  const list = seeds.get(protocol) ?? [];
  const t0 = process.hrtime.bigint();
  const r = fuzzParser(protocol, list, inputs, seed);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const exceptions = [...r.exceptions.values()].reduce((n, f) => n + f.count, 0);
  const splits = r.splitDiffs?.count ?? 0;
  bad += exceptions + splits;
  console.log(`| ${protocol} | ${list.length} | ${inputs} | ${exceptions} | ${splits} | ${seconds.toFixed(1)} |`);
  for (const [kind, f] of r.exceptions) console.error(`${protocol}: ${f.count} × ${kind}\n  shortest input: ${f.example}`);
  if (r.splitDiffs) console.error(`${protocol}: ${splits} inputs split differently, the shortest: ${r.splitDiffs.example}\n  ${r.splitDiffs.detail.slice(0, 2000)}`);
}
console.log('');
console.log('| masker | inputs (each masked whole and split) | exceptions | split differences | decided per record (mid-stream HTTP/2 probe) | split differences among those |');
console.log('|---|---|---|---|---|---|');
for (const protocol of ['http1', 'http2', 'postgres', 'mysql', 'redis']) {
  const r = fuzzMasker(protocol, seeds.get(protocol) ?? [], inputs, seed);
  const exceptions = [...r.exceptions.values()].reduce((n, f) => n + f.count, 0);
  const splits = r.splitDiffs?.count ?? 0;
  bad += exceptions + splits;
  console.log(`| ${protocol} | ${inputs} | ${exceptions} | ${splits} | ${r.perRecord} | ${r.perRecordSplitDiffs} |`);
  for (const [kind, f] of r.exceptions) console.error(`${protocol} masking: ${f.count} × ${kind}\n  shortest input: ${f.example}`);
  if (r.splitDiffs)
    console.error(`${protocol} masking: ${splits} inputs masked differently when split, the shortest: ${r.splitDiffs.example}\n  ${r.splitDiffs.detail.slice(0, 2000)}`);
}
process.exitCode = bad > 0 ? 1 : 0;
