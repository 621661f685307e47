// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Trace context across hosts for any TCP protocol, with no payload byte
 * changed: the first segment of each call a watched client makes carries the
 * trace id and the call's span id in a TCP header option, and a server's
 * kernel with Loupe reads it from the segment (sock_ops header-option
 * callbacks). Which trace a call belongs to is the thread's: the trace of the
 * request it last began reading as a server (sockets.bpf.h), else a new one.
 *
 * Only sockets of watched processes get the write callbacks (set at their
 * connect, in the process); every accepted socket gets the parse callback,
 * which runs only for segments with an option the kernel does not know and
 * changes nothing.
 */
#include "sockets.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TCP_FLAG_SYN 0x02

/*
 * Does the segment being built start a call worth tagging? A socket of a
 * watched process, written by that process (not a softirq sending on later),
 * with payload that still fits one segment once the option is in (the payload
 * was cut to the MSS without it), and an answer read since its last tagged call.
 */
static __always_inline __u64 *call_starts(struct loupe_config *cfg, struct bpf_sock_ops *skops, __u32 payload)
{
	if (skops->args[0] == BPF_WRITE_HDR_TCP_CURRENT_MSS || (skops->skb_tcp_flags & TCP_FLAG_SYN))
		return NULL;
	if (payload == 0 || payload + LOUPE_TCPOPT_LEN > skops->mss_cache)
		return NULL;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!may_change_bytes(cfg, pid) || (cfg->tcp_options == 2 && !bpf_map_lookup_elem(&loupe_tcpopt_pids, &pid)))
		return NULL;
	__u64 sk = (__u64)skops->sk;
	__u64 *cookie = bpf_map_lookup_elem(&loupe_tracked_sk, &sk);
	if (!cookie)
		return NULL;
	__u32 *last = bpf_map_lookup_elem(&loupe_tcpopt_sent, &sk);
	if (last && *last == skops->rcv_nxt)
		return NULL;
	return cookie;
}

/* The segment is written: tag it if it is the call's first (new data, not a retransmission), and say so. */
static __always_inline void write_context(struct loupe_config *cfg, struct bpf_sock_ops *skops)
{
	struct tcphdr *th = skops->skb_data;
	if ((void *)(th + 1) > skops->skb_data_end)
		return;
	/* Read before any helper call: those invalidate packet pointers. Its header is written by now: the payload is what follows it. */
	__u32 seq = bpf_ntohl(th->seq);
	__u32 payload = skops->skb_len - th->doff * 4;
	__u64 *cookie = call_starts(cfg, skops, payload);
	if (!cookie)
		return;
	if (seq != skops->snd_nxt)
		return; /* a retransmission: the room stays NOPs */
	struct loupe_tcpopt opt = { .kind = LOUPE_TCPOPT_KIND, .len = LOUPE_TCPOPT_LEN, .exid = { LOUPE_TCPOPT_EXID_HI, LOUPE_TCPOPT_EXID_LO } };
	__u64 sk = (__u64)skops->sk;
	/*
	 * snd_una and bytes_acked move together, and bytes_acked counts the SYN
	 * (measured: the first data byte came out as offset 1): their difference,
	 * plus one, is the stream's first data byte. Headers inject.bpf.c put in
	 * are TCP's bytes but not the program's: the offset leaves them out.
	 */
	__u32 offset = seq - (skops->snd_una - (__u32)skops->bytes_acked) - 1;
	struct inject_state *injected = bpf_map_lookup_elem(&loupe_inject_sk, &sk);
	if (injected && injected->cookie != bpf_get_socket_cookie(skops))
		injected = NULL;
	__u8 origin = LOUPE_CTX_NEW;
	int reported = 0;
	if (injected) {
		/* The call whose header went in (its own header is after its first byte): the option names the same span, and inject.bpf.c reported it. */
		if (injected->pending && offset - (injected->injected - GO_TP_HEADER_LEN) == injected->pending_offset) {
			__builtin_memcpy(opt.trace, injected->trace, 16);
			__builtin_memcpy(opt.span, injected->span, 8);
			reported = 1;
		}
		offset -= injected->injected;
		injected->pending = 0;
	}
	if (!reported) {
		if (call_trace(sk, opt.trace))
			origin = LOUPE_CTX_THREAD;
		else
			random_bytes(opt.trace, 16);
		random_bytes(opt.span, 8);
	}
	if (bpf_store_hdr_opt(skops, &opt, sizeof(opt), 0))
		return;
	__u32 rcv_nxt = skops->rcv_nxt;
	bpf_map_update_elem(&loupe_tcpopt_sent, &sk, &rcv_nxt, BPF_ANY);
	if (reported)
		return;
	struct loupe_trace_context_event ev = {};
	fill_header(&ev.hdr, LOUPE_EV_TRACE_CONTEXT);
	ev.sock_cookie = *cookie;
	ev.offset = offset;
	ev.length = payload;
	ev.kind = LOUPE_CTX_CLIENT_CALL;
	ev.origin = origin;
	__builtin_memcpy(ev.trace_id, opt.trace, 16);
	__builtin_memcpy(ev.span_id, opt.span, 8);
	emit(&ev, sizeof(ev));
}

