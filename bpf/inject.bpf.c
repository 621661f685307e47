// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Trace context on the wire without bpf_probe_write_user (refused under
 * kernel lockdown): a sock_ops program puts the TCP connections that Go
 * programs with injection on open into a sockhash, and an sk_msg program on
 * that sockhash inserts a `traceparent` header line after the request line of
 * the HTTP/1 request go.bpf.c prepared for that socket (bpf_msg_push_data). The program's own write() still returns its own byte
 * count; the socket tracepoints (net.bpf.c) see the bytes it wrote, the peer
 * reads the header.
 */
#include "sockets.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SK_PASS 1
#define SK_DROP 0
/*
 * The request line must end within this many bytes for the header to go in:
 * the size of net/http's write buffer, which sends the request line and
 * headers in one write (a longer line arrives in pieces, and is refused).
 */
#define REQUEST_LINE_MAX 4096

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} loupe_inject_socks SEC(".maps");

/* Connections a Go program with injection on is opening, by socket cookie, until established. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} loupe_inject_connecting SEC(".maps");

/* A copy of the message's first REQUEST_LINE_MAX bytes, to search with bpf_loop (its callbacks cannot take packet pointers). */
struct head_copy {
	__u8 bytes[REQUEST_LINE_MAX];
	__u8 slack[32]; /* a header name compared at the copy's end stays inside the value */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct head_copy);
} loupe_inject_head SEC(".maps");

struct head_scan {
	__u32 len;
	__u32 line_end; /* just past the request line's CRLF; 0: no CRLF ends it */
	__u32 found;    /* the head ends (a blank line) within the copy */
	__u32 keep;     /* a header line says the request goes as it was written */
};

/* Does the line at `line` (`left` bytes of the copy from there) begin with `pat`, letters in any case? */
static __always_inline int line_is(const __u8 *line, __u32 left, const char *pat, const int n)
{
	if (left < n)
		return 0;
	for (int k = 0; k < n; k++)
		if ((line[k] | 0x20) != pat[k])
			return 0;
	return 1;
}

/*
 * Header lines that say a request must go exactly as written: its own trace
 * context, or a signature over its headers (AWS SigV4 and its X-Amz-* headers,
 * Google's GOOG4 and X-Goog-*, Azure's SharedKey, HTTP message signatures).
 */
static __always_inline int keeps_as_written(const __u8 *line, __u32 left)
{
	if (line_is(line, left, "traceparent:", 12) || line_is(line, left, "x-amz-", 6) || line_is(line, left, "x-goog-", 7) ||
	    line_is(line, left, "signature:", 10) || line_is(line, left, "signature-input:", 16))
		return 1;
	if (!line_is(line, left, "authorization:", 14))
		return 0;
	/* The scheme, after up to two spaces. */
	int skip = line[14] == ' ' ? (line[15] == ' ' ? 16 : 15) : 14;
	const __u8 *scheme = line + skip;
	left -= skip;
	return line_is(scheme, left, "aws", 3) || line_is(scheme, left, "goog4", 5) || line_is(scheme, left, "sharedkey", 9);
}

/*
 * Does the header line starting at byte `at` of the head copy (`len` bytes
 * copied) keep the request as written? A global function: the verifier
 * checks it once, not once per line feed of the unrolled word scan (inlined,
 * that made the program too large to verify).
 */
__attribute__((noinline)) int loupe_keeps_line(__u32 at, __u32 len)
{
	__u32 zero = 0;
	struct head_copy *h = bpf_map_lookup_elem(&loupe_inject_head, &zero);
	if (!h || at >= len || len > REQUEST_LINE_MAX)
		return 0;
	return keeps_as_written(h->bytes + (at & (REQUEST_LINE_MAX - 1)), len - at);
}

