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
 * The requests each thread of a watched server serves: one is added when the
 * thread begins reading a request, and it is gone when any thread writes the
 * answer on that socket. Calls are made for the one request open, as user
 * space's thread rule says (src/correlator/threads.ts counts the same way, so
 * the two agree on which calls are certain: a trace the kernel begins where
 * user space finds a parent is a different trace on the wire than in the
 * spans). An event loop with several open (under load) calls for none for
 * certain unless its last socket bytes were one request's (`fresh`): its
 * calls get traces of their own, since a wrong parent across hosts is worse
 * than none.
 */
#define THREAD_REQUESTS 8

struct thread_trace {
	__u64 sk[THREAD_REQUESTS]; /* server sockets whose request is open; 0: a free slot */
	__u8 trace[THREAD_REQUESTS][16];
	/* More requests began than there are slots: which one is left when all but one are answered is unknown. */
	__u32 overflow;
	/*
	 * The thread's last socket bytes were the request on `last_sk`: an event
	 * loop with several requests open that calls out right after reading one
	 * (nginx's upstream request on a kept-alive connection) calls for that
	 * one, as user space's event-loop rule says. Another socket's bytes end it.
	 */
	__u32 fresh;
	__u64 last_sk;
	__u8 last_trace[16];
};

/* 16,384 threads of watched servers at 232 bytes: 3.7 MB, preallocated as every LRU hash is. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct thread_trace);
} loupe_thread_trace SEC(".maps");

/* A thread's first request starts from this (never written): the value is too large for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct thread_trace);
} loupe_thread_blank SEC(".maps");

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

/* The trace of the request the calling thread works for, if certain: the one open, or the last whose bytes it read. */
static __always_inline const __u8 *thread_request(void)
{
	__u64 thread = bpf_get_current_pid_tgid();
	struct thread_trace *t = bpf_map_lookup_elem(&loupe_thread_trace, &thread);
	if (!t)
		return NULL;
	if (t->fresh)
		return t->last_trace;
	if (t->overflow)
		return NULL;
	int open = -1;
	for (int i = 0; i < THREAD_REQUESTS; i++) {
		if (!t->sk[i])
			continue;
		if (open >= 0)
			return NULL;
		open = i;
	}
	return open >= 0 ? t->trace[open & (THREAD_REQUESTS - 1)] : NULL;
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
	const __u8 *serving = thread_request();
	if (!serving)
		return 0;
	__builtin_memcpy(trace, serving, 16);
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
