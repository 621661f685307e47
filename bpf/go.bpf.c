// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Go programs from the inside: uprobes on the Go runtime and net/http, placed
 * by the agent on a function's entry or on each of its RET instructions
 * (never a uretprobe: Go moves goroutine stacks, which breaks the return
 * trampoline). Go's register ABI: arguments in RAX, RBX, RCX, RDI, RSI, ...,
 * results in RAX, RBX, ...; the current goroutine's g in R14.
 *
 *   runtime.newproc1               goroutine created: parent -> child
 *   runtime.goexit1                goroutine exits
 *   net/http.serverHandler.ServeHTTP   handler start (entry) and end (RETs)
 *   net/http.(*Transport).roundTrip    client call start (entry) and end (RETs)
 *   net/http.(*Request).write      the connection this request is written to:
 *                                  where inject.bpf.c's header goes
 *   google.golang.org/grpc.(*Server).handleStream   gRPC handler start / end
 *   google.golang.org/grpc.(*ClientConn).Invoke      gRPC unary call start / end
 *   crypto/tls.(*Conn).Write and Read   TLS plaintext, reported as data records
 *
 * Each goroutine that serves a request, or was started (at any depth) by one
 * that did, carries a trace context here (loupe_go_ctx); a client call takes
 * a new span id in it, and that traceparent is both reported and put on the
 * wire. Records are only written for goroutines that carry a context: the
 * rest say nothing about any request.
 */
#include "sockets.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct go_server {
	__u64 start_ns;
	__u64 response; /* *net/http.response */
};

/* Handlers running, by goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, struct go_server);
} loupe_go_servers SEC(".maps");

struct go_client {
	__u64 start_ns;
	__u64 request; /* the request's key in loupe_go_requests: see request_key() */
};

/* Client calls in flight, by goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, struct go_client);
} loupe_go_clients SEC(".maps");

/* The header a client call's request gets, by request_key(), until the writing goroutine takes it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct go_inject);
} loupe_go_requests SEC(".maps");

/* newproc1's caller goroutine, by thread, between its entry and its RET (it runs on the system stack). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} loupe_go_newproc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loupe_go_request_event);
} loupe_go_scratch SEC(".maps");

static __always_inline struct loupe_go_offsets *go_process(__u32 pid)
{
	if (!watched(loupe_cfg(), pid))
		return NULL;
	return bpf_map_lookup_elem(&loupe_go_procs, &pid);
}

static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;
	bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	return v;
}

static __always_inline __u64 goid_of(struct loupe_go_offsets *off, __u64 g)
{
	return g ? read_u64(g + off->g_goid) : 0;
}

/* The Go process this probe fired in, and the goroutine running (g in R14); NULL when not one we instrument. */
static __always_inline struct loupe_go_offsets *current_goroutine(struct pt_regs *ctx, struct go_key *key)
{
	key->pid = bpf_get_current_pid_tgid() >> 32;
	key->pad = 0;
	key->goid = 0;
	struct loupe_go_offsets *off = go_process(key->pid);
	if (off)
		key->goid = goid_of(off, ctx->r14);
	return off;
}

/* A Go string (pointer, length) at addr, copied NUL-terminated into out[size]; size a power of two. */
static __always_inline void read_go_string(char *out, const __u32 size, __u64 addr)
{
	__u64 ptr = read_u64(addr);
	__u64 len = read_u64(addr + 8);
	if (len > size - 1)
		len = size - 1;
	out[0] = 0;
	if (ptr && len) {
		bpf_probe_read_user(out, len & (size - 1), (void *)ptr);
		out[len & (size - 1)] = 0;
	}
}

/* A trace begun here: a new id, said sampled (the agent's sampler decides what it exports). */
static __always_inline void begin_trace(struct go_ctx *ctx)
{
	random_hex(ctx->trace, GO_TRACE_HEX);
	ctx->flags[0] = '0';
	ctx->flags[1] = '1';
}

/* "00-<trace>-<span>-<flags>" into out (LOUPE_TRACEPARENT_LEN). */
static __always_inline void write_traceparent(char *out, const struct go_ctx *ctx)
{
	const char *trace = ctx->trace, *span = ctx->span;
	out[0] = '0';
	out[1] = '0';
	out[2] = '-';
	__builtin_memcpy(out + 3, trace, GO_TRACE_HEX);
	out[35] = '-';
	__builtin_memcpy(out + 36, span, GO_SPAN_HEX);
	out[52] = '-';
	out[53] = ctx->flags[0];
	out[54] = ctx->flags[1];
	out[55] = 0;
}