/* Eight bytes a step, as tcpopt's traceparent search: most words of a head hold no line feed. */
static long head_end_step(__u64 step, struct head_scan *scan)
{
	__u32 zero = 0;
	struct head_copy *h = bpf_map_lookup_elem(&loupe_inject_head, &zero);
	__u64 from = step * 8;
	if (!h || from >= scan->len)
		return 1;
	const __u8 *word = h->bytes + (from & (REQUEST_LINE_MAX - 1));
	if (!bytes_equal_to(*(__u64 *)word, '\n'))
		return 0;
	for (int j = 0; j < 8; j++) {
		__u64 at = from + j;
		if (at >= scan->len || word[j] != '\n')
			continue;
		const __u8 *cr = h->bytes + ((at - 1) & (REQUEST_LINE_MAX - 1));
		if (!scan->line_end) {
			/* The request line's end: a bare LF there is no HTTP/1 request of ours to touch. */
			if (at < 1 || cr[0] != '\r')
				return 1;
			scan->line_end = at + 1;
			continue;
		}
		/* "\r\n\r\n" ending at `at` */
		const __u8 *end = h->bytes + ((at - 3) & (REQUEST_LINE_MAX - 1));
		if (at >= 3 && end[0] == '\r' && end[1] == '\n' && end[2] == '\r') {
			scan->found = 1;
			return 1;
		}
		if (loupe_keeps_line(at + 1, scan->len))
			scan->keep = 1;
	}
	return 0;
}

/*
 * The message's first bytes, copied (bpf_loop callbacks cannot take packet
 * pointers), then read: where the request line ends, whether the head ends
 * within them, and whether a header line keeps the request as written. The
 * copy, or NULL when no CRLF ends a first line within it.
 * A head written in pieces (a Go request whose headers outgrow its 4 KiB
 * write buffer, a client writing line by line) is never touched: its later
 * pieces may still say it carries a traceparent or a signature of its own.
 */
static __always_inline struct head_copy *read_head(struct sk_msg_md *msg, struct head_scan *scan)
{
	__u32 zero = 0;
	struct head_copy *h = bpf_map_lookup_elem(&loupe_inject_head, &zero);
	__u32 size = msg->size;
	/* One byte short of the copy's size, so the bound is plain (a head ending at byte 4096 exactly is refused). */
	__u32 want = size < REQUEST_LINE_MAX ? size : REQUEST_LINE_MAX - 1;
	if (!h || want < 18 || bpf_msg_pull_data(msg, 0, want, 0))
		return NULL;
	char *data = msg->data;
	char *end = msg->data_end;
	__u64 n = masked(end - data, REQUEST_LINE_MAX - 1);
	if (n < 18 || n > want || bpf_probe_read_kernel(h->bytes, n, data))
		return NULL;
	scan->len = n;
	bpf_loop(REQUEST_LINE_MAX / 8, head_end_step, scan, 0);
	return scan->line_end ? h : NULL;
}

/*
 * Headers inserted, requests they could not be put on, and requests left as
 * written because they carry a traceparent or a signature; read by the agent
 * for its report.
 */
enum { INSERTED, REFUSED, KEPT };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} loupe_inject_counts SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&loupe_inject_counts, &which);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Do this process's HTTP/1 requests get a header from plain_request (config.inject_http)? */
static __always_inline int plain_injects(__u32 pid)
{
	struct loupe_config *cfg = loupe_cfg();
	if (!cfg || !cfg->inject_http || !may_change_bytes(cfg, pid))
		return 0;
	return cfg->inject_http == 1 || bpf_map_lookup_elem(&loupe_inject_pids, &pid) != NULL;
}

SEC("sockops")
int loupe_sockops(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB: {
		/* connect() runs in the process: this is where we know who opens it. */
		__u32 pid = bpf_get_current_pid_tgid() >> 32;
		struct loupe_go_offsets *off = bpf_map_lookup_elem(&loupe_go_procs, &pid);
		/* A Go program's by go.bpf.c's flag; another's when it is watched and (with a service rule) allowed. */
		int other = !off && plain_injects(pid);
		if ((off && (off->flags & LOUPE_GO_F_INJECT)) || other) {
			__u8 one = 1;
			bpf_map_update_elem(&loupe_inject_connecting, &cookie, &one, BPF_ANY);
		}
		break;
	}
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		/* Only an established socket may enter a sockhash. */
		if (bpf_map_lookup_elem(&loupe_inject_connecting, &cookie)) {
			bpf_map_delete_elem(&loupe_inject_connecting, &cookie);
			bpf_sock_hash_update(skops, &loupe_inject_socks, &cookie, BPF_ANY);
		}
		break;
	}
	return 1;
}

