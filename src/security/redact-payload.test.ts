import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { detectProtocol } from '../parsers/detect';
import { maskHttpSecrets, StreamMasker } from './redact-payload';

const mask = (text: string) => {
  const buf = Buffer.from(text, 'latin1');
  const n = maskHttpSecrets(buf);
  return { text: buf.toString('latin1'), n };
};

describe('maskHttpSecrets', () => {
  it('masks query values and credential headers, byte for byte', () => {
    const req = 'GET /a/b?token=abc&x=1&flag HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer xyz\r\ncookie:  s=1\r\nAccept: */*\r\n\r\n';
    const { text, n } = mask(req);
    expect(text).toBe('GET /a/b?token=***&x=*&flag HTTP/1.1\r\nHost: h\r\nAuthorization: **********\r\ncookie:  ***\r\nAccept: */*\r\n\r\n');
    expect(n).toBe(3 + 1 + 10 + 3);
  });

  it('masks Set-Cookie in responses and leaves bodies and fragments alone', () => {
    expect(mask('HTTP/1.1 200 OK\r\nSet-Cookie: id=42\r\n\r\nbody?a=b').text).toBe('HTTP/1.1 200 OK\r\nSet-Cookie: *****\r\n\r\nbody?a=b');
    expect(mask('GET /p?a=1#frag=2 HTTP/1.0\n').text).toBe('GET /p?a=*#frag=2 HTTP/1.0\n');
  });

  it('leaves text that is not an HTTP request line or secret header unchanged', () => {
    for (const t of ['SELECT * FROM t WHERE a=1', 'get /x?a=1 HTTP/1.1\r\n', 'Authorizationx: y\r\n', 'X-Custom: outside a message head\r\n']) {
      expect(mask(t)).toEqual({ text: t, n: 0 });
    }
  });

  it('never changes the length, only turns bytes into *, and is idempotent', () => {
    const line = fc.oneof(
      fc.constantFrom('GET /x?a=1&b=2 HTTP/1.1', 'Cookie: k=v', 'Authorization: Basic Zm9v', 'Host: example', ''),
      fc.string({ unit: 'binary-ascii', maxLength: 40 }),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), fc.constantFrom('\r\n', '\n'), (lines, eol) => {
        const before = Buffer.from(lines.join(eol), 'latin1');
        const after = Buffer.from(before);
        const n = maskHttpSecrets(after);
        expect(after.length).toBe(before.length);
        let changed = 0;
        for (let i = 0; i < before.length; i++) {
          if (after[i] !== before[i]) {
            expect(after[i]).toBe(0x2a);
            changed++;
          }
        }
        expect(changed).toBeLessThanOrEqual(n);
        const again = Buffer.from(after);
        maskHttpSecrets(again);
        expect(again.equals(after)).toBe(true);
      }),
    );
  });
});

describe('header allowlist', () => {
  it('masks every header of a message head not known to be harmless, and only credential headers elsewhere', () => {
    const head = 'GET /a HTTP/1.1\r\nHost: h\r\nX-Access-Token: t0k\r\nReferer: https://x/?s=1\r\nUser-Agent: curl\r\n\r\n';
    expect(mask(head).text).toBe('GET /a HTTP/1.1\r\nHost: h\r\nX-Access-Token: ***\r\nReferer: **************\r\nUser-Agent: curl\r\n\r\n');
    const response = 'HTTP/1.1 302 Found\r\nLocation: /login?t=1\r\nContent-Length: 9\r\n\r\nX-Note: 1';
    expect(mask(response).text).toBe('HTTP/1.1 302 Found\r\nLocation: **********\r\nContent-Length: 9\r\n\r\nX-Note: 1');
    // A header name longer than any harmless one is masked too, however long.
    const long = `GET / HTTP/1.1\r\nX-${'a'.repeat(100)}: secret\r\n\r\n`;
    expect(mask(long).text).toBe(`GET / HTTP/1.1\r\nX-${'a'.repeat(100)}: ******\r\n\r\n`);
  });
});

describe('StreamMasker', () => {
  const run = (pieces: string[]) => {
    const m = new StreamMasker();
    return pieces
      .map((p) => {
        const b = Buffer.from(p, 'latin1');
        m.mask(b);
        return b.toString('latin1');
      })
      .join('');
  };

  it('masks secrets split across records wherever the split falls', () => {
    expect(run(['GET /compute?n=', '12', ' HTTP/1.1\r\nHost: b\r\nAuthor', 'ization: Bea', 'rer xyz\r\n\r\n'])).toBe(
      'GET /compute?n=** HTTP/1.1\r\nHost: b\r\nAuthorization: **********\r\n\r\n',
    );
  });

  it('gives what maskHttpSecrets gives on whole messages, however they are cut', () => {
    const line = fc.oneof(
      fc.constantFrom('GET /x?a=1&b=22 HTTP/1.1', 'POST /p?tok=abc#frag HTTP/1.0', 'Cookie: k=v', 'authorization:   Basic Zm9v', 'Host: example', 'X-Other: a?b=c', ''),
      fc.stringMatching(/^[a-z ]{0,20}$/),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 6 }), (lines, cuts) => {
        const text = `${lines.join('\r\n')}\r\n`;
        // Text another protocol's detector claims is that protocol's to mask ("mn" is memcached's meta no-op).
        const claimed = detectProtocol(Buffer.from(text, 'latin1'));
        fc.pre(typeof claimed !== 'object' || claimed.protocol === 'http1');
        const whole = Buffer.from(text, 'latin1');
        maskHttpSecrets(whole);
        const points = [...new Set(cuts.map((c) => c % text.length))].sort((a, b) => a - b);
        const pieces: string[] = [];
        let prev = 0;
        for (const p of [...points, text.length]) {
          pieces.push(text.slice(prev, p));
          prev = p;
        }
        expect(run(pieces)).toBe(whole.toString('latin1'));
      }),
    );
  });
});
