/** Decoded kernel records: the only input the core knows (architecture rule 1). */
import type { ProcessInfo } from './capture';

export type Role = 'client' | 'server' | 'unknown';
export type Direction = 'egress' | 'ingress';
export type DataSource = 'read' | 'readv' | 'recvfrom' | 'recvmsg' | 'write' | 'writev' | 'sendto' | 'sendmsg' | 'ssl_read' | 'ssl_write';
export type GoRequestKind = 'http_server' | 'http_client' | 'grpc_server' | 'grpc_client';
export type LossSource = 'ringbuf' | 'payload';

export interface Endpoint {
  /** Textual address: dotted IPv4 or RFC 5952 IPv6. */
  addr: string;
  port: number;
}

interface Base {
  /** Kernel CLOCK_MONOTONIC time in ns. bigint: a u64 outgrows a double after 104 days of uptime. */
  ts: bigint;
  pid: number;
  tid: number;
  cpu: number;
}

export interface SockOpenEvent extends Base {
  type: 'sock_open';
  fd: number;
  family: 4 | 6;
  role: Role;
  protocol: number;
  local: Endpoint;
  remote: Endpoint;
  cookie: bigint;
  /** The socket's write sequence when reported, where its data records' `seq` begin; absent when unknown (0 on the wire). */
  seq?: number;
}

export interface DataEvent extends Base {
  type: 'data';
  fd: number;
  direction: Direction;
  source: DataSource;
  flags: number;
  cookie: bigint;
  /** Bytes the call really moved; more than data.length when the copy was cut. */
  bytes: number;
  data: Uint8Array;
  /** With LOUPE_DATA_F_SEQ: the socket's write sequence at this record (bpf/events.h says how). */
  seq?: number;
}

export interface SockCloseEvent extends Base {
  type: 'sock_close';
  fd: number;
  cookie: bigint;
}

export interface TcpStateEvent extends Base {
  type: 'tcp_state';
  family: 4 | 6;
  local: Endpoint;
  remote: Endpoint;
  oldState: number;
  newState: number;
  cookie: bigint;
}

export interface ProcExecEvent extends Base {
  type: 'proc_exec';
  ppid: number;
  uid: number;
  comm: string;
  filename: string;
}

export interface ProcExitEvent extends Base {
  type: 'proc_exit';
  exitCode: number;
}

/** The process `pid` forked `childPid`, which runs its program until it execs. */
export interface ProcForkEvent extends Base {
  type: 'proc_fork';
  childPid: number;
}

/** The agent's description of a process, in the stream before the process's first record (bpf/events.h). */
export interface ProcInfoEvent extends Base {
  type: 'proc_info';
  info: ProcessInfo;
}

/**
 * The agent's: the client of a connection this server (pid) accepted addressed
 * it elsewhere, as the host's connection tracking says (bpf/events.h).
 */
export interface NatEvent extends Base {
  type: 'nat';
  /** The client's view: its own address and where it connected. */
  clientLocal: Endpoint;
  clientRemote: Endpoint;
  /** The server socket's view: its own address and the peer it sees. */
  serverLocal: Endpoint;
  serverRemote: Endpoint;
}

export type ContextKind = 'server_request' | 'client_call';
export type ContextOrigin = 'new' | 'tcp_option' | 'thread' | 'traceparent';

/**
 * Trace context the kernel chose or a TCP option carried (bpf/events.h): the
 * request whose first byte lies in [offset, offset + length) (mod 2^32) of the
 * connection's client-to-server stream takes these ids.
 */
export interface TraceContextEvent extends Base {
  type: 'trace_context';
  cookie: bigint;
  offset: number;
  length: number;
  kind: ContextKind;
  origin: ContextOrigin;
  /** 32 and 16 lower-case hex digits; the span id is all zeros when none came. */
  traceId: string;
  spanId: string;
}

export interface GoroutineEvent extends Base {
  type: 'go_goroutine_create' | 'go_goroutine_exit';
  goid: bigint;
  parentGoid: bigint;
}

export interface GoRequestEvent extends Base {
  type: 'go_request_start' | 'go_request_end';
  goid: bigint;
  kind: GoRequestKind;
  status: number;
  fd: number;
  startNs: bigint;
  method: string;
  path: string;
  traceparent: string;
  /** Client calls: the URL's host[:port]. */
  host: string;
}

export interface LossEvent extends Base {
  type: 'loss';
  lost: bigint;
  source: LossSource;
}

export type Event =
  | ProcInfoEvent
  | SockOpenEvent
  | DataEvent
  | SockCloseEvent
  | TcpStateEvent
  | ProcExecEvent
  | ProcExitEvent
  | ProcForkEvent
  | GoroutineEvent
  | GoRequestEvent
  | LossEvent
  | NatEvent
  | TraceContextEvent;

export type EventType = Event['type'];
