/**
 * Placing bpf/go.bpf.c on a Go program: which functions get which probe (on
 * the entry, or on every RET), and the struct offsets the probes read, from
 * the binary's DWARF or the versioned table (goelf.ts). A binary is read and
 * disassembled once; each process running it gets its own probes and its
 * entry in the `loupe_go_procs` map.
 */
import * as fs from 'node:fs';
import { ElfError, elfSections, GoBinary } from '../../discovery/goelf';
import { CONSTANTS, layoutOf, offsetOf, STRUCT_MEMBERS } from '../../events/layout';

/** Function -> [program on its entry, program on each RET]; required ones make a binary unsupported when missing. */
const PROBES: Array<{ fn: string; entry?: string; ret?: string; required?: boolean; grpc?: boolean; tls?: boolean }> = [
  { fn: 'runtime.newproc1', entry: 'go_newproc1', ret: 'go_newproc1_ret', required: true },
  { fn: 'runtime.goexit1', entry: 'go_goexit1', required: true },
  { fn: 'net/http.serverHandler.ServeHTTP', entry: 'go_serve_http', ret: 'go_serve_http_ret' },
  { fn: 'net/http.(*Transport).roundTrip', entry: 'go_round_trip', ret: 'go_round_trip_ret' },
  { fn: 'net/http.(*Request).write', entry: 'go_request_write' },
  { fn: 'google.golang.org/grpc.(*Server).handleStream', entry: 'go_grpc_handle_stream', ret: 'go_grpc_handle_stream_ret', grpc: true },
  { fn: 'google.golang.org/grpc.(*ClientConn).Invoke', entry: 'go_grpc_invoke', ret: 'go_grpc_invoke_ret', grpc: true },
  { fn: 'crypto/tls.(*Conn).Write', entry: 'go_tls_write', ret: 'go_tls_io_ret', tls: true },
  { fn: 'crypto/tls.(*Conn).Read', entry: 'go_tls_read', ret: 'go_tls_io_ret', tls: true },
];

/** loupe_go_offsets member -> the Go struct member it holds. */
const FIELDS: Record<string, string> = {
  g_goid: 'runtime.g.goid',
  request_method: 'net/http.Request.Method',
  request_url: 'net/http.Request.URL',
  url_path: 'net/url.URL.Path',
  url_host: 'net/url.URL.Host',
  response_conn: 'net/http.response.conn',
  response_status: 'net/http.response.status',
  conn_rwc: 'net/http.conn.rwc',
  netconn_fd: 'net.conn.fd',
  netfd_pfd: 'net.netFD.pfd',
  pollfd_sysfd: 'internal/poll.FD.Sysfd',
  client_status_code: 'net/http.Response.StatusCode',
};

/**
 * What injection needs besides: where an outgoing request's headers are (to
 * see whether it has a traceparent already; the map's layout is the
 * runtime's and changes between releases) and which connection it is written
 * to. Without them a program keeps its probes and gets no header.
 */
const INJECT_FIELDS: Record<string, string> = {
  request_header: 'net/http.Request.Header',
  writer_wr: 'bufio.Writer.wr',
  persist_conn_conn: 'net/http.persistConn.conn',
};

/** The header map to Go 1.23: buckets of 8 slots, overflow buckets, growth moving buckets a few at a time. */
const BUCKET_MAP_FIELDS: Record<string, string> = {
  header_map_b: 'hash<string,[]string>.B',
  header_map_buckets: 'hash<string,[]string>.buckets',
  header_bucket_keys: 'bucket<string,[]string>.keys',
  header_bucket_overflow: 'bucket<string,[]string>.overflow',
  header_map_noverflow: 'hash<string,[]string>.noverflow',
  header_map_oldbuckets: 'hash<string,[]string>.oldbuckets',
};

/**
 * The header map from Go 1.24: a swiss table (internal/runtime/maps). A
 * slot's size is its elem's offset plus a slice header (24 bytes).
 */
