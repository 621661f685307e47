/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps and helpers every Loupe BPF object shares. Each object declares these
 * maps; the addon loads the objects in order and makes a later object reuse
 * the earlier object's map of the same name, so all programs write one ring
 * buffer and read one config.
 */
#ifndef LOUPE_COMMON_BPF_H
#define LOUPE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "events.h"

#define AF_INET 2
#define AF_INET6 10

/* The one ring buffer; its size is set by the addon before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} loupe_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loupe_config);
} loupe_config SEC(".maps");

/*
 * Processes to watch when config.filter_pids is on: a bit per pid, 64 to a
 * word, for every pid Linux can give (PID_MAX_LIMIT). Every read and write
 * of every process asks, so the answer is an array lookup the verifier
 * inlines rather than a hash lookup (about 30 ns of each unwatched read or
 * write). Both sides change bits with atomic operations: the kernel side at
 * fork and exit, the agent through the map mmapped (BPF_F_MMAPABLE), so
 * neither can undo the other's change to a shared word.
 */
#define LOUPE_PID_WORDS ((4 * 1024 * 1024) / 64)
#define LOUPE_PID_BITMAP(name)                       \
	struct {                                     \
		__uint(type, BPF_MAP_TYPE_ARRAY);    \
		__uint(max_entries, LOUPE_PID_WORDS); \
		__uint(map_flags, BPF_F_MMAPABLE);   \
		__type(key, __u32);                  \
		__type(value, __u64);                \
	} name SEC(".maps")

LOUPE_PID_BITMAP(loupe_pids);

/*
 * With --exe, processes the kernel side watches from their exec on until the
 * agent has decided on their exec record (bits as in loupe_pids). The agent
 * takes each bit back (atomically, through the map mmapped) when it decides:
 * the bit tells it whether what came before is the process's own to drop.
 */
LOUPE_PID_BITMAP(loupe_pending);

/*
 * With --exe: the executable files (device and inode, as the kernel numbers
 * them) that --exe matches under every name the agent found them by at start
 * (the directories of PATH and the usual bin directories), and the processes
 * that exec'd one (loupe_exe_known, set or cleared at each exec). A pending
 * process running one may have its bytes changed before the agent decides
 * (curl writes its request a few ms after its exec, before any agent could
 * decide); any other pending process may not (may_change_bytes).
 */
struct exe_file_key {
	__u64 dev;
	__u64 ino;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct exe_file_key);
	__type(value, __u8);
} loupe_exe_files SEC(".maps");

LOUPE_PID_BITMAP(loupe_exe_known);

static __always_inline int pid_bit(void *bitmap, __u32 pid)
{
	__u32 word = pid / 64;
	__u64 *bits = bpf_map_lookup_elem(bitmap, &word);
	return bits && ((*bits >> (pid % 64)) & 1);
}

static __always_inline void pid_bit_set(void *bitmap, __u32 pid, int on)
{
	__u32 word = pid / 64;
	__u64 *bits = bpf_map_lookup_elem(bitmap, &word);
	if (!bits)
		return;
	if (on)
		__sync_fetch_and_or(bits, 1ULL << (pid % 64));
	else
		__sync_fetch_and_and(bits, ~(1ULL << (pid % 64)));
}

static __always_inline int pid_selected(__u32 pid)
{
	return pid_bit(&loupe_pids, pid);
}

static __always_inline void pid_select(__u32 pid, int on)
{
	pid_bit_set(&loupe_pids, pid, on);
}

/* Ports to watch (either end of a connection) when config.filter_ports is on. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} loupe_ports SEC(".maps");

/* Records the ring buffer refused since the last loss record, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} loupe_lost SEC(".maps");

static __always_inline int is_v4_mapped(const __u8 *a)
{
	for (int i = 0; i < 10; i++)
		if (a[i])
			return 0;
	return a[10] == 0xff && a[11] == 0xff;
}

/*
 * A dual-stack socket's IPv4 pair shows as ::ffff:a.b.c.d: report it as IPv4
 * (in the first 4 bytes), so both ends of a connection name one 4-tuple.
 */
