import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { HEADER } from '../../test/helpers';
import { get, ok, Script } from '../../test/script';
import { Pipeline } from '../pipeline/pipeline';
import type { Span } from './span';

function spansOf(s: Script): Span[] {
  const spans: Span[] = [];
  const p = new Pipeline(
    {
      ...HEADER,
      processes: [
        { pid: 1, exe: '/srv/api' },
        { pid: 3, exe: '/usr/bin/curl' },
      ],
    },
    [{ onSpan: (x) => spans.push(x) }],
  );
  p.push(s.events);
  p.finish();
  return spans;
}

const pgMsg = (type: string, body: string) => {
  const b = Buffer.from(body, 'latin1');
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeUInt32BE(b.length + 4, 1);
  return Buffer.concat([h, b]);
};

describe('database client spans', () => {
  it('a query made by the thread serving a request is its child; start-up makes no span', () => {
    const s = new Script();
    const [curl, api] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    s.send(curl, get('/users/7'));
    s.recv(api, get('/users/7'));
    const [db] = s.connection({ pid: 1, tid: 11, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 4, port: 5432 });
    s.data(db, 'egress', serialize.startup({ user: 'app', database: 'shop' }));
    s.data(db, 'ingress', Buffer.concat([pgMsg('R', '\0\0\0\0'), pgMsg('Z', 'I')]));
    s.data(db, 'egress', serialize.query('SELECT * FROM users WHERE id = 7'));
    s.data(db, 'ingress', Buffer.concat([pgMsg('D', '\0\x01\0\0\0\x01x'), pgMsg('C', 'SELECT 1\0'), pgMsg('Z', 'I')]));
    s.data(db, 'egress', serialize.query('INSERT INTO audit VALUES (1)'));
    s.data(db, 'ingress', Buffer.concat([pgMsg('E', 'SERROR\0C23505\0Mduplicate key\0\0'), pgMsg('Z', 'I')]));
    s.send(api, ok());
    s.recv(curl, ok());
    const spans = spansOf(s);
    const server = spans.find((x) => x.kind === 'server')!;
    const dbSpans = spans.filter((x) => x.attributes['db.system.name'] === 'postgresql');
    expect(dbSpans.map((x) => x.name)).toEqual(['SELECT users', 'INSERT audit']);
    for (const d of dbSpans) {
      expect(d.parentSpanId).toBe(server.spanId);
      expect(d.traceId).toBe(server.traceId);
      expect(d.attributes['loupe.context']).toBe('thread');
      expect(d.attributes['db.namespace']).toBe('shop');
    }
    expect(dbSpans[0]!.attributes).toMatchObject({ 'db.query.text': 'SELECT * FROM users WHERE id = ?', 'db.response.returned_rows': 1, 'server.port': 5432 });
    expect(dbSpans[1]!.status).toEqual({ code: 'error', message: 'duplicate key' });
    expect(dbSpans[1]!.attributes['db.response.status_code']).toBe('23505');
    expect(spans).toHaveLength(4); // curl, api server, two queries: no span for the start-up
  });

  it('a connection joined mid-stream keeps the exchange it was detected on: an extended-protocol query before the server named PostgreSQL', () => {
    const s = new Script();
    // No open seen: the capture began after the connection was made.
    const db = { pid: 1, tid: 11, fd: 6, role: 'client' as const, local: { addr: '127.0.0.1', port: 40001 }, remote: { addr: '127.0.0.1', port: 5432 } };
    const extended = (sql: string) =>
      Buffer.concat([serialize.parse({ text: sql }), serialize.bind({ values: ['7'] }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()]);
    // Parse/Bind/Execute/Sync alone is no evidence of PostgreSQL (no Query); the server's ReadyForQuery is.
    s.data(db, 'egress', extended('SELECT name FROM users WHERE id = $1'));
    s.data(db, 'ingress', Buffer.concat([pgMsg('1', ''), pgMsg('2', ''), pgMsg('D', '\0\x01\0\0\0\x03ann'), pgMsg('C', 'SELECT 1\0'), pgMsg('Z', 'I')]));
    s.data(db, 'egress', extended('UPDATE users SET seen = now() WHERE id = $1'));
    s.data(db, 'ingress', Buffer.concat([pgMsg('1', ''), pgMsg('2', ''), pgMsg('C', 'UPDATE 1\0'), pgMsg('Z', 'I')]));
    const spans = spansOf(s);
    expect(spans.map((x) => [x.name, x.status.code, x.attributes['db.response.returned_rows'] ?? null])).toEqual([
      ['SELECT users', 'unset', 1],
      ['UPDATE users', 'unset', 1],
    ]);
    expect(spans.every((x) => x.attributes['loupe.mid_stream'] === true)).toBe(true);
  });

  it('a query left unanswered when the connection closes ends incomplete', () => {
    const s = new Script();
    const [db] = s.connection({ pid: 1, tid: 11, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 4, port: 5432 });
    s.data(db, 'egress', serialize.query('SELECT pg_sleep(100)'));
    s.close(db);
    const [span] = spansOf(s);
    expect(span!.attributes['loupe.incomplete']).toBe('connection closed before the response');
    expect(span!.status.code).toBe('error');
  });

  it("names the database as server.address on both ends, and each end's peer as network.peer.address", () => {
    const s = new Script();
    const [client, server] = s.connection({ pid: 1, tid: 11, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 4, port: 5432 });
    s.data(client, 'egress', serialize.query('SELECT 1'));
    s.data(server, 'ingress', serialize.query('SELECT 1'));
    const answer = Buffer.concat([pgMsg('C', 'SELECT 1\0'), pgMsg('Z', 'I')]);
    s.data(server, 'egress', answer);
    s.data(client, 'ingress', answer);
    const spans = spansOf(s).filter((x) => x.attributes['db.system.name'] === 'postgresql');
    expect(spans.map((x) => [x.kind, x.attributes['server.port'], x.attributes['network.peer.port']]).sort()).toEqual([
      ['client', 5432, 5432],
      ['server', 5432, 40001],
    ]);
  });
});