const SWISS_MAP_FIELDS: Record<string, string> = {
  header_swiss_used: 'map<string,[]string>.used',
  header_swiss_dir_ptr: 'map<string,[]string>.dirPtr',
  header_swiss_dir_len: 'map<string,[]string>.dirLen',
  header_swiss_groups: 'table<string,[]string>.groups',
  header_swiss_mask: 'groupReference<string,[]string>.lengthMask',
  header_swiss_slots: 'noalg.map.group[string][]string.slots',
  header_swiss_slot_size: 'noalg.struct { key string; elem []string }.elem',
};
const SLICE_HEADER_BYTES = 24;

/**
 * gRPC's struct members: they follow grpc-go's version, not Go's, so only a
 * binary's DWARF gives them; without it the gRPC probes are left off.
 */
const GRPC_FIELDS: Record<string, string> = {
  grpc_stream_method: 'google.golang.org/grpc/internal/transport.Stream.method',
  grpc_server_conn: 'google.golang.org/grpc/internal/transport.http2Server.conn',
  grpc_cc_target: 'google.golang.org/grpc.ClientConn.target',
};

/** Go's own TLS: the net.Conn under a crypto/tls.Conn. */
const TLS_FIELDS: Record<string, string> = {
  tls_conn_conn: 'crypto/tls.Conn.conn',
};

/**
 * The struct members the offsets table holds for a Go release (read from
 * DWARF when a binary has it): all but gRPC's, which follow grpc-go's version.
 */
export const TABLE_FIELDS: readonly string[] = [FIELDS, INJECT_FIELDS, BUCKET_MAP_FIELDS, SWISS_MAP_FIELDS, TLS_FIELDS].flatMap((g) => Object.values(g));

export interface GoPlan {
  goVersion: string;
  /** [program, file offset] pairs. */
  probes: Array<[string, number]>;
  /** What the probes cover, for the start-up report. */
  functions: string[];
  offsets: Record<string, number>;
  offsetsFrom: 'dwarf' | 'table' | 'dwarf+table';
  /** Why some probes were left off (gRPC without DWARF), or ''. */
  skipped: string;
  /** The offsets injection needs are known. */
  canInject: boolean;
  /**
   * Go packages of it that call C code of their own (cgo), other than the resolvers of net and
   * os/user: their C code may read a socket by FIONREAD, which a sockhash breaks on some kernels
   * (sockhashSafety in live-source.ts). Go's own sockets are read until EAGAIN, never by FIONREAD.
   */
  cCallers: string[];
  /** Its header map is a swiss table (Go 1.24+), not buckets. */
  swissMap: boolean;
  /** Where *net.TCPConn's itab as a net.Conn is: absolute, or from the load base of a position-independent binary. */
  tcpConnItab: { addr: bigint; pie: false } | { fromBase: bigint; pie: true } | undefined;
}

