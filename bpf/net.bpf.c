// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TCP sockets seen from the syscalls a process makes: which sockets it opens
 * (accept, connect), the bytes it moves through them (read/write and their
 * vector and message forms), and when it closes them. kprobes are not
 * available here, so everything hangs on syscall tracepoints; the 4-tuple is
 * read from the socket the fd names (task -> files -> file -> socket -> sock).
 */
#include "sockets.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void report_open(struct loupe_config *cfg, int fd, struct sock *sk, __u8 role)
{
	struct loupe_sock_open_event ev = {};
	fill_header(&ev.hdr, LOUPE_EV_SOCK_OPEN);
	ev.fd = fd;
	ev.role = role;
	ev.protocol = IPPROTO_TCP;
	ev.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev.remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	read_addrs(sk, &ev.family, ev.local_addr, ev.remote_addr);
	ev.sock_cookie = cookie_of(cfg, sk);
	ev.seq = BPF_CORE_READ((struct tcp_sock *)sk, write_seq);
	emit(&ev, sizeof(ev));
}

/* A new connection: accept() returned it (server) or connect() started it (client). */
static __always_inline void sock_opened(int fd, __u8 role)
{
	struct loupe_config *cfg = loupe_cfg();
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!watched(cfg, pid))
		return;
	struct sock *sk = sock_from_fd(fd);
	if (!sk)
		return;
	if (!port_allowed(cfg, sk)) {
		remember(cfg, pid, fd, sk, role, 0);
		return;
	}
	remember(cfg, pid, fd, sk, role, 1);
	report_open(cfg, fd, sk, role);
	if (role == LOUPE_ROLE_CLIENT)
		note_connect(cfg, sk);
}

/*
 * The socket behind pid:fd if we report it. A socket opened before the agent
 * started is learnt here, at its first read or write, with its role unknown.
 */
static __always_inline struct sock_info *traced_socket(struct loupe_config *cfg, __u32 pid, int fd)
{
	struct sock_key key = { .pid = pid, .fd = fd };
	struct sock_info *info = bpf_map_lookup_elem(&loupe_sockets, &key);
	if (!info) {
		struct sock *sk = sock_from_fd(fd);
		int traced = sk && port_allowed(cfg, sk);
		remember(cfg, pid, fd, sk, LOUPE_ROLE_UNKNOWN, traced);
		info = bpf_map_lookup_elem(&loupe_sockets, &key);
		/* Say what it is, with its 4-tuple: role unknown marks a socket met mid-life. */
		if (traced && sk)
			report_open(cfg, fd, sk, LOUPE_ROLE_UNKNOWN);
	}
	return info && info->traced ? info : NULL;
}

/* Syscall numbers of the reads and writes we report, and where the number is in pt_regs. */
#if defined(__TARGET_ARCH_x86)
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_CLOSE 3
#define NR_HIGHEST 47
/* Above NR_HIGHEST, so tested on its own. */
#define NR_ACCEPT4 288
/*
 * The syscall's number, and whether a 32-bit program made it (other numbers,
 * other registers: __USER32_CS). orig_ax, ip and cs follow one another in
 * x86-64's pt_regs (ptrace's user ABI, fixed), so one read takes both: each
 * helper call cost every read and write of the host about 15 ns.
 */
struct syscall_regs {
	__u64 orig_ax;
	__u64 ip;
	__u64 cs;
};
static __always_inline long syscall_nr(struct pt_regs *regs, int *compat)
{
	struct syscall_regs r = {};
	bpf_probe_read_kernel(&r, sizeof(r), __builtin_preserve_access_index(&regs->orig_ax));
	*compat = r.cs == 0x23;
	return r.orig_ax;
}
#elif defined(__TARGET_ARCH_arm64)
#define NR_READ 63
#define NR_WRITE 64
#define NR_READV 65
#define NR_WRITEV 66
#define NR_SENDTO 206
#define NR_RECVFROM 207
#define NR_SENDMSG 211
#define NR_RECVMSG 212
#define NR_CONNECT 203
#define NR_ACCEPT 202
#define NR_CLOSE 57
#define NR_ACCEPT4 242
#define NR_HIGHEST 242
/* The syscall's number, and whether an AArch32 program made it (other numbers, other registers: PSR_MODE32_BIT). */
static __always_inline long syscall_nr(struct pt_regs *regs, int *compat)
{
	*compat = (BPF_CORE_READ(regs, pstate) & 0x10) != 0;
	return BPF_CORE_READ(regs, syscallno);
}
#else
#error "syscall numbers for this architecture are not defined"
#endif

