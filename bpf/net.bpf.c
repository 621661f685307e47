// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TCP sockets seen from the syscalls a process makes: which sockets it opens
 * (accept, connect), the bytes it moves through them (read/write and their
 * vector and message forms), and when it closes them. kprobes are not
 * available here, so everything hangs on syscall tracepoints; the 4-tuple is
 * read from the socket the fd names (task -> files -> file -> socket -> sock).
 */
#include "common.bpf.h"

#define EINPROGRESS 115
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define IPPROTO_TCP 6
#define SOCK_STREAM 1
#define TCP_CLOSE 7
/* Vector calls: iovecs copied per record, a bound the verifier can see. */
#define MAX_IOV 8
#define PAYLOAD_MASK (2 * LOUPE_MAX_PAYLOAD - 1)

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct sock_key {
	__u32 pid;
	__s32 fd;
};

struct sock_info {
	__u64 cookie;
	__u64 sk;
	__u8 role;
	__u8 traced; /* 0: not a TCP socket we watch (a file, a pipe, a filtered port) */
	__u8 pad[6];
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

/* A syscall between its entry and its exit: what it was asked to do. */
struct call {
	__u64 buf;   /* the buffer, or the iovec array for vector calls */
	__u64 count; /* bytes asked for, or iovec count */
	__s32 fd;
	__u8 source; /* enum loupe_data_source */
	__u8 vector;
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct call);
} loupe_calls SEC(".maps");

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

static __always_inline int is_v4_mapped(const __u8 *a)
{
	for (int i = 0; i < 10; i++)
		if (a[i])
			return 0;
	return a[10] == 0xff && a[11] == 0xff;
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
	if (is_v4_mapped(local) && is_v4_mapped(remote)) {
		*family = AF_INET;
		__builtin_memcpy(local, local + 12, 4);
		__builtin_memset(local + 4, 0, 12);
		__builtin_memcpy(remote, remote + 12, 4);
		__builtin_memset(remote + 4, 0, 12);
	}
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
	struct sock_info info = { .role = role, .traced = traced };
	if (traced) {
		info.sk = (__u64)sk;
		info.cookie = cookie_of(cfg, sk);
		bpf_map_update_elem(&loupe_tracked_sk, &info.sk, &info.cookie, BPF_ANY);
	}
	bpf_map_update_elem(&loupe_sockets, &key, &info, BPF_ANY);
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
	struct loupe_sock_open_event ev = {};
	fill_header(&ev.hdr, LOUPE_EV_SOCK_OPEN);
	ev.fd = fd;
	ev.role = role;
	ev.protocol = IPPROTO_TCP;
	ev.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev.remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	read_addrs(sk, &ev.family, ev.local_addr, ev.remote_addr);
	ev.sock_cookie = cookie_of(cfg, sk);
	emit(&ev, sizeof(ev));
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret >= 0)
		sock_opened(ctx->ret, LOUPE_ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret >= 0)
		sock_opened(ctx->ret, LOUPE_ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call c = { .fd = (int)ctx->args[0] };
	if (!watched(loupe_cfg(), id >> 32))
		return 0;
	bpf_map_update_elem(&loupe_calls, &id, &c, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&loupe_calls, &id);
	if (!c)
		return 0;
	int fd = c->fd;
	bpf_map_delete_elem(&loupe_calls, &id);
	/* Non-blocking sockets (Go, Node) return EINPROGRESS with the 4-tuple already chosen. */
	if (ctx->ret == 0 || ctx->ret == -EINPROGRESS)
		sock_opened(fd, LOUPE_ROLE_CLIENT);
	return 0;
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
		remember(cfg, pid, fd, sk, LOUPE_ROLE_UNKNOWN, sk && port_allowed(cfg, sk));
		info = bpf_map_lookup_elem(&loupe_sockets, &key);
	}
	return info && info->traced ? info : NULL;
}

static __always_inline int enter_io(int fd, __u64 buf, __u64 count, __u8 source, __u8 vector)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct loupe_config *cfg = loupe_cfg();
	if (!watched(cfg, id >> 32) || !traced_socket(cfg, id >> 32, fd))
		return 0;
	struct call c = { .buf = buf, .count = count, .fd = fd, .source = source, .vector = vector };
	bpf_map_update_elem(&loupe_calls, &id, &c, BPF_ANY);
	return 0;
}

