/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the socket programs (net.bpf.c) and the TLS library probes (tls.bpf.c)
 * share: which pid:fd is which socket, the syscall or library call in flight
 * per thread, and how a data record is built from a user buffer.
 */
#ifndef LOUPE_SOCKETS_BPF_H
#define LOUPE_SOCKETS_BPF_H

#include "common.bpf.h"
#include "go.bpf.h"
#include "propagation.bpf.h"

#define EINPROGRESS 115
#define EBADF 9
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define IPPROTO_TCP 6
#define SOCK_STREAM 1
#define TCP_CLOSE 7
/* Vector calls: iovec entries walked per record at most, the kernel's UIO_MAXIOV (bpf_loop's bound). */
#define MAX_IOV 1024
#define PAYLOAD_MASK (2 * LOUPE_MAX_PAYLOAD - 1)

struct sock_key {
	__u32 pid;
	__s32 fd;
};

struct sock_info {
	__u64 cookie;
	__u64 sk;
	__u8 role;
	__u8 traced; /* 0: not a TCP socket we watch (a file, a pipe, a filtered port) */
	__u8 tls;    /* its plaintext comes from TLS library probes: its ciphertext is not reported */
	__u8 last_dir; /* the direction of its last data record, with TCP-option propagation (a read after a write begins a request) */
	/* A server socket's: the thread that began reading its open request (loupe_thread_trace's key with the pid). */
	__u32 reader_tid;
	/* Where the open request began in the stream, and whether its head may still bring a traceparent (the trace was begun here). */
	__u32 request_from;
	__u8 head_open;
	__u8 pad[3];
	__u64 tls_read_ns; /* a TLS socket: when its last read that moved bytes returned (Go's crypto/tls stamps plaintext with it) */
};

/* What each pid:fd is, learnt at accept/connect or at first sight. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sock_key);
	__type(value, struct sock_info);
} loupe_sockets SEC(".maps");

/* Sockets we report, by kernel address, so TCP state changes can be matched to them. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} loupe_tracked_sk SEC(".maps");

/*
 * Room for one data record, plus slack so a copy at a masked offset with a
 * masked length stays provably inside the value.
 */
struct scratch {
	struct loupe_data_event ev;
	__u8 slack[2 * LOUPE_MAX_PAYLOAD];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} loupe_scratch SEC(".maps");

/* v & mask, in a form the compiler cannot drop because it "knows" v is already small: the verifier does not. */
static __always_inline __u64 masked(__u64 v, const __u64 mask)
{
	asm volatile("%[v] &= %[m]" : [v] "+r"(v) : [m] "i"(mask));
	return v;
}

static __always_inline struct sock *sock_from_fd(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file)
		return NULL;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *socket = BPF_CORE_READ(file, private_data);
	if (!socket)
		return NULL;
	struct sock *sk = BPF_CORE_READ(socket, sk);
	if (!sk)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP || BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return NULL;
	return sk;
}

/* splitmix64's finaliser over address ^ key: a stable id that does not reveal the address. */
static __always_inline __u64 cookie_of(struct loupe_config *cfg, struct sock *sk)
{
	__u64 z = (__u64)sk ^ cfg->cookie_key;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * Addresses as the record wants them. A dual-stack server's IPv4 peer shows as
 * ::ffff:a.b.c.d; it is reported as IPv4 so both ends of a loopback connection
 * name the same 4-tuple.
 */
static __always_inline void read_addrs(struct sock *sk, __u16 *family, __u8 *local, __u8 *remote)
{
	*family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (*family == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)local, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)remote, sk, __sk_common.skc_daddr);
		return;
	}
	BPF_CORE_READ_INTO((struct in6_addr *)local, sk, __sk_common.skc_v6_rcv_saddr);
	BPF_CORE_READ_INTO((struct in6_addr *)remote, sk, __sk_common.skc_v6_daddr);
	unmap_v4(family, local, remote);
}

static __always_inline int port_allowed(struct loupe_config *cfg, struct sock *sk)
{
	if (!cfg->filter_ports)
		return 1;
	__u16 local = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 remote = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return bpf_map_lookup_elem(&loupe_ports, &local) || bpf_map_lookup_elem(&loupe_ports, &remote);
}

