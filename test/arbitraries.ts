/** fast-check generators for kernel events, shared by codec, capture and pipeline tests. */
import fc from 'fast-check';
import { formatAddr } from '../src/events/addr';
import type { Endpoint, Event } from '../src/events/types';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const s32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const port = fc.integer({ min: 0, max: 65535 });
const cstr = (max: number) => fc.string({ unit: 'grapheme-ascii', maxLength: max }).filter((s) => !s.includes('\0'));

export const endpoint = (family: 4 | 6): fc.Arbitrary<Endpoint> =>
  fc.record({ bytes: fc.uint8Array({ minLength: 16, maxLength: 16 }), port }).map(({ bytes, port }) => ({
    addr: formatAddr(bytes, family),
    port,
  }));

const base = fc.record({ ts: u64, pid: u32, tid: u32, cpu: u32 });
const family = fc.constantFrom<4 | 6>(4, 6);

export const eventArb: fc.Arbitrary<Event> = fc.oneof(
  fc.tuple(base, family).chain(([b, fam]) =>
    fc
      .record({
        fd: s32,
        role: fc.constantFrom('client', 'server', 'unknown'),
        protocol: fc.integer({ min: 0, max: 255 }),
        local: endpoint(fam),
        remote: endpoint(fam),
        cookie: u64,
        seq: u32,
      })
      .map(({ seq, ...r }) => ({ type: 'sock_open' as const, ...b, family: fam, ...r, ...(seq !== 0 ? { seq } : {}) })),
  ),
  fc.tuple(base, fc.uint8Array({ maxLength: 300 }), fc.nat(1000)).chain(([b, data, extra]) =>
    fc
      .record({
        fd: s32,
        direction: fc.constantFrom('egress', 'ingress'),
        source: fc.constantFrom('read', 'readv', 'recvfrom', 'recvmsg', 'write', 'writev', 'sendto', 'sendmsg', 'ssl_read', 'ssl_write'),
        flags: fc.integer({ min: 0, max: 0xffff }),
        cookie: u64,
        seq: u32,
      })
      .map(({ seq, ...r }) => ({ type: 'data' as const, ...b, ...r, bytes: data.length + extra, data: Buffer.from(data), ...(r.flags & 0x8 ? { seq } : {}) })),
  ),
  base.chain((b) => fc.record({ fd: s32, cookie: u64 }).map((r) => ({ type: 'sock_close' as const, ...b, ...r }))),
  fc
    .tuple(base, family)
    .chain(([b, fam]) =>
      fc
        .record({ local: endpoint(fam), remote: endpoint(fam), oldState: fc.integer({ min: 0, max: 255 }), newState: fc.integer({ min: 0, max: 255 }), cookie: u64 })
        .map((r) => ({ type: 'tcp_state' as const, ...b, family: fam, ...r })),
    ),
  base.chain((b) => fc.record({ ppid: u32, uid: u32, comm: cstr(15), filename: cstr(255) }).map((r) => ({ type: 'proc_exec' as const, ...b, ...r }))),
  base.chain((b) => fc.record({ exitCode: s32 }).map((r) => ({ type: 'proc_exit' as const, ...b, ...r }))),
  base.chain((b) => fc.record({ childPid: u32 }).map((r) => ({ type: 'proc_fork' as const, ...b, ...r }))),
  fc
    .tuple(base, family, family)
    .chain(([b, client, server]) =>
      fc
        .record({ clientLocal: endpoint(client), clientRemote: endpoint(client), serverLocal: endpoint(server), serverRemote: endpoint(server) })
        .map((r) => ({ type: 'nat' as const, ...b, ...r })),
    ),
  base.chain((b) =>
    fc
      .record({
        cookie: u64,
        offset: u32,
        length: u32,
        kind: fc.constantFrom('server_request' as const, 'client_call' as const),
        origin: fc.constantFrom('new' as const, 'tcp_option' as const, 'thread' as const, 'traceparent' as const),
        traceId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex')),
        spanId: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => Buffer.from(b).toString('hex')),
      })
      .map((r) => ({ type: 'trace_context' as const, ...b, ...r })),
  ),
  base.chain((b) =>
    fc
      .record({
        exe: fc.string({ maxLength: 40 }),
        comm: fc.option(fc.string({ maxLength: 15 }), { nil: undefined }),
        cmdline: fc.option(fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }), { nil: undefined }),
      })
      .map(({ exe, comm, cmdline }) => ({
        type: 'proc_info' as const,
        ...b,
        info: { pid: b.pid, exe, ...(comm !== undefined ? { comm } : {}), ...(cmdline !== undefined ? { cmdline } : {}) },
      })),
  ),
  base.chain((b) => fc.record({ type: fc.constantFrom('go_goroutine_create' as const, 'go_goroutine_exit' as const), goid: u64, parentGoid: u64 }).map((r) => ({ ...b, ...r }))),
  base.chain((b) =>
    fc
      .record({
        type: fc.constantFrom('go_request_start' as const, 'go_request_end' as const),
        goid: u64,
        kind: fc.constantFrom('http_server', 'http_client', 'grpc_server', 'grpc_client'),
        status: fc.integer({ min: 0, max: 65535 }),
        fd: s32,
        startNs: u64,
        method: cstr(15),
        path: cstr(127),
        traceparent: cstr(55),
        host: cstr(63),
      })
      .map((r) => ({ ...b, ...r })),
  ),
  base.chain((b) => fc.record({ lost: u64, source: fc.constantFrom('ringbuf', 'payload') }).map((r) => ({ type: 'loss' as const, ...b, ...r }))),
) as fc.Arbitrary<Event>;
