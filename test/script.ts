/**
 * Build event streams for tests by describing calls, not records:
 * `s.connect(...)`, `s.send(...)`, `s.recv(...)`. Timestamps advance by 1 µs
 * per event unless given.
 */
import type { Endpoint, Event, Role } from '../src/events/types';

export interface Sock {
  pid: number;
  tid: number;
  fd: number;
  role: Role;
  local: Endpoint;
  remote: Endpoint;
  /** The kernel side's socket cookie; 0 (none) unless a test needs records that name the socket by it. */
  cookie?: bigint;
}

export class Script {
  readonly events: Event[] = [];
  ts = 1_000_000n;

  private tick(at?: bigint): bigint {
    this.ts = at ?? this.ts + 1000n;
    return this.ts;
  }

  open(sock: Sock, at?: bigint, seq?: number): Sock {
    this.events.push({
      type: 'sock_open',
      ts: this.tick(at),
      pid: sock.pid,
      tid: sock.tid,
      cpu: 0,
      fd: sock.fd,
      family: 4,
      role: sock.role,
      protocol: 6,
      local: sock.local,
      remote: sock.remote,
      cookie: sock.cookie ?? 0n,
      ...(seq !== undefined ? { seq } : {}),
    });
    return sock;
  }

  /** A client socket and the server socket that accepted it (the same connection from both ends). */
  connection(
    client: { pid: number; tid: number; fd: number; port: number; seq?: number },
    server: { pid: number; tid: number; fd: number; port: number; seq?: number },
  ): [Sock, Sock] {
    const c: Endpoint = { addr: '127.0.0.1', port: client.port };
    const s: Endpoint = { addr: '127.0.0.1', port: server.port };
    const cs = this.open({ pid: client.pid, tid: client.tid, fd: client.fd, role: 'client', local: c, remote: s }, undefined, client.seq);
    const ss = this.open({ pid: server.pid, tid: server.tid, fd: server.fd, role: 'server', local: s, remote: c }, undefined, server.seq);
    return [cs, ss];
  }

  /** `seq`: the socket's write sequence the kernel side stamps on socket records (bpf/events.h). */
  data(sock: Sock, direction: 'egress' | 'ingress', text: string | Buffer, opts: { at?: bigint; tid?: number; bytes?: number; tls?: boolean; seq?: number } = {}): void {
    const data = Buffer.from(text);
    const source = opts.tls ? (direction === 'egress' ? 'ssl_write' : 'ssl_read') : direction === 'egress' ? 'write' : 'read';
    this.events.push({
      type: 'data',
      ts: this.tick(opts.at),
      pid: sock.pid,
      tid: opts.tid ?? sock.tid,
      cpu: 0,
      fd: sock.fd,
      direction,
      source,
      flags: (opts.tls ? 2 : 0) | (opts.seq !== undefined ? 8 : 0),
      cookie: sock.cookie ?? 0n,
      bytes: opts.bytes ?? data.length,
      data,
      ...(opts.seq !== undefined ? { seq: opts.seq } : {}),
    });
  }

  send(sock: Sock, text: string | Buffer, opts?: { at?: bigint; tid?: number; seq?: number }): void {
    this.data(sock, 'egress', text, opts);
  }

  recv(sock: Sock, text: string | Buffer, opts?: { at?: bigint; tid?: number; seq?: number }): void {
    this.data(sock, 'ingress', text, opts);
  }

  /** One request and its answer across a connection seen from both ends: written, read, answered, read. `received`: what the server read, when not what was written. */
  exchange(client: Sock, server: Sock, request: string, response: string, received = request): void {
    this.send(client, request);
    this.recv(server, received);
    this.send(server, response);
    this.recv(client, response);
  }

  close(sock: Sock, at?: bigint): void {
    this.events.push({ type: 'sock_close', ts: this.tick(at), pid: sock.pid, tid: sock.tid, cpu: 0, fd: sock.fd, cookie: sock.cookie ?? 0n });
  }

  /** A trace_context record (TCP-option propagation) about the socket's client-to-server stream from `offset`. */
  traceContext(
    sock: Sock,
    kind: 'server_request' | 'client_call',
    origin: 'new' | 'tcp_option' | 'thread' | 'traceparent',
    ids: { traceId: string; spanId?: string },
    opts: { offset?: number; length?: number; tid?: number } = {},
  ): void {
    this.events.push({
      type: 'trace_context',
      ts: this.tick(),
      pid: sock.pid,
      tid: opts.tid ?? sock.tid,
      cpu: 0,
      cookie: sock.cookie ?? 0n,
      offset: opts.offset ?? 0,
      length: opts.length ?? 100,
      kind,
      origin,
      traceId: ids.traceId,
      spanId: ids.spanId ?? '0000000000000000',
    });
  }

  goroutine(pid: number, goid: number, parent: number, opts: { exit?: boolean; tid?: number } = {}): void {
    this.events.push({
      type: opts.exit ? 'go_goroutine_exit' : 'go_goroutine_create',
      ts: this.tick(),
      pid,
      tid: opts.tid ?? pid,
      cpu: 0,
      goid: BigInt(goid),
      parentGoid: BigInt(opts.exit ? 0 : parent),
    });
  }

  goRequest(
    pid: number,
    goid: number,
    kind: 'http_server' | 'http_client',
    phase: 'start' | 'end',
    opts: { fd?: number; status?: number; tid?: number; at?: bigint; method?: string; path?: string; host?: string; traceparent?: string } = {},
  ): void {
    this.events.push({
      type: phase === 'start' ? 'go_request_start' : 'go_request_end',
      ts: this.tick(opts.at),
      pid,
      tid: opts.tid ?? pid,
      cpu: 0,
      goid: BigInt(goid),
      kind,
      status: opts.status ?? 0,
      fd: opts.fd ?? -1,
      startNs: 0n,
      method: opts.method ?? '',
      path: opts.path ?? '',
      traceparent: opts.traceparent ?? '',
      host: opts.host ?? '',
    });
  }

  loss(lost: number): void {
    this.events.push({ type: 'loss', ts: this.tick(), pid: 0, tid: 0, cpu: 0, lost: BigInt(lost), source: 'ringbuf' });
  }
}

export const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: svc\r\n${extra}\r\n`;
export const ok = (body = 'ok', status = '200 OK') => `HTTP/1.1 ${status}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
