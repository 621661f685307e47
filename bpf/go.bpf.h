/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the Go probes (go.bpf.c), the socket programs (net.bpf.c) and the
 * traceparent injector (inject.bpf.c) share: which processes are Go programs
 * we instrument and where their structs keep things, the trace context each
 * goroutine carries, and the traceparent an incoming request brought.
 *
 * Trace and span ids are kept as lower-case hex text, the form they travel
 * in: nothing here ever needs them as numbers.
 */
#ifndef LOUPE_GO_BPF_H
#define LOUPE_GO_BPF_H

#include "common.bpf.h"

#define GO_TRACE_HEX 32
#define GO_SPAN_HEX 16
/* "traceparent: " + 55 + "\r\n" */
#define GO_TP_HEADER_LEN 70
/* How far into a request the incoming traceparent is looked for. */
#define GO_TP_SCAN 2048

/* Go programs we instrument, by pid, with their struct offsets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct loupe_go_offsets);
} loupe_go_procs SEC(".maps");

struct go_key {
	__u32 pid;
	__u32 pad;
	__u64 goid;
};

struct go_ctx {
	char trace[GO_TRACE_HEX];
	char span[GO_SPAN_HEX];
	char flags[2]; /* trace-flags as the trace came in ("01" for one begun here): what it goes on with */
};

/* The trace context a goroutine works for: set by its server request, inherited by goroutines it starts. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_key);
	__type(value, struct go_ctx);
} loupe_go_ctx SEC(".maps");

struct go_fd_key {
	__u32 pid;
	__s32 fd;
};

struct go_incoming {
	char trace[GO_TRACE_HEX];
	char flags[2];
};

/* The trace id an HTTP request read on a Go server's pid:fd carried in its traceparent header. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_fd_key);
	__type(value, struct go_incoming);
} loupe_go_incoming SEC(".maps");

/*
 * A TCP connection by its 4-tuple: what both a uprobe (from the socket the fd
 * names) and sk_msg (from its context, which has no socket cookie) can tell.
 * Ports in host order; an IPv4 address fills the first 4 bytes.
 */
struct conn_key {
	__u16 family;
	__u16 local_port;
	__u16 remote_port;
	__u16 pad;
	__u8 local[16];
	__u8 remote[16];
};

/* The header to put on the next HTTP/1 request sent on a connection (inject.bpf.c takes it). */
struct go_inject {
	__u64 ts_ns;
	char method[8]; /* the request must start with this: other bytes on the socket pass untouched */
	char header[GO_TP_HEADER_LEN];
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct conn_key);
	__type(value, struct go_inject);
} loupe_go_inject SEC(".maps");

static __always_inline char hex_digit(__u32 v)
{
	v &= 0xf;
	return v < 10 ? '0' + v : 'a' + v - 10;
}

/* n bytes as 2n lower-case hex digits, as ids travel in traceparent. */
static __always_inline void hex_of(char *out, const __u8 *in, const int n)
{
	for (int k = 0; k < n; k++) {
		out[2 * k] = hex_digit(in[k] >> 4);
		out[2 * k + 1] = hex_digit(in[k]);
	}
}

/* n random hex digits (n a multiple of 8). */
static __always_inline void random_hex(char *out, const int n)
{
	for (int i = 0; i < n; i += 8) {
		__u32 r = bpf_get_prandom_u32();
		for (int j = 0; j < 8; j++)
			out[i + j] = hex_digit(r >> (28 - 4 * j));
	}
}

static __always_inline int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

#endif /* LOUPE_GO_BPF_H */
