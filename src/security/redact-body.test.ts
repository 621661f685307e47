import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BodyMasker, isSecretField } from './redact-body';
import { StreamMasker } from './redact-payload';
import { Http1Parser } from '../parsers/http1/parser';
import type { Http1Message } from '../parsers/http1/messages';

const SECRET = 'S3cr3tV4lu3';

function maskBody(text: string, cuts: number[] = []): string {
  const bytes = Buffer.from(text, 'latin1');
  const m = new BodyMasker();
  const points = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) m.mask(bytes.subarray(points[i]!, points[i + 1]!));
  return bytes.toString('latin1');
}

function maskStream(text: string, cuts: number[] = []): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  const m = new StreamMasker();
  const points = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) m.mask(bytes.subarray(points[i]!, points[i + 1]!));
  return bytes;
}

describe('credential fields in bodies', () => {
  it('names credential fields by their words, compounds included, and leaves others', () => {
    for (const n of ['password', 'Password', 'db_password', 'client_secret', 'access-token', 'refreshToken', 'api_key', 'X-Api-Key', 'pin', 'cvv'])
      expect(isSecretField(n), n).toBe(true);
    for (const n of ['name', 'email', 'id', 'pinned', 'page', 'tokens_used', 'description']) expect(isSecretField(n), n).toBe(false);
  });

  it('masks JSON string, number and literal values of credential members, escapes included, and nothing else', () => {
    const body = `{"user":"ann","password":"${SECRET}","nested":{"api_key":"k\\"ey-${SECRET}","pin":1234,"ok":true},"note":"password","token":null}`;
    const masked = maskBody(body);
    expect(masked.length).toBe(body.length);
    expect(masked).not.toContain(SECRET);
    expect(masked).toContain('"user":"ann"');
    expect(masked).toContain(`"password":"${'*'.repeat(SECRET.length)}"`);
    expect(masked).toContain('"pin":****,');
    expect(masked).toContain('"ok":true');
    expect(masked).toContain('"note":"password"'); // a value that says "password" is no credential
    expect(masked).toContain('"token":****}');
    expect(JSON.parse(masked.replace(/\*+(?=[,}])/g, '0'))).toMatchObject({ user: 'ann', nested: { ok: true } });
  });

  it('masks form fields, bracketed and percent-encoded names included', () => {
    const masked = maskBody(`user=ann&password=${SECRET}&user%5Bpassword%5D=${SECRET}&remember=1`);
    expect(masked).toBe(`user=ann&password=${'*'.repeat(SECRET.length)}&user%5Bpassword%5D=${'*'.repeat(SECRET.length)}&remember=1`);
  });

  it('masks the same bytes however the body is cut', () => {
    const member = fc.tuple(
      fc.constantFrom('password', 'name', 'token', 'x', 'client_secret', 'note'),
      fc.oneof(fc.constant(`"${SECRET}"`), fc.constant('"a\\"b"'), fc.constant('12'), fc.constant('{"pin":7}'), fc.constant('"password"')),
    );
    fc.assert(
      fc.property(fc.array(member, { maxLength: 6 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 10 }), (members, form, cuts) => {
        const body = form ? members.map(([k, v]) => `${k}=${v.replace(/"/g, '')}`).join('&') : `{${members.map(([k, v]) => `"${k}": ${v}`).join(', ')}}`;
        const whole = maskBody(body);
        expect(maskBody(body, cuts)).toBe(whole);
        expect(whole.length).toBe(body.length);
        // The secret stays only where a member that is no credential holds it.
        const kept = members.filter(([k, v]) => !isSecretField(k) && v.includes(SECRET)).length;
        expect(whole.split(SECRET).length - 1).toBe(kept);
      }),
      { numRuns: 500 },
    );
  });

  it('in HTTP/1, masks request and response bodies, chunked ones too, and the parser frames the masked stream as the original', () => {
    const json = `{"username":"ann","password":"${SECRET}"}`;
    const chunked = `{"access_token":"${SECRET}`;
    const rest = `","expires_in":3600}`;
    const stream = [
      `POST /login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
      `POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: ${`password=${SECRET}`.length}\r\n\r\npassword=${SECRET}`,
      `GET /next HTTP/1.1\r\nHost: a\r\n\r\n`,
    ].join('');
    const response = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunked.length.toString(16)}\r\n${chunked}\r\n${rest.length.toString(16)}\r\n${rest}\r\n0\r\n\r\n`;
    for (const text of [stream, response]) {
      const whole = maskStream(text);
      expect(whole.toString('latin1')).not.toContain(SECRET);
      for (let cut = 1; cut < text.length; cut += 7) expect(maskStream(text, [cut, cut + 13]).equals(whole), `cut at ${cut}`).toBe(true);
      const frame = (b: Buffer, side: 'client' | 'server') => {
        const out: Http1Message[] = [];
        const p = new Http1Parser();
        p.onMessage = (m) => out.push(m);
        p.feed(side, { data: b, ts: 0n, tid: 1 });
        return out.map((m) => [m.kind, m.kind === 'request' ? m.target : m.status, m.bodyBytes, m.error]);
      };
      const side = text === stream ? 'client' : 'server';
      expect(frame(whole, side)).toEqual(frame(Buffer.from(text, 'latin1'), side));
    }
  });

  it('knows a response to HEAD has no body from the request the other direction read, so the next head is masked as a head', () => {
    const socket = {};
    const [requests, responses] = [new StreamMasker(socket), new StreamMasker(socket)];
    requests.mask(Buffer.from('HEAD /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
    const answers = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nHTTP/1.1 200 OK\r\nSet-Cookie: s=${SECRET}\r\nX-Custom: ${SECRET}\r\nContent-Length: 2\r\n\r\nok`);
    responses.mask(answers);
    expect(answers.toString('latin1')).not.toContain(SECRET);
    expect(answers.toString('latin1')).toContain('Content-Length: 2\r\n\r\nok');
  });
});
