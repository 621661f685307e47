/**
 * The TypeScript mirror of bpf/events.h. Members are listed in declaration
 * order and offsets are computed with C's natural alignment rules, so nothing
 * here is a hand-copied number; test/events-header.test.ts compiles the header
 * and checks every offset, size and constant below against the compiler.
 */

export type Scalar = 'u8' | 'u16' | 'u32' | 'u64' | 's32';
export type MemberType = Scalar | { array: 'u8' | 'char'; length: number } | { struct: string };

export const CONSTANTS = {
  LOUPE_EVENTS_VERSION: 1,
  LOUPE_MAX_PAYLOAD: 4096,
  LOUPE_MAX_COPY: 256 * 1024,
  LOUPE_COMM_LEN: 16,
  LOUPE_FILENAME_LEN: 256,
  LOUPE_GO_METHOD_LEN: 16,
  LOUPE_GO_PATH_LEN: 128,
  LOUPE_GO_HOST_LEN: 64,
  LOUPE_TRACEPARENT_LEN: 56,
  LOUPE_PROC_INFO_MAX: 4096,
  LOUPE_DATA_F_TRUNCATED: 0x1,
  LOUPE_DATA_F_TLS: 0x2,
  LOUPE_DATA_F_CONTINUED: 0x4,
  LOUPE_DATA_F_SEQ: 0x8,
  LOUPE_GO_F_INJECT: 0x1,
  LOUPE_GO_F_GRPC: 0x2,
  LOUPE_GO_F_TLS: 0x4,
  LOUPE_GO_F_SWISS: 0x8,
} as const;

export const ENUMS = {
  loupe_event_type: {
    LOUPE_EV_SOCK_OPEN: 1,
    LOUPE_EV_DATA: 2,
    LOUPE_EV_SOCK_CLOSE: 3,
    LOUPE_EV_TCP_STATE: 4,
    LOUPE_EV_PROC_EXEC: 5,
    LOUPE_EV_PROC_EXIT: 6,
    LOUPE_EV_GO_GOROUTINE_CREATE: 7,
    LOUPE_EV_GO_GOROUTINE_EXIT: 8,
    LOUPE_EV_GO_REQUEST_START: 9,
    LOUPE_EV_GO_REQUEST_END: 10,
    LOUPE_EV_LOSS: 11,
    LOUPE_EV_PROC_INFO: 12,
    LOUPE_EV_PROC_FORK: 13,
    LOUPE_EV_NAT: 14,
    LOUPE_EV_TRACE_CONTEXT: 15,
  },
  loupe_role: { LOUPE_ROLE_UNKNOWN: 0, LOUPE_ROLE_CLIENT: 1, LOUPE_ROLE_SERVER: 2 },
  loupe_direction: { LOUPE_DIR_EGRESS: 1, LOUPE_DIR_INGRESS: 2 },
  loupe_data_source: {
    LOUPE_SRC_READ: 1,
    LOUPE_SRC_READV: 2,
    LOUPE_SRC_RECVFROM: 3,
    LOUPE_SRC_RECVMSG: 4,
    LOUPE_SRC_WRITE: 5,
    LOUPE_SRC_WRITEV: 6,
    LOUPE_SRC_SENDTO: 7,
    LOUPE_SRC_SENDMSG: 8,
    LOUPE_SRC_SSL_READ: 9,
    LOUPE_SRC_SSL_WRITE: 10,
  },
  loupe_go_request_kind: {
    LOUPE_GO_HTTP_SERVER: 1,
    LOUPE_GO_HTTP_CLIENT: 2,
    LOUPE_GO_GRPC_SERVER: 3,
    LOUPE_GO_GRPC_CLIENT: 4,
  },
  loupe_context_kind: { LOUPE_CTX_SERVER_REQUEST: 1, LOUPE_CTX_CLIENT_CALL: 2 },
  loupe_context_origin: { LOUPE_CTX_NEW: 1, LOUPE_CTX_TCP_OPTION: 2, LOUPE_CTX_THREAD: 3, LOUPE_CTX_TRACEPARENT: 4 },
  loupe_loss_source: { LOUPE_LOSS_RINGBUF: 1, LOUPE_LOSS_PAYLOAD: 2 },
} as const;

const hdr = { struct: 'loupe_event_header' } as const;
const bytes = (length: number) => ({ array: 'u8', length }) as const;
const chars = (length: number) => ({ array: 'char', length }) as const;