static __always_inline void remember(struct loupe_config *cfg, __u32 pid, int fd, struct sock *sk, __u8 role, __u8 traced)
{
	struct sock_key key = { .pid = pid, .fd = fd };
	/* sk even when not traced: a close tells by it whether the fd number went to another socket first. */
	struct sock_info info = { .role = role, .traced = traced, .sk = (__u64)sk };
	if (traced) {
		info.cookie = cookie_of(cfg, sk);
		bpf_map_update_elem(&loupe_tracked_sk, &info.sk, &info.cookie, BPF_ANY);
	}
	bpf_map_update_elem(&loupe_sockets, &key, &info, BPF_ANY);
}

/*
 * A TLS library call (SSL_read/SSL_write) in flight on a thread. The socket
 * syscall it makes inside tells which fd the SSL object writes to.
 */
struct tls_call {
	__u64 ssl;
	__u64 buf;
	__u64 bytes_out; /* _ex variants: where the library puts the byte count */
	__u64 entry_ns;  /* when the call began */
	__u64 io_ns;     /* when its last socket syscall that moved bytes returned; 0: none (served from the library's buffer) */
	__s32 fd;        /* -1 until known */
	__u8 source;     /* LOUPE_SRC_SSL_READ or LOUPE_SRC_SSL_WRITE */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tls_call);
} loupe_tls_calls SEC(".maps");

/* The fd each SSL object was last seen on: a read served from the library's buffer makes no syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __s32);
} loupe_ssl_fds SEC(".maps");

struct tp_scan {
	__u32 len;
	__s32 at;    /* where "\ntraceparent:" starts in the payload, or -1 */
	__u32 ended; /* the blank line that ends the head came first */
};

/*
 * One step of the search, eight bytes at a time: a bpf_loop callback, so the
 * verifier checks it once, not per byte. A head has a line feed every few
 * dozen bytes, so most steps are one word test (a step per byte cost every
 * request a callback and a map lookup per byte of its head).
 */
static long tp_scan_step(__u64 step, struct tp_scan *scan)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&loupe_scratch, &zero);
	__u64 from = step * 8;
	if (!s || from + 13 > scan->len)
		return 1;
	/* Past len the bytes are stale, not out of bounds: the scratch's slack covers the reads. */
	const __u8 *word = s->ev.payload + masked(from, LOUPE_MAX_PAYLOAD - 1);
	if (!bytes_equal_to(*(__u64 *)word, '\n'))
		return 0;
	const char want[] = "traceparent";
	for (int j = 0; j < 8; j++) {
		const __u8 *p = word + j;
		if (p[0] != '\n')
			continue;
		if (from + j + 3 <= scan->len && p[1] == '\r' && p[2] == '\n') {
			scan->ended = 1;
			return 1;
		}
		if (from + j + 13 > scan->len)
			continue;
		int k = 1;
		for (; k < 12; k++)
			if ((p[k] | 0x20) != want[k - 1])
				break;
		if (k == 12 && p[12] == ':') {
			scan->at = from + j;
			return 1;
		}
	}
	return 0;
}

/*
 * The traceparent header of an HTTP request whose start is in the scratch
 * record (`got` bytes): its trace id and flags into `in`; 0 when none.
 */
/* Does the payload begin with "traceparent:" (any case)? A head's line that a read begins with. */
static __always_inline int starts_with_traceparent(const __u8 *head)
{
	const char want[] = "traceparent";
	for (int k = 0; k < 11; k++)
		if ((head[k] | 0x20) != want[k])
			return 0;
	return head[11] == ':';
}

/*
 * The traceparent header in a request head's bytes this read took: 1 found
 * (into `in`), 0 none yet, -1 the head ended without one. `continued`: the
 * read goes on with a head an earlier read began (a head written in pieces,
 * or one whose sender's injected line came in a segment of its own: a reader
 * woken by the first segment took only the request line, measured with nginx
 * to Flask on two cores).
 */
