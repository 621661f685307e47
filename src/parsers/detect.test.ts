import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { detectProtocol, NEED_MORE } from './detect';

const d = (s: string | Buffer) => detectProtocol(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
const what = (s: string | Buffer) => {
  const v = d(s);
  return v === NEED_MORE || v === undefined ? v : `${v.protocol}/${v.sender ?? '?'}${v.connectionStart ? '/start' : ''}`;
};

function pgStartup(): Buffer {
  const params = Buffer.from('user\0app\0database\0shop\0\0', 'latin1');
  const b = Buffer.alloc(8 + params.length);
  b.writeUInt32BE(b.length, 0);
  b.writeUInt32BE(196608, 4);
  params.copy(b, 8);
  return b;
}
function pgMessage(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeUInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}
function mysqlPacket(seq: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(4 + payload.length);
  b.writeUIntLE(payload.length, 0, 3);
  b[3] = seq;
  payload.copy(b, 4);
  return b;
}
function h2Frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(9 + payload.length);
  b.writeUIntBE(payload.length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(stream, 5);
  payload.copy(b, 9);
  return b;
}

const CASES: Array<[string, Buffer, string]> = [
  ['HTTP/1 request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n'), 'http1/client'],
  ['HTTP/1 response', Buffer.from('HTTP/1.0 404 Not Found\r\n'), 'http1/server'],
  ['HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00', 'latin1'), 'http2/client/start'],
  ['HTTP/2 frames mid-connection', Buffer.concat([h2Frame(1, 4, 3, Buffer.from([0x82, 0x86])), h2Frame(0, 1, 3, Buffer.from('hi'))]), 'http2/?'],
  ['PostgreSQL startup', pgStartup(), 'postgres/client/start'],
  ['PostgreSQL SSLRequest', Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]), 'postgres/client/start'],
  ['PostgreSQL query mid-connection', pgMessage('Q', Buffer.from('select 1\0')), 'postgres/client'],
  ['PostgreSQL result mid-connection', Buffer.concat([pgMessage('C', Buffer.from('SELECT 1\0')), pgMessage('Z', Buffer.from('I'))]), 'postgres/server'],
  ['MySQL greeting', mysqlPacket(0, Buffer.concat([Buffer.from([10]), Buffer.from('10.11.6-MariaDB\0', 'latin1'), Buffer.alloc(40, 1)])), 'mysql/server/start'],
  ['MySQL COM_QUERY mid-connection', mysqlPacket(0, Buffer.concat([Buffer.from([3]), Buffer.from('SELECT * FROM t')])), 'mysql/client'],
  ['Redis command', Buffer.from('*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n'), 'redis/client'],
  ['Redis reply', Buffer.from('+OK\r\n'), 'redis/server'],
  ['Redis inline command', Buffer.from('PING\r\n'), 'redis/client'],
  ['Redis inline command with arguments', Buffer.from('set greeting "hello world"\r\nget greeting\r\n'), 'redis/client'],
  ['TLS ClientHello', Buffer.from([22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3]), 'tls/client/start'],
];

describe('protocol detection', () => {
  for (const [name, bytes, expected] of CASES) {
    it(`recognises ${name} as ${expected}`, () => expect(what(bytes)).toBe(expected));
  }

  it('asks for more on every proper prefix of a connection start, and decides on the whole', () => {
    for (const [, bytes, expected] of CASES.filter(([n]) => /request$|preface|startup|greeting|command/.test(n))) {
      for (let i = 1; i < Math.min(bytes.length, 24); i++) {
        const v = what(bytes.subarray(0, i));
        expect(v === NEED_MORE || v === expected, `${expected} prefix ${i}: ${v}`).toBe(true);
      }
      expect(what(bytes)).toBe(expected);
    }
  });

  it('takes a request line longer than the first 512 bytes for an HTTP/1 request, whole or cut anywhere', () => {
    const line = Buffer.from(`GET /${'l'.repeat(5000)} HTTP/1.1\r\nHost: h\r\n\r\n`);
    expect(what(line)).toBe('http1/client');
    for (const at of [100, 511, 512, 513, 4000]) {
      const v = what(line.subarray(0, at));
      expect(v === NEED_MORE || v === 'http1/client', `cut at ${at}: ${v}`).toBe(true);
    }
    expect(what(line.subarray(0, 512))).toBe('http1/client'); // decided there, as MAX_DETECT_BYTES asks
    // 512 bytes of something else without a line end are still no request.
    expect(d(`GET${'x'.repeat(600)}`)).toBeUndefined();
  });

  it('says no to bytes that cannot start a known message', () => {
    for (const s of ['hello world\r\n', 'EHLO mail.example\r\n', '{"json": true}\n', 'SSH-2.0-OpenSSH_9.2\r\n', 'HTTP/1.1\r\n']) {
      expect(d(s), JSON.stringify(s)).toBeUndefined();
    }
  });

  it('takes request lines a strict parser refuses but servers answer for HTTP/1 requests (the parser reports their errors)', () => {
    for (const s of [
      'GET /\r\n',
      'GET /x HTTP/1.1 extra\r\n',
      'GETX / HTTP/1.1\r\n',
      'BREW /pot HTTP/1.1\r\n',
      'GET / HTTP/2.0\r\n',
      'GET  HTTP/1.1\r\n',
      'GET  /a  HTTP/1.1\r\n',
      'G@T / HTTP/1.1\r\n',
    ]) {
      expect(what(Buffer.from(s)), JSON.stringify(s)).toBe('http1/client');
    }
  });

  it('does not take MySQL framing alone for MySQL: a command packet needs SQL-looking text', () => {
    expect(what(mysqlPacket(0, Buffer.concat([Buffer.from([3]), Buffer.from('hello there')])))).toBeUndefined();
  });

  it('never throws on random bytes, and rarely claims them', () => {
    let claimed = 0;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 300 }), (bytes) => {
        const v = d(Buffer.from(bytes));
        if (v !== undefined && v !== NEED_MORE) claimed++;
      }),
      { numRuns: 5000, seed: 42 },
    );
    expect(claimed).toBeLessThan(25); // < 0.5% false positives on noise
  });
});