export const STRUCT_MEMBERS = {
  loupe_event_header: [
    ['ts_ns', 'u64'],
    ['type', 'u32'],
    ['pid', 'u32'],
    ['tid', 'u32'],
    ['cpu', 'u32'],
  ],
  loupe_sock_open_event: [
    ['hdr', hdr],
    ['fd', 's32'],
    ['family', 'u16'],
    ['role', 'u8'],
    ['protocol', 'u8'],
    ['local_port', 'u16'],
    ['remote_port', 'u16'],
    ['local_addr', bytes(16)],
    ['remote_addr', bytes(16)],
    ['seq', 'u32'],
    ['sock_cookie', 'u64'],
  ],
  loupe_data_event: [
    ['hdr', hdr],
    ['fd', 's32'],
    ['direction', 'u8'],
    ['source', 'u8'],
    ['flags', 'u16'],
    ['sock_cookie', 'u64'],
    ['bytes', 'u64'],
    ['captured', 'u32'],
    ['seq', 'u32'],
    ['payload', bytes(CONSTANTS.LOUPE_MAX_PAYLOAD)],
  ],
  loupe_sock_close_event: [
    ['hdr', hdr],
    ['fd', 's32'],
    ['pad0', 'u32'],
    ['sock_cookie', 'u64'],
  ],
  loupe_tcp_state_event: [
    ['hdr', hdr],
    ['family', 'u16'],
    ['local_port', 'u16'],
    ['remote_port', 'u16'],
    ['old_state', 'u8'],
    ['new_state', 'u8'],
    ['local_addr', bytes(16)],
    ['remote_addr', bytes(16)],
    ['sock_cookie', 'u64'],
  ],
  loupe_proc_exec_event: [
    ['hdr', hdr],
    ['ppid', 'u32'],
    ['uid', 'u32'],
    ['comm', chars(CONSTANTS.LOUPE_COMM_LEN)],
    ['filename', chars(CONSTANTS.LOUPE_FILENAME_LEN)],
  ],
  loupe_proc_exit_event: [
    ['hdr', hdr],
    ['exit_code', 's32'],
    ['pad0', 'u32'],
  ],
  loupe_proc_fork_event: [
    ['hdr', hdr],
    ['child_pid', 'u32'],
    ['pad0', 'u32'],
  ],
  loupe_go_goroutine_event: [
    ['hdr', hdr],
    ['goid', 'u64'],
    ['parent_goid', 'u64'],
  ],
  loupe_go_request_event: [
    ['hdr', hdr],
    ['goid', 'u64'],
    ['kind', 'u8'],
    ['pad0', 'u8'],
    ['status', 'u16'],
    ['fd', 's32'],
    ['start_ns', 'u64'],
    ['method', chars(CONSTANTS.LOUPE_GO_METHOD_LEN)],
    ['path', chars(CONSTANTS.LOUPE_GO_PATH_LEN)],
    ['traceparent', chars(CONSTANTS.LOUPE_TRACEPARENT_LEN)],
    ['host', chars(CONSTANTS.LOUPE_GO_HOST_LEN)],
  ],
  loupe_loss_event: [
    ['hdr', hdr],
    ['lost', 'u64'],
    ['source', 'u32'],
    ['pad0', 'u32'],
  ],
  loupe_proc_info_event: [
    ['hdr', hdr],
    ['length', 'u32'],
    ['pad0', 'u32'],
    ['json', chars(4096)],
  ],
  loupe_nat_event: [
    ['hdr', hdr],
    ['client_family', 'u16'],
    ['server_family', 'u16'],
    ['client_local_port', 'u16'],
    ['client_remote_port', 'u16'],
    ['server_local_port', 'u16'],
    ['server_remote_port', 'u16'],
    ['pad0', 'u32'],
    ['client_local_addr', bytes(16)],
    ['client_remote_addr', bytes(16)],
    ['server_local_addr', bytes(16)],
    ['server_remote_addr', bytes(16)],
  ],
  loupe_trace_context_event: [
    ['hdr', hdr],
    ['sock_cookie', 'u64'],
    ['offset', 'u32'],
    ['length', 'u32'],
    ['kind', 'u8'],
    ['origin', 'u8'],
    ['pad0', bytes(6)],
    ['trace_id', bytes(16)],
    ['span_id', bytes(8)],
  ],
  loupe_config: [
    ['agent_pid', 'u32'],
    ['max_payload', 'u32'],
    ['filter_pids', 'u32'],
    ['filter_ports', 'u32'],
    ['cookie_key', 'u64'],
    ['tls_probes', 'u32'],
    ['go_probes', 'u32'],
    ['exec_select', 'u32'],
    ['tcp_options', 'u32'],
    ['inject_http', 'u32'],
    ['pad', 'u32'],
  ],
  loupe_go_offsets: [
    ['g_goid', 'u32'],
    ['request_method', 'u32'],
    ['request_url', 'u32'],
    ['url_path', 'u32'],
    ['url_host', 'u32'],
    ['response_conn', 'u32'],
    ['response_status', 'u32'],
    ['conn_rwc', 'u32'],
    ['netconn_fd', 'u32'],
    ['netfd_pfd', 'u32'],
    ['pollfd_sysfd', 'u32'],
    ['client_status_code', 'u32'],
    ['flags', 'u32'],
    ['grpc_stream_method', 'u32'],
    ['grpc_server_conn', 'u32'],
    ['grpc_cc_target', 'u32'],
    ['request_header', 'u32'],
    ['header_map_b', 'u32'],
    ['header_map_buckets', 'u32'],
    ['header_bucket_keys', 'u32'],
    ['header_bucket_overflow', 'u32'],
    ['header_map_noverflow', 'u32'],
    ['header_map_oldbuckets', 'u32'],
    ['writer_wr', 'u32'],
    ['persist_conn_conn', 'u32'],
    ['tls_conn_conn', 'u32'],
    ['header_swiss_used', 'u32'],
    ['header_swiss_dir_ptr', 'u32'],
    ['header_swiss_dir_len', 'u32'],
    ['header_swiss_groups', 'u32'],
    ['header_swiss_mask', 'u32'],
    ['header_swiss_slots', 'u32'],
    ['header_swiss_slot_size', 'u32'],
    ['pad0', 'u32'],
    ['tcpconn_itab', 'u64'],
  ],
} as const satisfies Record<string, ReadonlyArray<readonly [string, MemberType]>>;