static __always_inline int find_traceparent(struct scratch *s, __u32 got, struct go_incoming *in, int continued)
{
	const __u8 *head = s->ev.payload;
	struct tp_scan scan = { .len = got < GO_TP_SCAN ? got : GO_TP_SCAN, .at = -1 };
	int at_start = 0;
	if (!continued) {
		/* A request starts with a method in capitals; a body read says nothing. */
		if (got < 16 || head[0] < 'A' || head[0] > 'Z' || head[1] < 'A' || head[1] > 'Z')
			return 0;
	} else if (got >= 2 && head[0] == '\r' && head[1] == '\n') {
		return -1;
	} else if (got >= 12 && starts_with_traceparent(head)) {
		at_start = 1;
	}
	if (!at_start) {
		bpf_loop(GO_TP_SCAN / 8, tp_scan_step, &scan, 0);
		if (scan.at < 0)
			return scan.ended ? -1 : 0;
	}
	/* Value: optional spaces, then 00-<32 hex trace>-<16 hex parent>-<2 hex flags>. */
	__u32 at = at_start ? 12 : scan.at + 13;
	const __u8 *v = s->ev.payload + masked(at, LOUPE_MAX_PAYLOAD - 1);
	int skip = v[0] == ' ' ? (v[1] == ' ' ? 2 : 1) : 0;
	if (at + skip + 55 > got)
		return 0;
	v += skip;
	if (v[0] != '0' || v[1] != '0' || v[2] != '-' || v[35] != '-')
		return 0;
	for (int k = 0; k < GO_TRACE_HEX; k++) {
		char c = v[3 + k] | 0x20;
		if (!is_hex(c))
			return 0;
		in->trace[k] = c;
	}
	/* The flags go on with the trace: a caller that did not sample it must not see it sampled downstream. */
	in->flags[0] = v[53] | 0x20;
	in->flags[1] = v[54] | 0x20;
	return v[52] == '-' && is_hex(in->flags[0]) && is_hex(in->flags[1]);
}

/*
 * A Go server we instrument read the start of an HTTP request: remember the
 * trace id of its traceparent header (or that it had none) by pid:fd, for
 * the ServeHTTP probe that starts the handler (go.bpf.c).
 */
static __always_inline void note_incoming_traceparent(struct scratch *s, __u32 pid, int fd, __u32 got)
{
	if (!bpf_map_lookup_elem(&loupe_go_procs, &pid))
		return;
	const __u8 *head = s->ev.payload;
	if (got < 16 || head[0] < 'A' || head[0] > 'Z' || head[1] < 'A' || head[1] > 'Z')
		return;
	struct go_fd_key key = { .pid = pid, .fd = fd };
	struct go_incoming in = {};
	if (find_traceparent(s, got, &in, 0) > 0)
		bpf_map_update_elem(&loupe_go_incoming, &key, &in, BPF_ANY);
	else
		bpf_map_delete_elem(&loupe_go_incoming, &key);
}

static __always_inline __u8 hex_value(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

/*
 * TCP-option and header propagation, at a watched server's read (ev, before
 * it is emitted): a read after a write, or one holding a segment a caller's
 * Loupe tagged, begins a request. Say which trace it serves
 * (loupe_trace_context record, just before the read's) and let the thread
 * serve that trace, for the calls it makes (tcpopt.bpf.c tags them with it,
 * inject.bpf.c puts it in their traceparent).
 */
/* loupe_server_request's working space: more than a BPF stack holds beside its caller's. */
struct server_scratch {
	struct tcpopt_in took;
	struct tcpopt_in left;
	struct loupe_trace_context_event opt;
	struct go_incoming header; /* the request's own traceparent */
	struct go_incoming served; /* a Go handler's trace, when begun here */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct server_scratch);
} loupe_server_scratch SEC(".maps");

/* A watched client opened a connection (connect() returned): which request it is for, if certain. */
static __always_inline void note_connect(struct loupe_config *cfg, struct sock *sk)
{
	if (!cfg->tcp_options && !cfg->inject_http)
		return;
	__u64 key = (__u64)sk;
	const __u8 *serving = thread_request();
	if (!serving) {
		bpf_map_delete_elem(&loupe_connect_trace, &key); /* a freed socket's, at this address */
		return;
	}
	struct connect_trace opened = {};
	__builtin_memcpy(opened.trace, serving, 16);
	bpf_map_update_elem(&loupe_connect_trace, &key, &opened, BPF_ANY);
}

/*
 * A watched server wrote on the socket its request came on: the thread that
 * read the request serves it no more, whichever thread answers (a pool's
 * reader hands requests to workers), as a span ends in user space.
 */
static __always_inline void answered(struct sock_info *info)
{
	__u64 thread = (bpf_get_current_pid_tgid() & 0xffffffff00000000ULL) | info->reader_tid;
	struct thread_trace *serving = bpf_map_lookup_elem(&loupe_thread_trace, &thread);
	if (!serving)
		return;
	int open = 0;
	for (int i = 0; i < THREAD_REQUESTS; i++) {
		if (serving->sk[i] == info->sk)
			serving->sk[i] = 0;
		else if (serving->sk[i])
			open++;
	}
	if (serving->last_sk == info->sk)
		serving->fresh = 0;
	if (!open)
		bpf_map_delete_elem(&loupe_thread_trace, &thread);
}