static __always_inline struct loupe_go_request_event *request_record(__u32 type, __u64 goid, __u8 kind)
{
	__u32 zero = 0;
	struct loupe_go_request_event *ev = bpf_map_lookup_elem(&loupe_go_scratch, &zero);
	if (!ev)
		return NULL;
	__builtin_memset(ev, 0, sizeof(*ev));
	fill_header(&ev->hdr, type);
	ev->goid = goid;
	ev->kind = kind;
	ev->fd = -1;
	return ev;
}

SEC("uprobe")
int go_newproc1(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!go_process(id >> 32))
		return 0;
	__u64 caller = ctx->bx; /* newproc1(fn *funcval, callergp *g, callerpc uintptr) */
	bpf_map_update_elem(&loupe_go_newproc, &id, &caller, BPF_ANY);
	return 0;
}

SEC("uprobe")
int go_newproc1_ret(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	__u64 *caller = bpf_map_lookup_elem(&loupe_go_newproc, &id);
	struct loupe_go_offsets *off = go_process(pid);
	if (!caller || !off)
		return 0;
	struct go_key parent = { .pid = pid, .goid = goid_of(off, *caller) };
	bpf_map_delete_elem(&loupe_go_newproc, &id);
	struct go_ctx *inherited = bpf_map_lookup_elem(&loupe_go_ctx, &parent);
	if (!inherited)
		return 0;
	struct go_key child = { .pid = pid, .goid = goid_of(off, ctx->ax) };
	if (!child.goid)
		return 0;
	struct go_ctx copy = *inherited;
	bpf_map_update_elem(&loupe_go_ctx, &child, &copy, BPF_ANY);
	struct loupe_go_goroutine_event ev = {};
	fill_header(&ev.hdr, LOUPE_EV_GO_GOROUTINE_CREATE);
	ev.goid = child.goid;
	ev.parent_goid = parent.goid;
	emit(&ev, sizeof(ev));
	return 0;
}

SEC("uprobe")
int go_goexit1(struct pt_regs *ctx)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
		return 0;
	if (bpf_map_delete_elem(&loupe_go_ctx, &key) != 0)
		return 0;
	struct loupe_go_goroutine_event ev = {};
	fill_header(&ev.hdr, LOUPE_EV_GO_GOROUTINE_EXIT);
	ev.goid = key.goid;
	emit(&ev, sizeof(ev));
	return 0;
}

/* The fd of a Go net.Conn interface value's *net.TCPConn (data word at +8): conn.fd.pfd.Sysfd; -1 when not one. */
static __always_inline __s32 conn_fd(struct loupe_go_offsets *off, __u64 iface)
{
	if (off->tcpconn_itab && read_u64(iface) != off->tcpconn_itab)
		return -1; /* a TLS connection or another net.Conn: its first words are no netFD */
	__u64 tcp = read_u64(iface + 8);
	__u64 netfd = tcp ? read_u64(tcp + off->netconn_fd) : 0;
	__s64 fd = netfd ? (__s64)read_u64(netfd + off->netfd_pfd + off->pollfd_sysfd) : -1;
	return fd >= 0 && fd < (1 << 24) ? fd : -1;
}

/*
 * A handler starts on goroutine key.goid: its context is the request's trace
 * (when its traceparent said one: net.bpf.c read it on that fd) or a new
 * one, with a new span id. ev has method, path and fd filled in.
 */
static __always_inline void server_start(struct go_key *key, struct loupe_go_request_event *ev, __u64 response)
{
	struct go_ctx gctx;
	struct go_fd_key fkey = { .pid = key->pid, .fd = ev->fd };
	struct go_incoming *in = bpf_map_lookup_elem(&loupe_go_incoming, &fkey);
	if (in) {
		__builtin_memcpy(gctx.trace, in->trace, GO_TRACE_HEX);
		__builtin_memcpy(gctx.flags, in->flags, 2);
		bpf_map_delete_elem(&loupe_go_incoming, &fkey);
	} else {
		begin_trace(&gctx);
	}
	random_hex(gctx.span, GO_SPAN_HEX);
	bpf_map_update_elem(&loupe_go_ctx, key, &gctx, BPF_ANY);
	write_traceparent(ev->traceparent, &gctx);
	struct go_server server = { .start_ns = ev->hdr.ts_ns, .response = response };
	bpf_map_update_elem(&loupe_go_servers, key, &server, BPF_ANY);
	emit(ev, sizeof(*ev));
}