export type StructName = keyof typeof STRUCT_MEMBERS;

export interface MemberLayout {
  readonly offset: number;
  readonly size: number;
  readonly align: number;
}

export interface StructLayout {
  readonly name: StructName;
  readonly size: number;
  readonly align: number;
  readonly members: Readonly<Record<string, MemberLayout>>;
}

const SCALAR_SIZE: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, u64: 8, s32: 4 };

function memberSizeAlign(type: MemberType): { size: number; align: number } {
  if (typeof type === 'string') return { size: SCALAR_SIZE[type], align: SCALAR_SIZE[type] };
  if ('array' in type) return { size: type.length, align: 1 };
  const nested = layoutOf(type.struct as StructName);
  return { size: nested.size, align: nested.align };
}

const cache = new Map<StructName, StructLayout>();

export function layoutOf(name: StructName): StructLayout {
  const hit = cache.get(name);
  if (hit) return hit;
  let offset = 0;
  let structAlign = 1;
  const members: Record<string, MemberLayout> = {};
  for (const [member, type] of STRUCT_MEMBERS[name] as ReadonlyArray<readonly [string, MemberType]>) {
    const { size, align } = memberSizeAlign(type);
    offset = Math.ceil(offset / align) * align;
    members[member] = { offset, size, align };
    offset += size;
    structAlign = Math.max(structAlign, align);
  }
  const layout: StructLayout = { name, size: Math.ceil(offset / structAlign) * structAlign, align: structAlign, members };
  cache.set(name, layout);
  return layout;
}

/** Offset of `member` inside struct `name`; throws on a typo so decoders fail at load, not at run. */
export function offsetOf(name: StructName, member: string): number {
  const m = layoutOf(name).members[member];
  if (!m) throw new Error(`events layout: ${name} has no member ${member}`);
  return m.offset;
}

/** Where every record's header fields lie: read per record by the decoder, the live session and its masking. */
export const HEADER_AT = {
  ts: offsetOf('loupe_event_header', 'ts_ns'),
  type: offsetOf('loupe_event_header', 'type'),
  pid: offsetOf('loupe_event_header', 'pid'),
  tid: offsetOf('loupe_event_header', 'tid'),
  cpu: offsetOf('loupe_event_header', 'cpu'),
} as const;

/** Size of the fixed part of a data record: everything before the payload array. */
export const DATA_FIXED_SIZE = offsetOf('loupe_data_event', 'payload');
export const HEADER_SIZE = layoutOf('loupe_event_header').size;