/* The thread began reading a request on `info`'s socket: it serves `trace` for it, and its last bytes are that request's. */
static __always_inline void began(struct sock_info *info, const __u8 *trace)
{
	__u64 thread = bpf_get_current_pid_tgid();
	info->reader_tid = (__u32)thread;
	struct thread_trace *serving = bpf_map_lookup_elem(&loupe_thread_trace, &thread);
	if (!serving) {
		__u32 zero = 0;
		struct thread_trace *blank = bpf_map_lookup_elem(&loupe_thread_blank, &zero);
		if (!blank)
			return;
		bpf_map_update_elem(&loupe_thread_trace, &thread, blank, BPF_NOEXIST);
		serving = bpf_map_lookup_elem(&loupe_thread_trace, &thread);
		if (!serving)
			return;
	}
	int slot = -1;
	for (int i = 0; i < THREAD_REQUESTS; i++) {
		if (serving->sk[i] == info->sk) {
			slot = i;
			break;
		}
		if (slot < 0 && !serving->sk[i])
			slot = i;
	}
	if (slot >= 0) {
		serving->sk[slot & (THREAD_REQUESTS - 1)] = info->sk;
		__builtin_memcpy(serving->trace[slot & (THREAD_REQUESTS - 1)], trace, 16);
	} else
		serving->overflow = 1;
	serving->last_sk = info->sk;
	__builtin_memcpy(serving->last_trace, trace, 16);
	serving->fresh = 1;
}

/*
 * The request read on `info` serves ctx's trace: its thread's calls carry it,
 * or in a Go program its handler goroutine's (go.bpf.c's server_start). A Go
 * request's own traceparent (`header`) goes to the handler as it came, flags
 * and all.
 */
static __always_inline void serve(struct server_scratch *w, struct sock_info *info, struct loupe_trace_context_event *ctx, int fd, struct go_incoming *header)
{
	/* Go's goroutines hop threads: a thread says nothing of which request a Go call is for. */
	__u32 pid = ctx->hdr.pid;
	if (!bpf_map_lookup_elem(&loupe_go_procs, &pid)) {
		began(info, ctx->trace_id);
		return;
	}
	struct go_fd_key key = { .pid = pid, .fd = fd };
	if (header) {
		bpf_map_update_elem(&loupe_go_incoming, &key, header, BPF_ANY);
		return;
	}
	struct go_incoming *trace = &w->served;
	trace->flags[0] = '0';
	trace->flags[1] = '1';
	hex_of(trace->trace, ctx->trace_id, 16);
	bpf_map_update_elem(&loupe_go_incoming, &key, trace, BPF_ANY);
}

/*
 * A global function: verified once on its own; inlined into every place a
 * record is emitted from, the traceparent search made sys_exit_io too large.
 */