/* A handler returned: the end record (status from net/http's response, or 0), and the goroutine serves no more. */
static __always_inline void server_end(struct loupe_go_offsets *off, struct go_key *key, __u8 kind)
{
	struct go_server *server = bpf_map_lookup_elem(&loupe_go_servers, key);
	if (!server)
		return;
	struct loupe_go_request_event *ev = request_record(LOUPE_EV_GO_REQUEST_END, key->goid, kind);
	if (ev) {
		ev->start_ns = server->start_ns;
		if (kind == LOUPE_GO_HTTP_SERVER) {
			/* 0 when the handler wrote nothing: net/http then answers 200 after ServeHTTP returns. */
			__u64 status = read_u64(server->response + off->response_status) & 0xffffffff;
			ev->status = status ? status : 200;
		}
		emit(ev, sizeof(*ev));
	}
	bpf_map_delete_elem(&loupe_go_servers, key);
	/* The connection's goroutine goes on to its next request: it serves this one no more. */
	bpf_map_delete_elem(&loupe_go_ctx, key);
}

/* A client call starts: a new span in the goroutine's trace, or the root of a new one. ev has method, path, host. */
static __always_inline void client_start(struct go_key *key, struct loupe_go_request_event *ev, __u64 request)
{
	struct go_ctx call;
	struct go_ctx *parent = bpf_map_lookup_elem(&loupe_go_ctx, key);
	if (parent) {
		__builtin_memcpy(call.trace, parent->trace, GO_TRACE_HEX);
		__builtin_memcpy(call.flags, parent->flags, 2);
	} else {
		begin_trace(&call);
	}
	random_hex(call.span, GO_SPAN_HEX);
	write_traceparent(ev->traceparent, &call);
	struct go_client client = { .start_ns = ev->hdr.ts_ns, .request = request };
	bpf_map_update_elem(&loupe_go_clients, key, &client, BPF_ANY);
	emit(ev, sizeof(*ev));
}

/*
 * What names one client request from roundTrip to (*Request).write: its
 * *url.URL, not the *Request. A request with a body is copied before it is
 * written (Transport.roundTrip's setupRewindBody, a shallow copy: the URL
 * pointer is shared), so keyed by *Request a POST or PUT never got its header.
 */
static __always_inline __u64 request_key(struct loupe_go_offsets *off, __u64 req)
{
	__u64 url = read_u64(req + off->request_url);
	return url ? url : req;
}

static __always_inline void client_end(struct go_key *key, __u8 kind, __u16 status)
{
	struct go_client *client = bpf_map_lookup_elem(&loupe_go_clients, key);
	if (!client)
		return;
	__u64 req = client->request;
	struct loupe_go_request_event *ev = request_record(LOUPE_EV_GO_REQUEST_END, key->goid, kind);
	if (ev) {
		ev->start_ns = client->start_ns;
		ev->status = status;
		emit(ev, sizeof(*ev));
	}
	bpf_map_delete_elem(&loupe_go_clients, key);
	if (req)
		bpf_map_delete_elem(&loupe_go_requests, &req);
}

/* Do the first n bytes of name equal want (lower case), in any case? */
static __always_inline int key_is(const char *name, const char *want, int n)
{
	for (int k = 0; k < n; k++)
		if ((name[k] | 0x20) != want[k])
			return 0;
	return 1;
}

/*
 * Does a header key of `len` bytes keep the request as it is? Its own
 * traceparent (a tracing library's), or a signature over its headers: AWS
 * SigV4's X-Amz-* and Google's X-Goog-* (X-Amz-Date, X-Goog-Date, ...),
 * RFC 9421's Signature and Signature-Input. An unreadable key counts as one:
 * a request is never given a header it may not take.
 */
