/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What TCP-option propagation shares between the socket programs, which see
 * a watched server begin reading a request (sockets.bpf.h), and the sock_ops
 * program that writes and reads the option (tcpopt.bpf.c): the context a
 * segment brought, the trace each thread serves, and where each socket's
 * last tagged call was.
 *
 * The kernel chooses the ids, as go.bpf.c does for goroutines, because the
 * segment leaves before user space sees the write; records tell user space
 * which ids went where (loupe_trace_context_event).
 */
#ifndef LOUPE_PROPAGATION_BPF_H
#define LOUPE_PROPAGATION_BPF_H

#include "common.bpf.h"

/*
 * The option: kind 254 with an RFC 6994 experiment id, then the trace id and
 * the calling span's id. 28 bytes is what is left of TCP's 40 bytes of options
 * beside timestamps (12 with padding), so a segment that also carries SACK
 * blocks goes without (bpf_reserve_hdr_opt refuses).
 */
#define LOUPE_TCPOPT_KIND 254
/* "LP": not registered with IANA (RFC 6994 asks experiments to be; a deployment may pick another). */
#define LOUPE_TCPOPT_EXID_HI 0x4c
#define LOUPE_TCPOPT_EXID_LO 0x50
#define LOUPE_TCPOPT_LEN 28

struct loupe_tcpopt {
	__u8 kind;
	__u8 len;
	__u8 exid[2];
	__u8 trace[16];
	__u8 span[8];
};

/* The context a TCP option brought on one segment. */
struct tcpopt_carried {
	__u32 offset; /* stream offset of the segment's first byte */
	__u32 length; /* its payload bytes */
	__u8 trace[16];
	__u8 span[8];
};

/*
 * The contexts TCP options brought to a socket, by kernel socket address, in
 * stream order, until its server reads that far. Several: a client's next
 * call (or an HTTP/2 client's frame after an answer) may arrive before the
 * server reads the one before, and each must reach user space, or the two
 * ends would disagree on which request a tag names.
 */
#define TCPOPT_KEPT 4
struct tcpopt_in {
	/*
	 * The kernel's socket cookie, never reused, unlike the address that keys
	 * the map: a socket freed and its memory given to another must not hand
	 * its contexts on (every agent's parse callback runs for every accepted
	 * socket of the host, watched or not).
	 */
	__u64 cookie;
	__u32 count;
	__u32 pad;
	struct tcpopt_carried carried[TCPOPT_KEPT];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tcpopt_in);
} loupe_tcpopt_in SEC(".maps");

/*
 * The trace each thread of a watched server serves: set when it begins
 * reading a request, read when it calls out, gone when it writes the answer
 * on that socket. A thread that began requests on two sockets before
 * answering (an event loop under load) serves neither for certain: its calls
 * get traces of their own, as user space's ambiguous-thread rule does, since a
 * wrong parent across hosts is worse than none.
 */
struct thread_trace {
	__u8 trace[16];
	__u64 sk;        /* the server socket the request came on */
	__u32 ambiguous; /* requests on two sockets began unanswered */
	/*
	 * The thread's last socket bytes were that request's: an event loop with
	 * several requests open that calls out right after reading one (nginx's
	 * upstream request on a kept-alive connection) calls for that one, as user
	 * space's event-loop rule says. Another socket's bytes end it.
	 */
	__u32 fresh;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct thread_trace);
} loupe_thread_trace SEC(".maps");

/*
 * The trace a client connection was opened for, by kernel socket address: the
 * thread's request when connect() ran, if certain then (one request open, or
 * the thread's last bytes were that request's). An event loop opens an
 * upstream connection right after reading the request that needs it and may
 * read others before the connection is up and the request goes out on it
 * (nginx under load): the connection's first call is that request's. Taken
 * by the first call; gone at close.
 */
struct connect_trace {
	__u8 trace[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct connect_trace);
} loupe_connect_trace SEC(".maps");

/* The request the calling thread works for, if certain: one open, or the last whose bytes it read. */
static __always_inline struct thread_trace *thread_request(void)
{
	__u64 thread = bpf_get_current_pid_tgid();
	struct thread_trace *t = bpf_map_lookup_elem(&loupe_thread_trace, &thread);
	return t && (!t->ambiguous || t->fresh) ? t : NULL;
}

/*
 * The trace a call on client socket `sk` (kernel address) belongs to, into
 * `trace`: the one its connection was opened for, if this is its first call,
 * else the calling thread's request's. 0: none is certain.
 */
static __always_inline int call_trace(__u64 sk, __u8 *trace)
{
	struct connect_trace *opened = bpf_map_lookup_elem(&loupe_connect_trace, &sk);
	if (opened) {
		__builtin_memcpy(trace, opened->trace, 16);
		bpf_map_delete_elem(&loupe_connect_trace, &sk);
		return 1;
	}
	struct thread_trace *t = thread_request();
	if (!t)
		return 0;
	__builtin_memcpy(trace, t->trace, 16);
	return 1;
}

/*
 * With config.tcp_options 2 (a service rule turns propagation off for some):
 * the processes whose calls may carry the option, each added by the agent
 * once it knows which service the process is. Until then none do.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} loupe_tcpopt_pids SEC(".maps");

/* Per client socket: rcv_nxt when its last call was tagged; a new call starts once an answer came in since. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} loupe_tcpopt_sent SEC(".maps");

/*
 * With config.inject_http 2 (a service rule turns propagation off for some):
 * the processes that are not Go programs whose HTTP/1 requests may get a
 * traceparent header from inject.bpf.c, each added by the agent once it
 * knows which service the process is. Until then none do. Go programs'
 * headers are go.bpf.c's, per goroutine.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} loupe_inject_pids SEC(".maps");

/*
 * Per client socket that had a header inserted, by kernel socket address:
 * the bytes inserted so far, which TCP counts and the program's own writes do
 * not (a TCP option's stream offset is corrected by them), and the ids of the
 * last inserted header, which the call's TCP option carries too, so both name
 * one span.
 */
struct inject_state {
	__u64 cookie;   /* the kernel's socket cookie: an entry at a freed socket's address is not this socket's */
	__u32 injected; /* bytes inserted so far, the pending call's header included */
	__u32 pending;  /* the ids below are the next tagged call's */
	__u32 pending_offset; /* that call's first byte, in the stream the program writes */
	__u8 trace[16];
	__u8 span[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct inject_state);
} loupe_inject_sk SEC(".maps");

static __always_inline void random_bytes(__u8 *out, const int n)
{
	for (int i = 0; i < n; i += 4) {
		__u32 r = bpf_get_prandom_u32();
		__builtin_memcpy(out + i, &r, 4);
	}
}

#endif /* LOUPE_PROPAGATION_BPF_H */