__attribute__((noinline)) int loupe_server_request(struct sock_info *info, long ret)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&loupe_scratch, &zero);
	struct server_scratch *w = bpf_map_lookup_elem(&loupe_server_scratch, &zero);
	if (!info || !s || !w)
		return 0;
	struct tcp_sock *tcp = (struct tcp_sock *)info->sk;
	__u32 copied = BPF_CORE_READ(tcp, copied_seq);
	__u32 rcv_nxt = BPF_CORE_READ(tcp, rcv_nxt);
	__u64 received = BPF_CORE_READ(tcp, bytes_received);
	/* rcv_nxt and bytes_received move together: their difference is the stream's first byte. */
	__u32 read_from = copied - (__u32)ret - (rcv_nxt - (__u32)received);
	struct loupe_trace_context_event ctx = {};
	__builtin_memset(w, 0, sizeof(*w));
	ctx.hdr = s->ev.hdr;
	ctx.hdr.type = LOUPE_EV_TRACE_CONTEXT;
	ctx.sock_cookie = info->cookie;
	ctx.kind = LOUPE_CTX_SERVER_REQUEST;
	ctx.origin = LOUPE_CTX_TCP_OPTION;
	/* The contexts carried on segments this read took, in stream order; those past it stay for a later read. */
	struct tcpopt_in *in = bpf_map_lookup_elem(&loupe_tcpopt_in, &info->sk);
	struct sock *sk = (struct sock *)info->sk; /* outside the CO-RE read: sock_info is ours, not the kernel's */
	if (in && in->cookie != BPF_CORE_READ(sk, __sk_common.skc_cookie.counter)) {
		bpf_map_delete_elem(&loupe_tcpopt_in, &info->sk); /* another socket's, once at this address */
		in = NULL;
	}
	if (in) {
		for (int i = 0; i < TCPOPT_KEPT; i++) {
			if (i >= in->count)
				break;
			struct tcpopt_carried *c = &in->carried[i];
			__u32 into = c->offset - read_from;
			if (into < (__u32)ret)
				w->took.carried[w->took.count++ & (TCPOPT_KEPT - 1)] = *c;
			else if ((__s32)into > 0)
				w->left.carried[w->left.count++ & (TCPOPT_KEPT - 1)] = *c;
			/* else: a segment before this read, whose request was read already */
		}
		w->left.cookie = in->cookie;
		if (w->left.count)
			bpf_map_update_elem(&loupe_tcpopt_in, &info->sk, &w->left, BPF_ANY);
		else
			bpf_map_delete_elem(&loupe_tcpopt_in, &info->sk);
	}
	struct go_incoming *header = &w->header;
	if (!w->took.count && info->last_dir == LOUPE_DIR_INGRESS) {
		/* The request goes on; a head whose trace was begun here may yet name its own. */
		if (!info->head_open)
			return 0;
		int found = find_traceparent(s, s->ev.captured, header, 1);
		if (found || read_from + (__u32)ret - info->request_from > GO_TP_SCAN)
			info->head_open = 0;
		if (found <= 0)
			return 0;
		ctx.origin = LOUPE_CTX_TRACEPARENT;
		for (int k = 0; k < 16; k++)
			ctx.trace_id[k] = hex_value(header->trace[2 * k]) << 4 | hex_value(header->trace[2 * k + 1]);
		/* At the request's first byte, after the record of the trace begun there: user space takes the later. */
		ctx.offset = info->request_from;
		ctx.length = ret;
		emit(&ctx, sizeof(ctx));
		serve(w, info, &ctx, s->ev.fd, header);
		return 1;
	}
	/*
	 * A record for the read's start unless a carried context names it; then one
	 * per carried context. The thread serves the request's own traceparent (an
	 * SDK's, Go injection's) first, as user space does, else the last context
	 * carried, else a trace begun here.
	 */
	int found = find_traceparent(s, s->ev.captured, header, 0);
	info->request_from = read_from;
	info->head_open = 0;
	if (found > 0) {
		ctx.origin = LOUPE_CTX_TRACEPARENT;
		for (int k = 0; k < 16; k++)
			ctx.trace_id[k] = hex_value(header->trace[2 * k]) << 4 | hex_value(header->trace[2 * k + 1]);
	} else if (!w->took.count) {
		ctx.origin = LOUPE_CTX_NEW;
		random_bytes(ctx.trace_id, 16);
		info->head_open = found == 0;
	}
	if (ctx.origin != LOUPE_CTX_TCP_OPTION) {
		ctx.offset = read_from;
		ctx.length = ret;
		emit(&ctx, sizeof(ctx));
	}
	struct loupe_trace_context_event *opt = &w->opt;
	*opt = ctx;
	opt->origin = LOUPE_CTX_TCP_OPTION;
	for (int i = 0; i < TCPOPT_KEPT; i++) {
		if (i >= w->took.count)
			break;
		struct tcpopt_carried *c = &w->took.carried[i];
		opt->offset = c->offset;
		opt->length = c->length;
		__builtin_memcpy(opt->trace_id, c->trace, 16);
		__builtin_memcpy(opt->span_id, c->span, 8);
		emit(opt, sizeof(*opt));
	}
	if (ctx.origin == LOUPE_CTX_TCP_OPTION)
		__builtin_memcpy(ctx.trace_id, opt->trace_id, 16);
	serve(w, info, &ctx, s->ev.fd, found > 0 ? header : NULL);
	return 1;
}

/* What copy_piece needs of the syscall whose copy goes on past the first record. */
struct more_pieces {
	__u64 buf;
	__u64 count;
	long ret;
	__u32 total;
	__u32 seq_end; /* a write's write_seq at its exit, with LOUPE_DATA_F_SEQ */
	__u8 vector;
	__u8 failed;
};

