/**
 * A scripted run of services through the whole pipeline: processes named
 * /srv/NAME with pids 1, 2, … in the order given, a Script to write their
 * socket events into, and the spans the pipeline makes of them.
 */
import type { Span } from '../src/correlator/span';
import { Pipeline } from '../src/pipeline/pipeline';
import { HEADER } from './helpers';
import { Script } from './script';

export function services(...names: string[]): { script: Script; spans: () => Span[] } {
  const script = new Script();
  return {
    script,
    spans: () => {
      const out: Span[] = [];
      const p = new Pipeline({ ...HEADER, processes: names.map((name, i) => ({ pid: i + 1, exe: `/srv/${name}` })) }, [{ onSpan: (x) => out.push(x) }]);
      p.push(script.events);
      p.finish();
      return out;
    },
  };
}