static __always_inline int keeps_request(__u64 key_ptr, __u64 len)
{
	char name[16] = {};
	if (len == 11 || len == 9 || len == 15) {
		if (bpf_probe_read_user(name, len == 9 ? 9 : len == 11 ? 11 : 15, (void *)key_ptr))
			return 1;
		if ((len == 11 && key_is(name, "traceparent", 11)) || (len == 9 && key_is(name, "signature", 9)) ||
		    (len == 15 && key_is(name, "signature-input", 15)))
			return 1;
	}
	if (len < 7)
		return 0;
	if (bpf_probe_read_user(name, 7, (void *)key_ptr))
		return 1;
	return key_is(name, "x-amz-", 6) || key_is(name, "x-goog-", 7);
}

/* Header maps with more buckets than this are not searched: the request is left as it is. */
#define HEADER_MAX_B 4

struct header_search {
	__u64 buckets;
	__u32 bucket_size;
	__u32 keys;
	__u32 found;
	__u32 pad;
};

/*
 * One slot of a map[string][]string's buckets (slot i of bucket i/8): a
 * bpf_loop callback. A tophash below 5 marks an empty or moved slot.
 * Overflow buckets are not followed: a map that has any is not searched.
 */
static long header_search_step(__u64 i, struct header_search *h)
{
	__u64 bucket = h->buckets + (i >> 3) * h->bucket_size;
	__u32 slot = i & 7;
	__u8 top = 0;
	if (bpf_probe_read_user(&top, 1, (void *)(bucket + slot)) || top < 5)
		return 0;
	__u64 key[2] = {};
	if (bpf_probe_read_user(key, sizeof(key), (void *)(bucket + h->keys + slot * 16)))
		return 0;
	if (!keeps_request(key[0], key[1]))
		return 0;
	h->found = 1;
	return 1;
}

/*
 * Go 1.24+ maps are swiss tables: a small map (8 entries or fewer) is one
 * group; a larger one a directory of tables, each an array of groups. A
 * group is 8 control bytes (high bit clear: the slot is full) then 8 slots
 * of key and value. Headers past these bounds are not searched.
 */
#define SWISS_MAX_TABLES 4
#define SWISS_MAX_GROUPS 32

struct swiss_search {
	__u64 group[SWISS_MAX_GROUPS];
	__u32 groups;
	__u32 slots;     /* the first slot's offset in a group */
	__u32 slot_size;
	__u32 found;
};

/* Slot i of the collected groups (slot i % 8 of group i / 8): a bpf_loop callback. */
static long swiss_search_step(__u64 i, struct swiss_search *h)
{
	__u32 g = i >> 3;
	if (g >= SWISS_MAX_GROUPS)
		return 1;
	__u64 group = h->group[g];
	__u32 slot = i & 7;
	__u8 ctrl = 0x80;
	if (bpf_probe_read_user(&ctrl, 1, (void *)(group + slot)) || (ctrl & 0x80))
		return 0;
	__u64 key[2] = {};
	if (bpf_probe_read_user(key, sizeof(key), (void *)(group + h->slots + slot * h->slot_size)))
		return 0;
	if (!keeps_request(key[0], key[1]))
		return 0;
	h->found = 1;
	return 1;
}

static __always_inline int swiss_keeps_its_headers(struct loupe_go_offsets *off, __u64 map)
{
	if (read_u64(map + off->header_swiss_used) == 0)
		return 0;
	__u64 dir = read_u64(map + off->header_swiss_dir_ptr);
	__u64 dir_len = read_u64(map + off->header_swiss_dir_len);
	if (!dir)
		return 1;
	struct swiss_search h = { .slots = off->header_swiss_slots, .slot_size = off->header_swiss_slot_size };
	if (dir_len == 0) {
		h.group[0] = dir; /* small: dirPtr is the group itself */
		h.groups = 1;
	} else {
		if (dir_len > SWISS_MAX_TABLES)
			return 1;
		for (int t = 0; t < SWISS_MAX_TABLES; t++) {
			if (t >= dir_len)
				break;
			__u64 table = read_u64(dir + t * 8);
			if (!table)
				return 1;
			__u64 data = read_u64(table + off->header_swiss_groups);
			__u64 count = read_u64(table + off->header_swiss_groups + off->header_swiss_mask) + 1;
			/* A directory names a table once per entry it covers: one already collected is not searched twice. */
			if (t > 0 && read_u64(dir + (t - 1) * 8) == table)
				continue;
			__u64 group_size = off->header_swiss_slots + 8 * (__u64)off->header_swiss_slot_size;
			for (int k = 0; k < 8; k++) {
				if (k >= count)
					break;
				if (h.groups >= SWISS_MAX_GROUPS)
					return 1;
				h.group[h.groups & (SWISS_MAX_GROUPS - 1)] = data + k * group_size;
				h.groups++;
			}
			if (count > 8)
				return 1;
		}
	}
	bpf_loop(h.groups * 8, swiss_search_step, &h, 0);
	return h.found;
}

