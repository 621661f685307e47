/**
 * The architecture's "must not" column as imports (../shared/ARCHITECTURE.md,
 * "Pieces"): which folders of src/ each folder may import. An import outside
 * its row fails here, naming the file; the back edges known to be wrong are
 * listed, each to be removed (and the test fails when one is gone but still
 * listed, so the list only shrinks).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, sourceFiles } from './helpers';

/** Folder (or top-level module) -> what it may import besides itself: folders, or one module of a folder. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  errors: [],
  // Packages loaded at first use (src/lazy.ts): a leaf any folder may use.
  lazy: [],
  // Know nothing of protocols.
  events: ['errors'],
  // A protocol module imports nothing outside src/parsers/ but shared modules.
  parsers: ['errors', 'lazy'],
  routes: [],
  discovery: ['events', 'errors', 'lazy'],
  streams: ['parsers', 'events', 'errors'],
  security: ['parsers', 'errors'],
  // Know nothing of sinks; read Go binaries through discovery's ELF reader, cgroups through its container parser; a pcap's flows are told apart by detection.
  sources: ['events', 'discovery/goelf', 'discovery/cpu-list', 'discovery/containers', 'parsers/detect', 'errors'],
  correlator: ['parsers', 'events', 'streams', 'security', 'discovery', 'routes', 'errors'],
  // The exporters read spans; they do not drive sources or the pipeline.
  export: ['correlator', 'parsers', 'events', 'streams', 'security', 'discovery', 'errors', 'lazy'],
  pipeline: ['sources', 'streams', 'parsers', 'correlator', 'export', 'security', 'discovery', 'routes', 'events', 'errors'],
  scenarios: ['pipeline', 'sources', 'correlator', 'export', 'discovery', 'events', 'errors', 'lazy'],
  cli: ['pipeline', 'scenarios', 'sources', 'streams', 'parsers', 'export', 'discovery', 'events', 'errors'],
};

/** Back edges known to be wrong (issue 21): file -> the module it should not import. */
const KNOWN_BACK_EDGES: readonly string[] = [];

const areaOf = (file: string) => {
  const parts = path.relative(path.join(ROOT, 'src'), file).split(path.sep);
  return parts.length === 1 ? parts[0]!.replace(/\.ts$/, '') : parts[0]!;
};

function imports(): Array<{ file: string; target: string; from: string; to: string }> {
  return sourceFiles(path.join(ROOT, 'src')).flatMap((file) =>
    [...fs.readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^'"]*from '(\.[^']+)'/gm)].map((m) => {
      const target = path.resolve(path.dirname(file), m[1]!);
      return { file: path.relative(ROOT, file), target: path.relative(ROOT, target), from: areaOf(file), to: areaOf(`${target}.ts`) };
    }),
  );
}

describe('module boundaries', () => {
  it('every import of src/ is one its folder may make, or a known back edge', () => {
    const allowed = (e: { from: string; to: string; target: string }) => (MAY_IMPORT[e.from] ?? []).some((m) => m === e.to || e.target === `src/${m}`);
    const wrong = imports()
      .filter((e) => e.from !== e.to && !allowed(e))
      .map((e) => `${e.file} -> ${e.target}`);
    expect(wrong.filter((w) => !KNOWN_BACK_EDGES.includes(w))).toEqual([]);
  });

  it('lists no back edge that is gone', () => {
    const all = new Set(imports().map((e) => `${e.file} -> ${e.target}`));
    expect(KNOWN_BACK_EDGES.filter((k) => !all.has(k))).toEqual([]);
  });

  it('has a row for every folder of src/', () => {
    const areas = new Set(sourceFiles(path.join(ROOT, 'src')).map(areaOf));
    expect([...areas].filter((a) => !(a in MAY_IMPORT))).toEqual([]);
  });
});