/* Where a copy out of an iovec array stands: a bpf_loop callback's state. */
struct iov_copy {
	struct iovec *vec;
	__u64 count;
	__u64 at;   /* stream position of entry i's first byte */
	__u32 from; /* stream position the copy starts at */
	__u32 len;  /* bytes to copy */
	__u32 got;
};

/*
 * One iovec entry: a bpf_loop callback, so any number of entries up to the
 * kernel's UIO_MAXIOV is walked (a fixed unrolled bound of 8 lost the rest of
 * a corked Node.js write: mqtt.js sends a PUBLISH as about 10 small buffers,
 * and its topic was past the 8th).
 */
static long copy_one_iov(__u64 i, struct iov_copy *c)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&loupe_scratch, &zero);
	if (!s || i >= c->count || c->got >= c->len)
		return 1;
	struct iovec iov = {};
	if (bpf_probe_read_user(&iov, sizeof(iov), &c->vec[i]))
		return 1;
	__u64 end = c->at + iov.iov_len;
	if (end > c->from + c->got) {
		__u64 skip = c->from + c->got - c->at;
		__u64 n = iov.iov_len - skip;
		if (n > c->len - c->got)
			n = c->len - c->got;
		if (bpf_probe_read_user(s->ev.payload + masked(c->got, LOUPE_MAX_PAYLOAD - 1), masked(n, PAYLOAD_MASK), (void *)((__u64)iov.iov_base + skip)))
			return 1;
		c->got += n;
	}
	c->at = end;
	return 0;
}

/* Copy `len` bytes at stream position `from` of an iovec array into the record's payload; the bytes copied. */
static __always_inline __u32 copy_from_iov(struct iovec *vec, __u64 count, __u32 from, __u32 len)
{
	struct iov_copy c = { .vec = vec, .count = count, .from = from, .len = len };
	bpf_loop(MAX_IOV, copy_one_iov, &c, 0);
	return c.got;
}

/*
 * Piece k (from 1) of a copy longer than one record: the record in the
 * scratch keeps its header (time, thread, socket); its bytes and payload are
 * this piece's. The last piece also says what no piece copied, so the
 * records' bytes add up to what the syscall moved.
 */
/*
 * A global function: the verifier checks it once, on its own, not again at
 * every place a record is emitted from (inlined there, the iovec walk made
 * sys_exit_io too large to verify).
 */
__attribute__((noinline)) int loupe_copy_piece(struct more_pieces *more, __u32 k)
{
	__u32 zero = 0;
	if (!more)
		return 1;
	struct scratch *s = bpf_map_lookup_elem(&loupe_scratch, &zero);
	__u32 from = (k + 1) * LOUPE_MAX_PAYLOAD;
	if (!s || more->failed || from >= more->total)
		return 1;
	__u32 len = more->total - from;
	if (len > LOUPE_MAX_PAYLOAD)
		len = LOUPE_MAX_PAYLOAD;
	__u32 got = 0;
	if (!more->vector) {
		if (bpf_probe_read_user(s->ev.payload, masked(len, PAYLOAD_MASK), (void *)(more->buf + from)) == 0)
			got = len;
	} else {
		got = copy_from_iov((struct iovec *)more->buf, more->count, from, len);
	}
	int last = from + len >= more->total || got < len;
	s->ev.bytes = last ? more->ret - from : len;
	s->ev.captured = got;
	s->ev.flags = (s->ev.flags & ~LOUPE_DATA_F_TRUNCATED) | LOUPE_DATA_F_CONTINUED;
	if ((s->ev.flags & LOUPE_DATA_F_SEQ) && s->ev.direction == LOUPE_DIR_EGRESS)
		s->ev.seq = more->seq_end - (__u32)(more->ret - (from + s->ev.bytes));
	if (got < s->ev.bytes)
		s->ev.flags |= LOUPE_DATA_F_TRUNCATED;
	emit(&s->ev, offsetof(struct loupe_data_event, payload) + masked(got, PAYLOAD_MASK));
	if (got < len)
		more->failed = 1;
	return last;
}

static long copy_piece(__u64 k, struct more_pieces *more)
{
	return loupe_copy_piece(more, k) ? 1 : 0;
}

/*
 * Build and emit a data record (info: the socket's entry when the caller has
 * looked it up already, else NULL): `ret` bytes moved through pid:fd from `buf`
 * (an iovec array of `count` entries when `vector`), at `ts_ns` (0: now).
 */