/* The 4-tuple as go.bpf.c keys it (read_addrs, unmap_v4: a v4-mapped IPv6 pair as IPv4). */
static __always_inline int conn_of(struct sk_msg_md *msg, struct conn_key *key)
{
	key->local_port = msg->local_port;
	/* Network order, and on little-endian kernels moved to the upper half (as sock_ops does): take whichever half holds it. */
	__u32 remote = bpf_ntohl(msg->remote_port);
	key->remote_port = (remote & 0xffff) ? (remote & 0xffff) : (remote >> 16);
	if (msg->family == AF_INET) {
		key->family = AF_INET;
		__u32 l = msg->local_ip4, r = msg->remote_ip4;
		__builtin_memcpy(key->local, &l, 4);
		__builtin_memcpy(key->remote, &r, 4);
		return 1;
	}
	if (msg->family != AF_INET6)
		return 0;
	__u32 l[4] = { msg->local_ip6[0], msg->local_ip6[1], msg->local_ip6[2], msg->local_ip6[3] };
	__u32 r[4] = { msg->remote_ip6[0], msg->remote_ip6[1], msg->remote_ip6[2], msg->remote_ip6[3] };
	key->family = AF_INET6;
	__builtin_memcpy(key->local, l, 16);
	__builtin_memcpy(key->remote, r, 16);
	unmap_v4(&key->family, key->local, key->remote);
	return 1;
}

/*
 * Put `header` (GO_TP_HEADER_LEN bytes) after the request line, which ends
 * at `line_end`: INSERTED, REFUSED (the message goes as it was) or, when the
 * room was made and can be neither filled nor taken out, SK_DROP's case:
 * the message is not sent (its write fails) rather than sent wrong.
 */
enum { HDR_PUT, HDR_LEFT, HDR_DROP };
static __always_inline int insert_header(struct sk_msg_md *msg, __u32 line_end, const char *header)
{
	if (bpf_msg_push_data(msg, line_end, GO_TP_HEADER_LEN, 0))
		return HDR_LEFT;
	/*
	 * The room is made: from here a failure must take it out again, or the
	 * request would go out with GO_TP_HEADER_LEN bytes nobody wrote. (A build
	 * with LOUPE_TEST_PULL_FAILS takes this path on every request, for the test.)
	 */
#ifdef LOUPE_TEST_PULL_FAILS
	if (1)
		goto unpush;
#endif
	if (bpf_msg_pull_data(msg, line_end, line_end + GO_TP_HEADER_LEN, 0))
		goto unpush;
	char *data = msg->data;
	if (data + GO_TP_HEADER_LEN > (char *)msg->data_end)
		goto unpush;
	__builtin_memcpy(data, header, GO_TP_HEADER_LEN);
	return HDR_PUT;
unpush:
	return bpf_msg_pop_data(msg, line_end, GO_TP_HEADER_LEN, 0) ? HDR_DROP : HDR_LEFT;
}

static __always_inline int verdict(int inserted)
{
	count(inserted == HDR_PUT ? INSERTED : REFUSED);
	return inserted == HDR_DROP ? SK_DROP : SK_PASS;
}

/*
 * The bytes inserted on this socket before (an entry at a freed socket's
 * address counts none): TCP counts them, the program's writes do not, so the
 * offsets of its calls and their TCP options leave them out.
 */
static __always_inline __u32 inserted_before(struct tcp_sock *tp, __u64 cookie)
{
	__u64 key = (__u64)tp;
	struct inject_state *kept = bpf_map_lookup_elem(&loupe_inject_sk, &key);
	return kept && kept->cookie == cookie ? kept->injected : 0;
}

static __always_inline __u64 cookie_of_tcp(struct tcp_sock *tp)
{
	return tp->inet_conn.icsk_inet.sk.__sk_common.skc_cookie.counter;
}

