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
#include "go.bpf.h"

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
	__u8 slack[16]; /* a word read at the copy's end stays inside the value */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct head_copy);
} loupe_inject_head SEC(".maps");

struct head_scan {
	__u32 len;
	__u32 found; /* the head ends (a blank line) within the copy */
};

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
		/* "\r\n\r\n" ending at `at`, all of it within what was copied */
		if (at < 3 || at >= scan->len || word[j] != '\n')
			continue;
		const __u8 *end = h->bytes + ((at - 3) & (REQUEST_LINE_MAX - 1));
		if (end[0] == '\r' && end[1] == '\n' && end[2] == '\r') {
			scan->found = 1;
			return 1;
		}
	}
	return 0;
}

/*
 * Does the request's head end within the first `len` bytes of the message?
 * A head written in pieces (a Go request whose headers outgrow its 4 KiB
 * write buffer) is never touched: its later pieces may still say it carries
 * a traceparent or a signature of its own.
 */
static __always_inline int head_within(char *data, __u32 len)
{
	__u32 zero = 0;
	struct head_copy *h = bpf_map_lookup_elem(&loupe_inject_head, &zero);
	/* One byte short of the copy's size, so the verifier sees the bound (a head ending at byte 4096 exactly is refused). */
	__u32 n = (len < REQUEST_LINE_MAX ? len : REQUEST_LINE_MAX - 1) & (REQUEST_LINE_MAX - 1);
	if (!h || len > REQUEST_LINE_MAX || bpf_probe_read_kernel(h->bytes, n, data))
		return 0;
	struct head_scan scan = { .len = n };
	bpf_loop(REQUEST_LINE_MAX / 8, head_end_step, &scan, 0);
	return scan.found;
}

/* Headers inserted, and requests they could not be put on; read by the agent for its report. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} loupe_inject_counts SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&loupe_inject_counts, &which);
	if (n)
		__sync_fetch_and_add(n, 1);
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
		if (off && (off->flags & LOUPE_GO_F_INJECT)) {
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
 * The offset just past the request line's CRLF, or 0 when it does not end
 * within the data. Eight bytes a step: the verifier unrolls this loop, and a
 * branch per byte over REQUEST_LINE_MAX bytes is more than it follows.
 */
static __always_inline __u32 request_line_end(char *data, char *end)
{
	__u32 at = 0;
	for (__u32 i = 0; i < REQUEST_LINE_MAX / 8; i++, at += 8) {
		if (data + at + 8 > end)
			break;
		if (bytes_equal_to(*(__u64 *)(data + at), '\n'))
			break;
	}
	/* The LF is within the eight bytes at `at`, or in the tail shorter than a word. */
	for (__u32 j = 0; j < 8; j++) {
		__u32 i = at + j;
		if (i < 1 || i >= REQUEST_LINE_MAX || data + i + 1 > end)
			return 0;
		if (data[i] == '\n')
			return data[i - 1] == '\r' ? i + 1 : 0;
	}
	return 0;
}

SEC("sk_msg")
int loupe_inject_traceparent(struct sk_msg_md *msg)
{
	struct conn_key id = {};
	if (!conn_of(msg, &id))
		return SK_PASS;
	struct go_inject *found = bpf_map_lookup_elem(&loupe_go_inject, &id);
	if (!found)
		return SK_PASS;
	struct go_inject inject = *found;
	/* Prepared for a send that never came this way: too old to trust. */
	if (bpf_ktime_get_ns() - inject.ts_ns > 1000000000ULL) {
		bpf_map_delete_elem(&loupe_go_inject, &id);
		return SK_PASS;
	}
	__u32 head = msg->size < REQUEST_LINE_MAX ? msg->size : REQUEST_LINE_MAX;
	if (head < 16 || bpf_msg_pull_data(msg, 0, head, 0))
		return SK_PASS;
	char *data = msg->data;
	char *end = msg->data_end;
	if (data + 16 > end)
		return SK_PASS;
	/*
	 * It must be the request prepared: its method, then a space. Anything else
	 * sent on the socket meanwhile (the rest of a previous body) passes as it
	 * is and leaves the header waiting for its request.
	 */
	for (int i = 0; i < 8; i++) {
		if (data + i + 1 > end)
			return SK_PASS;
		if (inject.method[i] == 0) {
			if (data[i] != ' ')
				return SK_PASS;
			break;
		}
		if (data[i] != inject.method[i])
			return SK_PASS;
	}
	bpf_map_delete_elem(&loupe_go_inject, &id);
	__u32 line_end = request_line_end(data, end);
	if (!line_end || !head_within(data, (__u32)(end - data)))
		goto refused;
	if (bpf_msg_push_data(msg, line_end, GO_TP_HEADER_LEN, 0))
		goto refused;
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
	data = msg->data;
	end = msg->data_end;
	if (data + GO_TP_HEADER_LEN > end)
		goto unpush;
	__builtin_memcpy(data, inject.header, GO_TP_HEADER_LEN);
	count(0);
	return SK_PASS;
unpush:
	if (bpf_msg_pop_data(msg, line_end, GO_TP_HEADER_LEN, 0)) {
		/* The message can be neither completed nor restored: it is not sent (the write fails) rather than sent wrong. */
		count(1);
		return SK_DROP;
	}
refused:
	count(1);
	return SK_PASS;
}
