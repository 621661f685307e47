import { describe, expect, it } from 'vitest';
import { detectProtocol, NEED_MORE } from './detect';

const d = (s: string) => detectProtocol(Buffer.from(s, 'latin1'));

describe('protocol detection', () => {
  it('recognises HTTP/1 request and status lines and who sent them', () => {
    expect(d('GET / HTTP/1.1\r\nHost: x\r\n')).toEqual({ protocol: 'http1', sender: 'client' });
    expect(d('HTTP/1.0 404 Not Found\r\n')).toEqual({ protocol: 'http1', sender: 'server' });
  });

  it('asks for more on every proper prefix of a request line, and decides on the whole line', () => {
    const line = 'OPTIONS /a/b?c=d HTTP/1.1\r\n';
    for (let i = 1; i < line.length; i++) expect(d(line.slice(0, i)), JSON.stringify(line.slice(0, i))).toBe(NEED_MORE);
    expect(d(line)).toEqual({ protocol: 'http1', sender: 'client' });
    for (const prefix of ['H', 'HTTP/1.', 'HTTP/1.1 20']) expect(d(prefix)).toBe(NEED_MORE);
  });

  it('says no to bytes that cannot start a known message', () => {
    for (const s of ['\x16\x03\x01\x02\x00', 'hello world\r\n', 'GETX / HTTP/1.1\r\n', 'GET / HTTP/2.0\r\n', 'GET  HTTP/1.1\r\n']) expect(d(s), JSON.stringify(s)).toBeUndefined();
  });
});