/*
 * A close, at its return. The fd number is free by then: another thread of the
 * process may already hold a new socket on it, whose accept or connect may
 * have put its entry in place of this one. That entry is left alone (the old
 * socket's connection then ends as idle on the user side); otherwise the entry
 * goes, and a traced socket's close is reported.
 */
static __always_inline void sock_closed(__u32 pid, int fd)
{
	struct sock_key key = { .pid = pid, .fd = fd };
	struct sock_info *info = bpf_map_lookup_elem(&loupe_sockets, &key);
	if (!info)
		return;
	struct sock *now = sock_from_fd(fd);
	if (now && info->sk == (__u64)now)
		return;
	if (info->traced) {
		struct loupe_sock_close_event ev = {};
		fill_header(&ev.hdr, LOUPE_EV_SOCK_CLOSE);
		ev.fd = fd;
		ev.sock_cookie = info->cookie;
		emit(&ev, sizeof(ev));
	}
	__u64 sk = info->sk;
	bpf_map_delete_elem(&loupe_connect_trace, &sk);
	bpf_map_delete_elem(&loupe_sockets, &key);
}

/*
 * accept, connect, close and every read and write family syscall, at its
 * return only: the arguments are still in the saved user registers then, so
 * no entry program and no map of calls in flight are needed (the pair cost a
 * hash-map update, lookup and delete, and a second program, on every traced
 * syscall). One raw tracepoint and nothing else on the syscall path: a second
 * probe on sys_exit (a per-syscall tracepoint such as sys_exit_accept4 is one,
 * through perf) or any on sys_enter turns the kernel's direct call into a loop
 * of indirect calls, and every syscall of the host paid for it (getppid: +56
 * ns against +23 ns with this program alone, bench/live). With a pid filter
 * a process not in it leaves at the first test, before its saved registers
 * are read (its reads and writes: +55 ns a syscall against +80); the
 * syscalls not ours leave at the next.
 */