/* sendmsg/recvmsg: the iovecs are inside the user's msghdr. */
static __always_inline int enter_msg(int fd, __u64 msg, __u8 source)
{
	struct user_msghdr hdr = {};
	if (bpf_probe_read_user(&hdr, sizeof(hdr), (void *)msg))
		return 0;
	return enter_io(fd, (__u64)hdr.msg_iov, hdr.msg_iovlen, source, 1);
}

static __always_inline int exit_io(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&loupe_calls, &id);
	if (!c)
		return 0;
	struct call call = *c;
	bpf_map_delete_elem(&loupe_calls, &id);
	if (ret <= 0)
		return 0;
	struct loupe_config *cfg = loupe_cfg();
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&loupe_scratch, &zero);
	if (!cfg || !s)
		return 0;
	struct sock_key key = { .pid = id >> 32, .fd = call.fd };
	struct sock_info *info = bpf_map_lookup_elem(&loupe_sockets, &key);
	if (!info)
		return 0;
	struct loupe_data_event *ev = &s->ev;
	fill_header(&ev->hdr, LOUPE_EV_DATA);
	ev->fd = call.fd;
	ev->source = call.source;
	ev->direction = call.source >= LOUPE_SRC_WRITE ? LOUPE_DIR_EGRESS : LOUPE_DIR_INGRESS;
	ev->flags = 0;
	ev->sock_cookie = info->cookie;
	ev->bytes = ret;
	ev->pad0 = 0;
	__u32 want = cfg->max_payload < LOUPE_MAX_PAYLOAD ? cfg->max_payload : LOUPE_MAX_PAYLOAD;
	if (want > ret)
		want = ret;
	__u32 got = 0;
	if (!call.vector) {
		__u32 len = masked(want, PAYLOAD_MASK);
		if (len && bpf_probe_read_user(ev->payload, len, (void *)call.buf) == 0)
			got = len;
	} else {
		struct iovec *vec = (struct iovec *)call.buf;
		for (int i = 0; i < MAX_IOV; i++) {
			if (i >= call.count || got >= want || got >= LOUPE_MAX_PAYLOAD)
				break;
			struct iovec iov = {};
			if (bpf_probe_read_user(&iov, sizeof(iov), &vec[i]))
				break;
			__u64 len = iov.iov_len;
			if (len > want - got)
				len = want - got;
			if (bpf_probe_read_user(ev->payload + masked(got, LOUPE_MAX_PAYLOAD - 1), masked(len, PAYLOAD_MASK), iov.iov_base))
				break;
			got += len;
		}
	}
	ev->captured = got;
	if (got < ret)
		ev->flags |= LOUPE_DATA_F_TRUNCATED;
	emit(ev, offsetof(struct loupe_data_event, payload) + masked(got, PAYLOAD_MASK));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], ctx->args[2], LOUPE_SRC_READ, 0);
}

SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct trace_event_raw_sys_exit *ctx)
{
	return exit_io(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], ctx->args[2], LOUPE_SRC_READV, 1);
}

SEC("tracepoint/syscalls/sys_exit_readv")
int exit_readv(struct trace_event_raw_sys_exit *ctx)
{
	return exit_io(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], ctx->args[2], LOUPE_SRC_RECVFROM, 0);
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx)
{
	return exit_io(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return enter_msg(ctx->args[0], ctx->args[1], LOUPE_SRC_RECVMSG);
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx)
{
	return exit_io(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], ctx->args[2], LOUPE_SRC_WRITE, 0);
}

SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct trace_event_raw_sys_exit *ctx)
{
	return exit_io(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], ctx->args[2], LOUPE_SRC_WRITEV, 1);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int exit_writev(struct trace_event_raw_sys_exit *ctx)
{
	return exit_io(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], ctx->args[2], LOUPE_SRC_SENDTO, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx)
{
	return exit_io(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return enter_msg(ctx->args[0], ctx->args[1], LOUPE_SRC_SENDMSG);
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx)
{
	return exit_io(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct sock_key key = { .pid = pid, .fd = (int)ctx->args[0] };
	struct sock_info *info = bpf_map_lookup_elem(&loupe_sockets, &key);
	if (!info)
		return 0;
	if (info->traced) {
		struct loupe_sock_close_event ev = {};
		fill_header(&ev.hdr, LOUPE_EV_SOCK_CLOSE);
		ev.fd = key.fd;
		ev.sock_cookie = info->cookie;
		emit(&ev, sizeof(ev));
	}
	bpf_map_delete_elem(&loupe_sockets, &key);
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