/* A head that stays as written (its own traceparent, a signature) or is not whole in this write: its verdict; -1: the header may go in. */
static __always_inline int untouchable(struct head_scan *scan)
{
	if (scan->keep) {
		count(KEPT);
		return SK_PASS;
	}
	return scan->found ? -1 : verdict(HDR_LEFT);
}

/* A Go program's request, whose header go.bpf.c prepared with its goroutine's context. */
static __always_inline int go_request(struct sk_msg_md *msg, struct conn_key *id, struct go_inject *found)
{
	struct go_inject inject = *found;
	/* Prepared for a send that never came this way: too old to trust. */
	if (bpf_ktime_get_ns() - inject.ts_ns > 1000000000ULL) {
		bpf_map_delete_elem(&loupe_go_inject, id);
		return SK_PASS;
	}
	struct head_scan scan = {};
	struct head_copy *h = read_head(msg, &scan);
	if (!h)
		return SK_PASS;
	/*
	 * It must be the request prepared: its method, then a space. Anything else
	 * sent on the socket meanwhile (the rest of a previous body) passes as it
	 * is and leaves the header waiting for its request.
	 */
	for (int i = 0; i < 8; i++) {
		if (inject.method[i] == 0) {
			if (h->bytes[i] != ' ')
				return SK_PASS;
			break;
		}
		if (h->bytes[i] != inject.method[i])
			return SK_PASS;
	}
	bpf_map_delete_elem(&loupe_go_inject, id);
	int left = untouchable(&scan);
	if (left >= 0)
		return left;
	__u32 line_end = scan.line_end;
	/* sk_msg's socket pointer allows no reads of its own: the BTF-typed one does. */
	struct tcp_sock *tp = msg->sk ? bpf_skc_to_tcp_sock(msg->sk) : NULL;
	int inserted = insert_header(msg, line_end, inject.header);
	if (inserted == HDR_PUT && tp) {
		/* Its ids are go.bpf.c's to report: only the bytes are counted here. */
		__u64 key = (__u64)tp;
		__u64 cookie = cookie_of_tcp(tp);
		struct inject_state st = { .cookie = cookie, .injected = inserted_before(tp, cookie) + GO_TP_HEADER_LEN };
		bpf_map_update_elem(&loupe_inject_sk, &key, &st, BPF_ANY);
	}
	return verdict(inserted);
}

/* "traceparent: 00-<trace>-<span>-01\r\n" from ids as bytes. */
static __always_inline void format_header(char *out, const __u8 *trace, const __u8 *span)
{
	__builtin_memcpy(out, "traceparent: 00-", 16);
	hex_of(out + 16, trace, 16);
	out[48] = '-';
	hex_of(out + 49, span, 8);
	__builtin_memcpy(out + 65, "-01\r\n", 5);
}

/*
 * Does the message start with an HTTP/1 request line: a method of 3 to 8
 * capitals, a space, a target, then " HTTP/1.0" or " HTTP/1.1" before the
 * CRLF at `line_end`? Anything else a program sends (a body, another
 * protocol, HTTP/2's preface "PRI * HTTP/2.0") goes untouched.
 */
static __always_inline int request_line(const __u8 *head, __u32 line_end)
{
	int method = 0;
	for (int i = 0; i < 9; i++) {
		if (head[i] == ' ') {
			method = i;
			break;
		}
		if (head[i] < 'A' || head[i] > 'Z')
			return 0;
	}
	if (method < 3 || line_end < 16 || line_end > REQUEST_LINE_MAX)
		return 0;
	const __u8 *v = head + ((line_end - 11) & (REQUEST_LINE_MAX - 1));
	return v[0] == ' ' && v[1] == 'H' && v[2] == 'T' && v[3] == 'T' && v[4] == 'P' && v[5] == '/' && v[6] == '1' && v[7] == '.' &&
	       (v[8] == '0' || v[8] == '1') && v[9] == '\r' && v[10] == '\n';
}