SEC("raw_tracepoint/sys_exit")
int sys_exit_io(struct bpf_raw_tracepoint_args *ctx)
{
	/* Every syscall of every other process on the host takes this path. */
	__u64 id = bpf_get_current_pid_tgid();
	struct loupe_config *cfg = loupe_cfg();
	if (!cfg || (cfg->filter_pids && !pid_selected(id >> 32)))
		return 0;
	long ret = ctx->args[1];
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	int compat;
	long nr = syscall_nr(regs, &compat);
	if ((nr > NR_HIGHEST && nr != NR_ACCEPT4) || compat)
		return 0; /* not one of ours (most syscalls leave here), or a 32-bit program's */
	switch (nr) {
	case NR_CONNECT:
		/* Non-blocking sockets (Go, Node) return EINPROGRESS with the 4-tuple already chosen. */
		if (ret == 0 || ret == -EINPROGRESS)
			sock_opened(PT_REGS_PARM1_CORE_SYSCALL(regs), LOUPE_ROLE_CLIENT);
		return 0;
	case NR_ACCEPT:
	case NR_ACCEPT4:
		if (ret >= 0)
			sock_opened(ret, LOUPE_ROLE_SERVER);
		return 0;
	case NR_CLOSE:
		/* The fd is released even when close fails, unless it was never open. */
		if (ret != -EBADF)
			sock_closed(bpf_get_current_pid_tgid() >> 32, PT_REGS_PARM1_CORE_SYSCALL(regs));
		return 0;
	}
	if (ret <= 0)
		return 0;
	__u8 source;
	__u8 vector = 0;
	__u8 msg = 0;
	switch (nr) {
	case NR_READ: source = LOUPE_SRC_READ; break;
	case NR_WRITE: source = LOUPE_SRC_WRITE; break;
	case NR_READV: source = LOUPE_SRC_READV; vector = 1; break;
	case NR_WRITEV: source = LOUPE_SRC_WRITEV; vector = 1; break;
	case NR_RECVFROM: source = LOUPE_SRC_RECVFROM; break;
	case NR_SENDTO: source = LOUPE_SRC_SENDTO; break;
	case NR_RECVMSG: source = LOUPE_SRC_RECVMSG; msg = 1; break;
	case NR_SENDMSG: source = LOUPE_SRC_SENDMSG; msg = 1; break;
	default: return 0;
	}
	if ((__u32)(id >> 32) == cfg->agent_pid)
		return 0; /* the rest of watched(): the pid filter was passed above */
	int fd = PT_REGS_PARM1_CORE_SYSCALL(regs);
	struct sock_info *info = traced_socket(cfg, id >> 32, fd);
	if (!info)
		return 0;
	/* Only with OpenSSL probes attached can this syscall be inside SSL_read/SSL_write. */
	struct tls_call *tls = cfg->tls_probes ? bpf_map_lookup_elem(&loupe_tls_calls, &id) : NULL;
	if (tls) {
		/* Inside SSL_read/SSL_write: this is the SSL object's socket, and its bytes are ciphertext. */
		tls->fd = fd;
		tls->io_ns = bpf_ktime_get_ns();
		bpf_map_update_elem(&loupe_ssl_fds, &tls->ssl, &fd, BPF_ANY);
		info->tls = 1;
	}
	if (info->tls) {
		/*
		 * Go's crypto/tls reads on whichever thread runs the goroutine when the
		 * socket is ready, so its read is found by socket, not by thread.
		 */
		if (ret > 0 && (source == LOUPE_SRC_READ || source == LOUPE_SRC_READV || source == LOUPE_SRC_RECVFROM || source == LOUPE_SRC_RECVMSG))
			info->tls_read_ns = bpf_ktime_get_ns();
		return 0;
	}
	__u64 buf = PT_REGS_PARM2_CORE_SYSCALL(regs);
	__u64 count = PT_REGS_PARM3_CORE_SYSCALL(regs);
	if (msg) {
		/* sendmsg/recvmsg: the iovecs are inside the user's msghdr. */
		struct user_msghdr hdr = {};
		if (bpf_probe_read_user(&hdr, sizeof(hdr), (void *)buf))
			return 0;
		buf = (__u64)hdr.msg_iov;
		count = hdr.msg_iovlen;
		vector = 1;
	}
	emit_data(cfg, info, id >> 32, fd, source, 0, ret, buf, count, vector, 0);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	__u64 *cookie = bpf_map_lookup_elem(&loupe_tracked_sk, &sk);
	if (!cookie)
		return 0;
	struct loupe_tcp_state_event ev = {};
	fill_header(&ev.hdr, LOUPE_EV_TCP_STATE);
	ev.family = ctx->family;
	ev.local_port = ctx->sport;
	ev.remote_port = ctx->dport;
	ev.old_state = ctx->oldstate;
	ev.new_state = ctx->newstate;
	ev.sock_cookie = *cookie;
	/* The verifier forbids byte copies at computed context offsets: read them like memory. */
	if (ctx->family == AF_INET) {
		bpf_probe_read_kernel(ev.local_addr, 4, ctx->saddr);
		bpf_probe_read_kernel(ev.remote_addr, 4, ctx->daddr);
	} else {
		bpf_probe_read_kernel(ev.local_addr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(ev.remote_addr, 16, ctx->daddr_v6);
		if (is_v4_mapped(ev.local_addr) && is_v4_mapped(ev.remote_addr)) {
			ev.family = AF_INET;
			__builtin_memcpy(ev.local_addr, ev.local_addr + 12, 4);
			__builtin_memset(ev.local_addr + 4, 0, 12);
			__builtin_memcpy(ev.remote_addr, ev.remote_addr + 12, 4);
			__builtin_memset(ev.remote_addr + 4, 0, 12);
		}
	}
	if (ctx->newstate == TCP_CLOSE)
		bpf_map_delete_elem(&loupe_tracked_sk, &sk);
	emit(&ev, sizeof(ev));
	return 0;
}