/* A segment with an option the kernel does not know arrived: keep ours for the read that gets to it. */
static __always_inline void read_context(struct bpf_sock_ops *skops)
{
	struct loupe_tcpopt opt = { .kind = LOUPE_TCPOPT_KIND, .len = 4, .exid = { LOUPE_TCPOPT_EXID_HI, LOUPE_TCPOPT_EXID_LO } };
	if (bpf_load_hdr_opt(skops, &opt, sizeof(opt), 0) != LOUPE_TCPOPT_LEN)
		return;
	struct tcphdr *th = skops->skb_data;
	if ((void *)(th + 1) > skops->skb_data_end)
		return;
	struct tcpopt_carried got = {};
	got.offset = bpf_ntohl(th->seq) - (skops->rcv_nxt - (__u32)skops->bytes_received);
	got.length = skops->skb_len - th->doff * 4;
	__builtin_memcpy(got.trace, opt.trace, 16);
	__builtin_memcpy(got.span, opt.span, 8);
	__u64 sk = (__u64)skops->sk;
	struct tcpopt_in in = {};
	__u64 cookie = bpf_get_socket_cookie(skops);
	struct tcpopt_in *kept = bpf_map_lookup_elem(&loupe_tcpopt_in, &sk);
	if (kept && kept->cookie == cookie)
		in = *kept;
	in.cookie = cookie;
	if (in.count > 0 && in.carried[(in.count - 1) & (TCPOPT_KEPT - 1)].offset == got.offset)
		return; /* a retransmission of the segment, or GSO's copy of its header: the same tag */
	if (in.count >= TCPOPT_KEPT) {
		/* Full: the oldest goes (its request's server has not read that far in TCPOPT_KEPT calls). */
		for (int i = 0; i < TCPOPT_KEPT - 1; i++)
			in.carried[i] = in.carried[i + 1];
		in.count = TCPOPT_KEPT - 1;
	}
	in.carried[in.count & (TCPOPT_KEPT - 1)] = got;
	in.count++;
	bpf_map_update_elem(&loupe_tcpopt_in, &sk, &in, BPF_ANY);
}

SEC("sockops")
int loupe_tcp_options(struct bpf_sock_ops *skops)
{
	struct loupe_config *cfg = loupe_cfg();
	if (!cfg || !cfg->tcp_options)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB: {
		/* connect() runs in the process: the one place a client socket's owner is known before it sends. */
		if (!watched(cfg, bpf_get_current_pid_tgid() >> 32))
			break;
		/* A new socket, maybe at a freed one's address: nothing of that one's calls holds for it. */
		__u64 sk = (__u64)skops->sk;
		bpf_map_delete_elem(&loupe_tcpopt_sent, &sk);
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	}
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		/* No header yet: the skb's length is its payload. */
		if (call_starts(cfg, skops, skops->skb_len))
			bpf_reserve_hdr_opt(skops, LOUPE_TCPOPT_LEN, 0);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		write_context(cfg, skops);
		break;
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		read_context(skops);
		break;
	}
	return 1;
}