/*
 * Does this outgoing request carry a traceparent of its own (a program with
 * a tracing library), or sign its headers (keeps_request)? Then no header
 * goes in. 1 also when it cannot be told: a request is never given a header
 * it may already have.
 */
static __always_inline int keeps_its_headers(struct loupe_go_offsets *off, __u64 req)
{
	__u64 map = read_u64(req + off->request_header);
	if (!map)
		return 0;
	if (off->flags & LOUPE_GO_F_SWISS)
		return swiss_keeps_its_headers(off, map);
	__u8 b = 0;
	if (bpf_probe_read_user(&b, 1, (void *)(map + off->header_map_b)) || b > HEADER_MAX_B)
		return 1;
	/*
	 * Keys in overflow buckets, or in old buckets not yet moved while the
	 * map grows (a growth moves two buckets per write, so a map written 27
	 * times can stop half moved), are not where the search looks.
	 */
	__u16 noverflow = 0;
	if (bpf_probe_read_user(&noverflow, sizeof(noverflow), (void *)(map + off->header_map_noverflow)) || noverflow != 0)
		return 1;
	if (read_u64(map + off->header_map_oldbuckets) != 0)
		return 1;
	struct header_search h = {
		.buckets = read_u64(map + off->header_map_buckets),
		.bucket_size = off->header_bucket_overflow + 8,
		.keys = off->header_bucket_keys,
	};
	if (!h.buckets)
		return 0;
	bpf_loop(8 << b, header_search_step, &h, 0);
	return h.found;
}

/* serverHandler.ServeHTTP(sh serverHandler, rw ResponseWriter, req *Request): sh in RAX, rw in RBX:RCX, req in RDI. */
SEC("uprobe")
int go_serve_http(struct pt_regs *ctx)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
		return 0;
	__u64 response = ctx->cx;
	__u64 req = ctx->di;
	struct loupe_go_request_event *ev = request_record(LOUPE_EV_GO_REQUEST_START, key.goid, LOUPE_GO_HTTP_SERVER);
	if (!ev || !key.goid)
		return 0;
	__u64 conn = read_u64(response + off->response_conn);
	ev->fd = conn ? conn_fd(off, conn + off->conn_rwc) : -1;
	read_go_string(ev->method, LOUPE_GO_METHOD_LEN, req + off->request_method);
	__u64 url = read_u64(req + off->request_url);
	if (url)
		read_go_string(ev->path, LOUPE_GO_PATH_LEN, url + off->url_path);
	server_start(&key, ev, response);
	return 0;
}

SEC("uprobe")
int go_serve_http_ret(struct pt_regs *ctx)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
		return 0;
	server_end(off, &key, LOUPE_GO_HTTP_SERVER);
	return 0;
}

/* (*Transport).roundTrip(t *Transport, req *Request): req in RBX. */
SEC("uprobe")
int go_round_trip(struct pt_regs *ctx)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
		return 0;
	__u64 req = ctx->bx;
	struct loupe_go_request_event *ev = request_record(LOUPE_EV_GO_REQUEST_START, key.goid, LOUPE_GO_HTTP_CLIENT);
	if (!ev || !key.goid)
		return 0;
	read_go_string(ev->method, LOUPE_GO_METHOD_LEN, req + off->request_method);
	__u64 url = read_u64(req + off->request_url);
	if (url) {
		read_go_string(ev->path, LOUPE_GO_PATH_LEN, url + off->url_path);
		read_go_string(ev->host, LOUPE_GO_HOST_LEN, url + off->url_host);
	}
	__u64 rkey = request_key(off, req);
	client_start(&key, ev, rkey);
	if ((off->flags & LOUPE_GO_F_INJECT) && !keeps_its_headers(off, req)) {
		struct go_inject inject = { .ts_ns = ev->hdr.ts_ns };
		__builtin_memcpy(inject.method, ev->method, sizeof(inject.method));
		__builtin_memcpy(inject.header, "traceparent: ", 13);
		__builtin_memcpy(inject.header + 13, ev->traceparent, 55);
		inject.header[68] = '\r';
		inject.header[69] = '\n';
		bpf_map_update_elem(&loupe_go_requests, &rkey, &inject, BPF_ANY);
	}
	return 0;
}

