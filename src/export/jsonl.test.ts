import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Span } from '../correlator/span';
import { spanToJson, spanToJsonLine } from './jsonl';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
// Any text: quotes, backslashes, control characters, lone surrogates, keys like "0" and "__x".
const text = fc.string({ unit: 'binary', maxLength: 24 });
const attributeValue = fc.oneof(text, fc.double(), fc.integer(), fc.boolean(), fc.constant(undefined));
const span: fc.Arbitrary<Span> = fc
  .record({
    traceId: hex(32),
    spanId: hex(16),
    parentSpanId: fc.oneof(fc.constant(''), hex(16)),
    parentIsRemote: fc.boolean(),
    traceState: fc.oneof(fc.constant(''), text),
    name: text,
    kind: fc.constantFrom('server', 'client', 'producer', 'consumer', 'internal'),
    startNs: fc.bigInt({ min: 0n, max: 1n << 62n }),
    endNs: fc.bigInt({ min: 0n, max: 1n << 62n }),
    service: text,
    pid: fc.integer({ min: 0, max: 1 << 22 }),
    attributes: fc.dictionary(fc.oneof(text, fc.constantFrom('http.request.method', '0', '12', 'url.path')), attributeValue) as fc.Arbitrary<Span['attributes']>,
    status: fc.oneof(
      fc.record({ code: fc.constantFrom('unset', 'ok', 'error') as fc.Arbitrary<'unset' | 'ok' | 'error'> }),
      fc.record({ code: fc.constant('error' as const), message: text }),
    ),
    links: fc.option(fc.array(fc.record({ traceId: hex(32), spanId: hex(16), traceState: fc.oneof(fc.constant(''), text) }), { maxLength: 3 }), { nil: undefined }),
  })
  .map((s) => {
    if (s.links === undefined) delete (s as Partial<Span>).links;
    return s as Span;
  });

describe('a span as a JSON line', () => {
  it('is the bytes JSON.stringify writes of the span object, for any span', () => {
    fc.assert(
      fc.property(span, fc.bigInt({ min: 0n, max: 1n << 62n }), (s, boot) => {
        expect(spanToJsonLine(s, boot)).toBe(JSON.stringify(spanToJson(s, boot)));
      }),
      { numRuns: 2000 },
    );
  });
});