/* sk_msg's stack is small: the event and header are built here. */
struct plain_scratch {
	struct loupe_trace_context_event ev;
	struct inject_state call;
	char header[GO_TP_HEADER_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct plain_scratch);
} loupe_inject_scratch SEC(".maps");

/*
 * A request of a program that is not Go (loupe_inject_pids): its context is
 * the trace the sending thread serves (sockets.bpf.h sets it when the thread
 * begins reading a request, a thread-per-request server's or an event loop's
 * with one request open), else a new trace; its span id is new. A
 * trace_context record tells user space which ids went out, at which byte of
 * the stream the program wrote.
 */
static __always_inline int plain_request(struct sk_msg_md *msg)
{
	/* sk_msg's socket pointer allows no reads of its own: the BTF-typed one does. */
	struct tcp_sock *tp = msg->sk ? bpf_skc_to_tcp_sock(msg->sk) : NULL;
	if (!tp)
		return SK_PASS;
	/* Only a socket the agent reports: a header naming a span nobody reports would orphan the server's. */
	__u64 key = (__u64)tp;
	__u64 *cookie = bpf_map_lookup_elem(&loupe_tracked_sk, &key);
	__u32 zero = 0;
	struct plain_scratch *w = bpf_map_lookup_elem(&loupe_inject_scratch, &zero);
	if (!cookie || !w)
		return SK_PASS;
	__u64 reported = *cookie;
	__u32 size = msg->size;
	struct head_scan scan = {};
	struct head_copy *h = read_head(msg, &scan);
	/* Not a request's start, or its line is longer than a write buffer: as written. */
	if (!h || !request_line(h->bytes, scan.line_end))
		return SK_PASS;
	int left = untouchable(&scan);
	if (left >= 0)
		return left;
	__u32 line_end = scan.line_end;
	struct inject_state *call = &w->call;
	__builtin_memset(call, 0, sizeof(*call));
	__u8 origin = LOUPE_CTX_THREAD;
	if (!call_trace(key, call->trace)) {
		random_bytes(call->trace, 16);
		origin = LOUPE_CTX_NEW;
	}
	random_bytes(call->span, 8);
	/* Where the request starts in what the program wrote: TCP's count, less the bytes inserted before. */
	__u32 write_seq = tp->write_seq;
	__u32 snd_una = tp->snd_una;
	__u64 acked = tp->bytes_acked;
	call->cookie = cookie_of_tcp(tp);
	__u32 before = inserted_before(tp, call->cookie);
	/* bytes_acked counts the SYN, as tcpopt.bpf.c measured. */
	call->pending_offset = write_seq - (snd_una - (__u32)acked) - 1 - before;
	call->pending = 1;
	call->injected = before + GO_TP_HEADER_LEN;
	format_header(w->header, call->trace, call->span);
	int inserted = insert_header(msg, line_end, w->header);
	if (inserted == HDR_PUT) {
		bpf_map_update_elem(&loupe_inject_sk, &key, call, BPF_ANY);
		struct loupe_trace_context_event *ev = &w->ev;
		__builtin_memset(ev, 0, sizeof(*ev));
		fill_header(&ev->hdr, LOUPE_EV_TRACE_CONTEXT);
		ev->sock_cookie = reported;
		ev->offset = call->pending_offset;
		ev->length = size;
		ev->kind = LOUPE_CTX_CLIENT_CALL;
		ev->origin = origin;
		__builtin_memcpy(ev->trace_id, call->trace, 16);
		__builtin_memcpy(ev->span_id, call->span, 8);
		emit(ev, sizeof(*ev));
	}
	return verdict(inserted);
}

SEC("sk_msg")
int loupe_inject_traceparent(struct sk_msg_md *msg)
{
	struct conn_key id = {};
	if (!conn_of(msg, &id))
		return SK_PASS;
	struct go_inject *found = bpf_map_lookup_elem(&loupe_go_inject, &id);
	if (found)
		return go_request(msg, &id, found);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!plain_injects(pid) || bpf_map_lookup_elem(&loupe_go_procs, &pid))
		return SK_PASS;
	return plain_request(msg);
}