/* RET of roundTrip: (*Response, error) in RAX and RBX:RCX. */
SEC("uprobe")
int go_round_trip_ret(struct pt_regs *ctx)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
		return 0;
	__u64 resp = ctx->ax;
	client_end(&key, LOUPE_GO_HTTP_CLIENT, resp ? read_u64(resp + off->client_status_code) & 0xffff : 0);
	return 0;
}

/*
 * gRPC server: (*Server).handleStream(s, t transport.ServerTransport, stream
 * *transport.Stream, trInfo): t in RBX:RCX (an *http2Server whose conn is the
 * net.Conn), stream in RDI. A goroutine per stream runs it. The status is the
 * kernel side's to read (grpc-status in the trailers HTTP/2 carries).
 */
SEC("uprobe")
int go_grpc_handle_stream(struct pt_regs *ctx)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off || !(off->flags & LOUPE_GO_F_GRPC))
		return 0;
	struct loupe_go_request_event *ev = request_record(LOUPE_EV_GO_REQUEST_START, key.goid, LOUPE_GO_GRPC_SERVER);
	if (!ev || !key.goid)
		return 0;
	__u64 transport = ctx->cx;
	ev->fd = transport ? conn_fd(off, transport + off->grpc_server_conn) : -1;
	__builtin_memcpy(ev->method, "POST", 5);
	read_go_string(ev->path, LOUPE_GO_PATH_LEN, ctx->di + off->grpc_stream_method);
	server_start(&key, ev, 0);
	return 0;
}

SEC("uprobe")
int go_grpc_handle_stream_ret(struct pt_regs *ctx)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
		return 0;
	server_end(off, &key, LOUPE_GO_GRPC_SERVER);
	return 0;
}

/*
 * gRPC client: (*ClientConn).Invoke(cc, ctx context.Context, method string,
 * args, reply interface{}, opts ...CallOption) error: cc in RAX, method in
 * RDI (pointer) and RSI (length). HTTP/2 headers are HPACK-coded: no header
 * is injected here; the call's span id is still the kernel's.
 */
SEC("uprobe")
int go_grpc_invoke(struct pt_regs *ctx)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off || !(off->flags & LOUPE_GO_F_GRPC))
		return 0;
	struct loupe_go_request_event *ev = request_record(LOUPE_EV_GO_REQUEST_START, key.goid, LOUPE_GO_GRPC_CLIENT);
	if (!ev || !key.goid)
		return 0;
	__builtin_memcpy(ev->method, "POST", 5);
	__u64 len = ctx->si;
	if (len > LOUPE_GO_PATH_LEN - 1)
		len = LOUPE_GO_PATH_LEN - 1;
	if (ctx->di && len) {
		bpf_probe_read_user(ev->path, len & (LOUPE_GO_PATH_LEN - 1), (void *)ctx->di);
		ev->path[len & (LOUPE_GO_PATH_LEN - 1)] = 0;
	}
	read_go_string(ev->host, LOUPE_GO_HOST_LEN, ctx->ax + off->grpc_cc_target);
	client_start(&key, ev, 0);
	return 0;
}

/* RET of Invoke: its error in RAX:RBX; nil is OK (0), anything else UNKNOWN (2) until the trailers say more. */
SEC("uprobe")
int go_grpc_invoke_ret(struct pt_regs *ctx)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
		return 0;
	client_end(&key, LOUPE_GO_GRPC_CLIENT, ctx->ax ? 2 : 0);
	return 0;
}

/*
 * (*Request).write(r *Request, w io.Writer, ...): r in RAX, w in RBX:RCX. In
 * a persistConn's writeLoop, w is its bufio.Writer, whose wr holds the
 * persistConn itself (a pointer-shaped value sits in an interface's data
 * word), and so the connection: the header waits for that connection, by
 * its 4-tuple, which is what sk_msg knows of it. Any other writer leads
 * nowhere and the request goes as it is.
 */