/** Is this file a Go program? Reads the section headers only. */
export function isGoBinary(file: string): boolean {
  let fd: number | undefined;
  try {
    const open = (fd = fs.openSync(file, 'r'));
    const read = (offset: number, length: number) => {
      if (length > 1 << 20) throw new ElfError(`${file}: a section table of ${length} bytes`); // corrupt: not worth reading
      const b = Buffer.alloc(length);
      return b.subarray(0, fs.readSync(open, b, 0, length, offset));
    };
    return elfSections(file, read).some((s) => s.name === '.go.buildinfo' || s.name === '.gopclntab');
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** What to attach where on a Go binary; an ElfError says why it cannot be instrumented. */
export async function planGoProbes(file: string): Promise<GoPlan> {
  const elf = new GoBinary(file);
  const info = elf.buildInfo();
  const functions = elf.functions();
  // The runtime alone (a compiler, a tool): nothing to probe for, and nothing to disassemble.
  if (!PROBES.some((p) => p.fn.startsWith('net/http.') && functions.has(p.fn))) {
    return {
      goVersion: info.goVersion,
      probes: [],
      functions: [],
      offsets: {},
      offsetsFrom: 'table',
      skipped: '',
      canInject: false,
      cCallers: [],
      swissMap: false,
      tcpConnItab: undefined,
    };
  }
  // Every struct member any probe reads, from one pass over the DWARF (or the table).
  const groups = { core: FIELDS, grpc: GRPC_FIELDS, inject: INJECT_FIELDS, buckets: BUCKET_MAP_FIELDS, swiss: SWISS_MAP_FIELDS, tls: TLS_FIELDS };
  const resolved = await elf.resolveFields(Object.values(groups).flatMap((g) => Object.values(g)));
  /** A group's offsets by loupe_go_offsets member, or the first refusal among them. */
  const group = (fields: Record<string, string>, dwarfOnly = false): Record<string, number> | ElfError => {
    const out: Record<string, number> = {};
    for (const [member, field] of Object.entries(fields)) {
      const r = resolved.get(field)!;
      if (r instanceof ElfError) return r;
      if (dwarfOnly && r.from !== 'dwarf') return new ElfError(`${field} comes only from DWARF`);
      out[member] = r.offset;
    }
    return out;
  };
  const core = group(FIELDS);
  // gRPC's follow grpc-go's version, so only DWARF gives them; without them (or the others) those probes stay off.
  const hasAny = (kind: 'grpc' | 'tls') => PROBES.some((p) => p[kind] && functions.has(p.fn));
  const grpc = hasAny('grpc') ? group(GRPC_FIELDS, true) : {};
  const tls = hasAny('tls') ? group(TLS_FIELDS) : {};
  // The header map is one layout or the other, by release: whichever this binary's offsets describe.
  const bucketMap = group(BUCKET_MAP_FIELDS);
  const swissMap = group(SWISS_MAP_FIELDS);
  const headerMap = !(bucketMap instanceof ElfError)
    ? bucketMap
    : !(swissMap instanceof ElfError)
      ? { ...swissMap, header_swiss_slot_size: swissMap.header_swiss_slot_size! + SLICE_HEADER_BYTES }
      : new ElfError(`its header map is neither layout Loupe reads (${bucketMap.message}; ${swissMap.message})`);
  const common = group(INJECT_FIELDS);
  const inject = common instanceof ElfError ? common : headerMap instanceof ElfError ? headerMap : { ...common, ...headerMap };
  const skipped = [
    grpc instanceof ElfError ? `gRPC probes off: ${grpc.message}` : '',
    inject instanceof ElfError ? `traceparent injection off for it: ${inject.message}` : '',
    tls instanceof ElfError ? `crypto/tls probes off: ${tls.message}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  const probes: Array<[string, number]> = [];
  const covered: string[] = [];
  for (const p of PROBES) {
    if ((p.grpc && grpc instanceof ElfError) || (p.tls && tls instanceof ElfError)) continue;
    const fn = functions.get(p.fn);
    if (!fn) {
      if (p.required) throw new ElfError(`${file}: no ${p.fn} (${info.goVersion}): not a Go runtime these probes know`);
      continue;
    }
    if (p.entry) probes.push([p.entry, fn.offset]);
    if (p.ret) {
      const rets = await elf.retOffsets(fn);
      if (rets.length === 0) throw new ElfError(`${file}: ${p.fn} has no RET instruction objdump could find`);
      for (const at of rets) probes.push([p.ret, at]);
    }
    covered.push(p.fn);
  }
  if (core instanceof ElfError) throw core;
  const known = (g: Record<string, number> | ElfError) => (g instanceof ElfError ? {} : g);
  const from = new Set(Object.values(FIELDS).map((f) => (resolved.get(f) as { from: 'dwarf' | 'table' }).from));
  return {
    goVersion: info.goVersion,
    probes,
    functions: covered,
    offsets: { ...core, ...known(grpc), ...known(inject), ...known(tls) },
    offsetsFrom: from.size === 2 ? 'dwarf+table' : [...from][0]!,
    skipped,
    canInject: !(inject instanceof ElfError),
    cCallers: cCallers(functions),
    swissMap: !(inject instanceof ElfError) && inject.header_swiss_dir_ptr !== undefined,
    tcpConnItab: tcpConnItab(elf),
  };
}

/** Packages whose C calls are libc's resolvers and user lookups (getaddrinfo, getpwnam_r...): no socket of theirs is read by FIONREAD. */
const RESOLVER_C_CALLERS = new Set(['net', 'os/user', 'runtime/cgo', 'plugin']);

/** cgo makes a Go function `<package>._Cfunc_<name>` (or `_C2func_`) for each C function a package calls. */
function cCallers(functions: Map<string, unknown>): string[] {
  const packages = new Set<string>();
  for (const name of functions.keys()) {
    const at = name.search(/\._C2?func_/);
    if (at > 0 && !RESOLVER_C_CALLERS.has(name.slice(0, at))) packages.add(name.slice(0, at));
  }
  return [...packages].sort();
}

/** Go names itabs go.itab.T,I (to Go 1.19) or go:itab.T,I (Go 1.20 on). */
function tcpConnItab(elf: GoBinary): GoPlan['tcpConnItab'] {
  return elf.symbolAddress('go.itab.*net.TCPConn,net.Conn', 'go:itab.*net.TCPConn,net.Conn');
}

/**
 * The itab's address in this process: for a position-independent binary, the
 * load address of its mapping at file offset 0 (/proc/PID/maps) plus its
 * distance from it; 0 (not checked) when it cannot be told.
 */
export function itabIn(plan: GoPlan, pid: number): bigint {
  const itab = plan.tcpConnItab;
  if (!itab) return 0n;
  if (!itab.pie) return itab.addr;
  let exe: string;
  let maps: string;
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
    maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return 0n;
  }
  for (const line of maps.split('\n')) {
    const [range, , offset, , , file] = line.trim().split(/\s+/);
    if (file === exe && offset && /^0+$/.test(offset)) return BigInt(`0x${range!.split('-')[0]}`) + itab.fromBase;
  }
  return 0n;
}

/** The `loupe_go_procs` value for a process running this plan. */
export function encodeGoOffsets(plan: GoPlan, inject: boolean, tlsPlaintext = true, itab = plan.tcpConnItab?.pie === false ? plan.tcpConnItab.addr : 0n): Buffer {
  const layout = layoutOf('loupe_go_offsets');
  const buf = Buffer.alloc(layout.size);
  for (const [name] of STRUCT_MEMBERS.loupe_go_offsets) {
    // gRPC's and injection's stay 0 when unknown (their flags unset).
    if (name === 'flags' || name === 'tcpconn_itab' || name === 'pad0') continue;
    buf.writeUInt32LE(plan.offsets[name] ?? 0, offsetOf('loupe_go_offsets', name));
  }
  buf.writeBigUInt64LE(itab, offsetOf('loupe_go_offsets', 'tcpconn_itab'));
  const grpc = Object.keys(GRPC_FIELDS).every((n) => plan.offsets[n] !== undefined);
  const tls = tlsPlaintext && plan.offsets.tls_conn_conn !== undefined;
  const flags =
    (inject && plan.canInject ? CONSTANTS.LOUPE_GO_F_INJECT : 0) |
    (grpc ? CONSTANTS.LOUPE_GO_F_GRPC : 0) |
    (tls ? CONSTANTS.LOUPE_GO_F_TLS : 0) |
    (plan.swissMap ? CONSTANTS.LOUPE_GO_F_SWISS : 0);
  buf.writeUInt32LE(flags, offsetOf('loupe_go_offsets', 'flags'));
  return buf;
}