static __always_inline void emit_data(struct loupe_config *cfg, struct sock_info *info, __u32 pid, int fd, __u8 source, __u16 flags, long ret, __u64 buf, __u64 count, __u8 vector, __u64 ts_ns)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&loupe_scratch, &zero);
	if (!cfg || !s)
		return;
	if (!info) {
		struct sock_key key = { .pid = pid, .fd = fd };
		info = bpf_map_lookup_elem(&loupe_sockets, &key);
	}
	if (!info || !info->traced)
		return;
	struct loupe_data_event *ev = &s->ev;
	fill_header(&ev->hdr, LOUPE_EV_DATA);
	if (ts_ns)
		ev->hdr.ts_ns = ts_ns;
	ev->fd = fd;
	ev->source = source;
	ev->direction = (source == LOUPE_SRC_SSL_WRITE || (source >= LOUPE_SRC_WRITE && source <= LOUPE_SRC_SENDMSG))
		? LOUPE_DIR_EGRESS : LOUPE_DIR_INGRESS;
	ev->flags = flags;
	ev->sock_cookie = info->cookie;
	ev->bytes = ret;
	ev->seq = 0;
	__u32 want = cfg->max_payload < LOUPE_MAX_PAYLOAD ? cfg->max_payload : LOUPE_MAX_PAYLOAD;
	if (want > ret)
		want = ret;
	__u32 got = 0;
	if (!vector) {
		__u32 len = masked(want, PAYLOAD_MASK);
		if (len && bpf_probe_read_user(ev->payload, len, (void *)buf) == 0)
			got = len;
	} else {
		got = copy_from_iov((struct iovec *)buf, count, 0, want);
	}
	ev->captured = got;
	if (cfg->go_probes && ev->direction == LOUPE_DIR_INGRESS && info->role == LOUPE_ROLE_SERVER)
		note_incoming_traceparent(s, pid, fd, got);
	/* The thread's request feeds both TCP options and the headers inject.bpf.c puts on other programs' calls. */
	if ((cfg->tcp_options || cfg->inject_http) && !(flags & LOUPE_DATA_F_TLS) && info->sk) {
		if (info->role == LOUPE_ROLE_SERVER) {
			if (ev->direction == LOUPE_DIR_INGRESS)
				loupe_server_request(info, ret);
			else
				answered(info);
			info->last_dir = ev->direction;
		}
		/* Another socket's bytes: the thread's last bytes are no longer its request's. */
		__u64 thread = bpf_get_current_pid_tgid();
		struct thread_trace *serving = bpf_map_lookup_elem(&loupe_thread_trace, &thread);
		if (serving && serving->fresh && serving->last_sk != info->sk)
			serving->fresh = 0;
	}
	/*
	 * A copy longer than one record: this record is the first piece and says
	 * only its own bytes (decided after the scan above, whose loop the
	 * verifier would otherwise walk once more for each branch here).
	 */
	__u32 total = cfg->max_payload < LOUPE_MAX_COPY ? cfg->max_payload : LOUPE_MAX_COPY;
	if (total > ret)
		total = ret;
	int more = total > want && got == want;
	if (more)
		ev->bytes = want;
	if (got < ev->bytes)
		ev->flags |= LOUPE_DATA_F_TRUNCATED;
	/* Socket syscalls only: a TLS library's plaintext counts other bytes than the socket's. */
	__u32 seq_end = 0;
	if (!(flags & LOUPE_DATA_F_TLS) && info->sk) {
		struct tcp_sock *tcp = (struct tcp_sock *)info->sk; /* outside the CO-RE read: sock_info is ours, not the kernel's */
		seq_end = BPF_CORE_READ(tcp, write_seq);
		ev->seq = ev->direction == LOUPE_DIR_EGRESS ? seq_end - (__u32)(ret - ev->bytes) : seq_end;
		ev->flags |= LOUPE_DATA_F_SEQ;
	}
	emit(ev, offsetof(struct loupe_data_event, payload) + masked(got, PAYLOAD_MASK));
	if (more) {
		struct more_pieces more = { .buf = buf, .count = count, .ret = ret, .total = total, .seq_end = seq_end, .vector = vector };
		bpf_loop(LOUPE_MAX_COPY / LOUPE_MAX_PAYLOAD - 1, copy_piece, &more, 0);
	}
}

#endif /* LOUPE_SOCKETS_BPF_H */