SEC("uprobe")
int go_request_write(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct loupe_go_offsets *off = go_process(pid);
	if (!off)
		return 0;
	__u64 rkey = request_key(off, ctx->ax);
	struct go_inject *inject = bpf_map_lookup_elem(&loupe_go_requests, &rkey);
	if (!inject)
		return 0;
	__u64 writer = ctx->cx;
	__u64 pc = writer ? read_u64(writer + off->writer_wr + 8) : 0;
	int fd = pc ? conn_fd(off, pc + off->persist_conn_conn) : -1;
	struct sock *sk = fd >= 0 ? sock_from_fd(fd) : NULL;
	if (!sk)
		return 0;
	struct conn_key key = {};
	read_addrs(sk, &key.family, key.local, key.remote);
	key.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	key.remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	struct go_inject copy = *inject;
	copy.ts_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&loupe_go_inject, &key, &copy, BPF_ANY);
	return 0;
}

/* A crypto/tls read or write in flight on a goroutine. */
struct go_tls_call {
	__u64 buf;
	__u64 entry_ns;
	__s32 fd;
	__u8 source; /* LOUPE_SRC_SSL_READ or LOUPE_SRC_SSL_WRITE */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, struct go_tls_call);
} loupe_go_tls SEC(".maps");

/*
 * Go's own TLS: (*Conn).Write(c *Conn, b []byte) and (*Conn).Read(c, b), c
 * in RAX, b's pointer in RBX. The socket under c (c.conn, a net.Conn) is
 * marked TLS at once, before the ciphertext syscalls inside run, so from then
 * on its plaintext is reported and its ciphertext is not, as with OpenSSL.
 */
static __always_inline int go_tls_enter(struct pt_regs *ctx, __u8 source)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off || !(off->flags & LOUPE_GO_F_TLS) || !key.goid)
		return 0;
	int fd = conn_fd(off, ctx->ax + off->tls_conn_conn);
	if (fd < 0)
		return 0;
	struct sock_key skey = { .pid = key.pid, .fd = fd };
	struct sock_info *info = bpf_map_lookup_elem(&loupe_sockets, &skey);
	if (!info || !info->traced)
		return 0;
	info->tls = 1;
	struct go_tls_call call = { .buf = ctx->bx, .entry_ns = bpf_ktime_get_ns(), .fd = fd, .source = source };
	bpf_map_update_elem(&loupe_go_tls, &key, &call, BPF_ANY);
	return 0;
}

SEC("uprobe")
int go_tls_write(struct pt_regs *ctx)
{
	return go_tls_enter(ctx, LOUPE_SRC_SSL_WRITE);
}

SEC("uprobe")
int go_tls_read(struct pt_regs *ctx)
{
	return go_tls_enter(ctx, LOUPE_SRC_SSL_READ);
}

/* RET of either: (n int, err error) in RAX and RBX:RCX. */
SEC("uprobe")
int go_tls_io_ret(struct pt_regs *ctx)
{
	struct go_key key;
	struct loupe_go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
		return 0;
	struct go_tls_call *c = bpf_map_lookup_elem(&loupe_go_tls, &key);
	if (!c)
		return 0;
	struct go_tls_call call = *c;
	bpf_map_delete_elem(&loupe_go_tls, &key);
	long n = ctx->ax;
	if (n <= 0)
		return 0;
	/*
	 * Cause before effect across the two ends, as for OpenSSL (tls.bpf.c): a
	 * write at its start, before the peer can have read any of it; a read when
	 * its ciphertext came in (the socket's last read within this call), or at
	 * its start when crypto/tls served it from what it had read before.
	 */
	__u64 ts = call.entry_ns;
	if (call.source == LOUPE_SRC_SSL_READ) {
		struct sock_key skey = { .pid = key.pid, .fd = call.fd };
		struct sock_info *info = bpf_map_lookup_elem(&loupe_sockets, &skey);
		if (info && info->tls_read_ns > ts)
			ts = info->tls_read_ns;
	}
	emit_data(loupe_cfg(), NULL, key.pid, call.fd, call.source, LOUPE_DATA_F_TLS, n, call.buf, 0, 0, ts);
	return 0;
}
