// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * HTTPS plaintext from OpenSSL: uprobes on SSL_read/SSL_write (and their _ex
 * forms), attached by the agent to the libssl a program uses. No OpenSSL
 * struct offsets: the socket syscall a call makes inside (net.bpf.c) names
 * the SSL object's fd and marks the socket as TLS, so from then on its
 * plaintext is reported instead of its ciphertext. Return probes are safe
 * here (C code on a normal stack; Go is another matter, see go*.bpf.c).
 */
#include "sockets.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int tls_enter(__u64 ssl, __u64 buf, __u64 bytes_out, __u8 source)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!watched(loupe_cfg(), id >> 32))
		return 0;
	struct tls_call call = { .ssl = ssl, .buf = buf, .bytes_out = bytes_out, .entry_ns = bpf_ktime_get_ns(), .fd = -1, .source = source };
	__s32 *fd = bpf_map_lookup_elem(&loupe_ssl_fds, &ssl);
	if (fd)
		call.fd = *fd;
	bpf_map_update_elem(&loupe_tls_calls, &id, &call, BPF_ANY);
	return 0;
}

/* ret: bytes (SSL_read/SSL_write) or 1 for success (_ex, the count is at bytes_out). */
static __always_inline int tls_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *c = bpf_map_lookup_elem(&loupe_tls_calls, &id);
	if (!c)
		return 0;
	struct tls_call call = *c;
	bpf_map_delete_elem(&loupe_tls_calls, &id);
	if (ret <= 0 || call.fd < 0)
		return 0;
	if (call.bytes_out) {
		__u64 n = 0;
		if (bpf_probe_read_user(&n, sizeof(n), (void *)call.bytes_out))
			return 0;
		ret = n;
	}
	/*
	 * Stamped so that cause comes before effect across the two ends: what is
	 * written at SSL_write's start (before the peer can have read any of it),
	 * what is read when its ciphertext came in (the last socket read inside
	 * SSL_read, or its start when the library served it from its buffer).
	 * Stamped at the calls' returns, a server's SSL_read (decrypting, waiting)
	 * came before the client's SSL_write of the same request returned, and a
	 * server span outlasted its client's: 28 of 50 through curl -> nginx.
	 */
	__u64 ts = call.source == LOUPE_SRC_SSL_WRITE || !call.io_ns ? call.entry_ns : call.io_ns;
	emit_data(loupe_cfg(), NULL, id >> 32, call.fd, call.source, LOUPE_DATA_F_TLS, ret, call.buf, 0, 0, ts);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_write, void *ssl, const void *buf, int num)
{
	return tls_enter((__u64)ssl, (__u64)buf, 0, LOUPE_SRC_SSL_WRITE);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_ret, int ret)
{
	return tls_exit(ret);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read, void *ssl, void *buf, int num)
{
	return tls_enter((__u64)ssl, (__u64)buf, 0, LOUPE_SRC_SSL_READ);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_ret, int ret)
{
	return tls_exit(ret);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return tls_enter((__u64)ssl, (__u64)buf, (__u64)written, LOUPE_SRC_SSL_WRITE);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_ex_ret, int ret)
{
	return tls_exit(ret);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return tls_enter((__u64)ssl, (__u64)buf, (__u64)readbytes, LOUPE_SRC_SSL_READ);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_ex_ret, int ret)
{
	return tls_exit(ret);
}