static __always_inline void unmap_v4(__u16 *family, __u8 *local, __u8 *remote)
{
	if (*family != AF_INET6 || !is_v4_mapped(local) || !is_v4_mapped(remote))
		return;
	*family = AF_INET;
	__builtin_memcpy(local, local + 12, 4);
	__builtin_memset(local + 4, 0, 12);
	__builtin_memcpy(remote, remote + 12, 4);
	__builtin_memset(remote + 4, 0, 12);
}

/* A word with a zero byte where `v` has `byte` (classic has-zero-byte test; false hits only above a true one). */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static __always_inline __u64 bytes_equal_to(__u64 v, __u8 byte)
{
	__u64 x = v ^ (ONES * byte);
	return (x - ONES) & ~x & HIGHS;
}

static __always_inline struct loupe_config *loupe_cfg(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&loupe_config, &zero);
}

/* Is this process one we watch? Never the agent itself. */
static __always_inline int watched(struct loupe_config *cfg, __u32 pid)
{
	if (!cfg || pid == cfg->agent_pid)
		return 0;
	if (cfg->filter_pids && !pid_selected(pid))
		return 0;
	return 1;
}

/*
 * May the kernel change this process's bytes (a TCP option on its segments, a
 * traceparent in its requests, its sockets in the injection sockhash)? Only a
 * watched process the agent chose: not one pending --exe's decision, which
 * may yet be a program nobody selected, unless the file it exec'd is one --exe
 * matches.
 */
static __always_inline int may_change_bytes(struct loupe_config *cfg, __u32 pid)
{
	if (!watched(cfg, pid))
		return 0;
	return !cfg->exec_select || !pid_bit(&loupe_pending, pid) || pid_bit(&loupe_exe_known, pid);
}

static __always_inline void fill_header(struct loupe_event_header *hdr, __u32 type)
{
	__u64 id = bpf_get_current_pid_tgid();
	hdr->ts_ns = bpf_ktime_get_ns();
	hdr->type = type;
	hdr->pid = id >> 32;
	hdr->tid = (__u32)id;
	hdr->cpu = bpf_get_smp_processor_id();
}

/*
 * Waking the drain thread for every record costs each traced syscall a
 * cross-CPU wakeup; it polls every 200 ms anyway. Wake it early only for the
 * record that takes the waiting data past a sixteenth of the buffer (1 MiB
 * of the default 16), so bursts are drained before they overflow: a fixed
 * mark would never be reached in a buffer no larger than it (--ring-mb 1).
 * Only that one: while the consumer is behind (busy, descheduled, stopped)
 * the level stays high, and a wakeup per record then made every traced
 * syscall half again as slow. A consumer that is awake finds the data at its
 * next poll; none is missed.
 */
static __always_inline __u64 wakeup_flag(__u64 size)
{
	__u64 mark = bpf_ringbuf_query(&loupe_events, BPF_RB_RING_SIZE) >> 4;
	__u64 waiting = bpf_ringbuf_query(&loupe_events, BPF_RB_AVAIL_DATA);
	return waiting < mark && waiting + size >= mark ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/*
 * Write a record. A full ring buffer costs the record, never silently: the
 * count is kept per CPU and written as a loss record ahead of the next record
 * that fits, so the user side sees the loss in order.
 */
static __always_inline void emit_waking(void *record, __u64 size, int wake_now)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&loupe_lost, &zero);
	if (lost && *lost) {
		struct loupe_loss_event loss = {};
		fill_header(&loss.hdr, LOUPE_EV_LOSS);
		loss.lost = *lost;
		loss.source = LOUPE_LOSS_RINGBUF;
		if (bpf_ringbuf_output(&loupe_events, &loss, sizeof(loss), wakeup_flag(sizeof(loss))) == 0)
			*lost = 0;
	}
	if (bpf_ringbuf_output(&loupe_events, record, size, wake_now ? BPF_RB_FORCE_WAKEUP : wakeup_flag(size)) != 0 && lost)
		*lost += 1;
}

static __always_inline void emit(void *record, __u64 size)
{
	emit_waking(record, size, 0);
}

#endif /* LOUPE_COMMON_BPF_H */
