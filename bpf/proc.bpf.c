// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Processes: exec (which program a pid now runs: its service), exit (its
 * sockets are gone), and fork (a watched process's children are watched too,
 * so `loupe record --pid` of a shell or a pre-forking server sees the workers).
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* loupe_pending and loupe_exe_known: common.bpf.h (the programs that change bytes read them too). */
/*
 * A pending process that exec'd again before the agent decided on its first
 * program (`ip netns exec`, `sh -c 'exec …'`, env, nice): the agent's "no" to
 * the first program must not take the second out of the filter. Before this
 * bit, curl under `ip netns exec` lost its request to that race (a CI flake:
 * its connect recorded, its write not, the agent's decisions came between).
 */
LOUPE_PID_BITMAP(loupe_reexec);

/* BTF-typed: the child's task says whether it is a process or a thread (the classic tracepoint gives only ids). */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(process_fork, struct task_struct *parent_task, struct task_struct *child_task)
{
	struct loupe_config *cfg = loupe_cfg();
	__u32 parent = parent_task->tgid;
	__u32 child = child_task->pid;
	/* Not the child of a process still pending: the agent may yet drop the parent. If it keeps it, it adds the children from /proc. */
	if (cfg && cfg->filter_pids && pid_selected(parent) && !pid_bit(&loupe_pending, parent))
		pid_select(child, 1);
	/* A new process, not a thread, of a watched one: the agent names it by its parent if it is gone before /proc is read. */
	if (child_task->tgid != child || !watched(cfg, parent))
		return 0;
	struct loupe_proc_fork_event ev = {};
	fill_header(&ev.hdr, LOUPE_EV_PROC_FORK);
	ev.hdr.pid = parent; /* the forking thread's process, whichever thread forked */
	ev.child_pid = child;
	emit(&ev, sizeof(ev));
	return 0;
}

/*
 * Every exec is reported, watched or not: selecting processes by executable
 * (`--exe`) is decided in user space, from this record.
 */
SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct loupe_config *cfg = loupe_cfg();
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!cfg || pid == cfg->agent_pid)
		return 0;
	struct loupe_proc_exec_event ev = {};
	fill_header(&ev.hdr, LOUPE_EV_PROC_EXEC);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	ev.ppid = BPF_CORE_READ(task, real_parent, tgid);
	ev.uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	unsigned int name_at = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(ev.filename, sizeof(ev.filename), (void *)ctx + name_at);
	/*
	 * With --exe the agent decides from this record whether to watch the
	 * program. Until it has, the program is watched as pending: curl
	 * connects a few ms after its exec, before any agent could decide (with
	 * the decision first, `--exe curl` missed one request in eight on a busy
	 * host). The agent drops what a pending process it does not choose did.
	 * The record wakes the agent at once, so pending lasts ms; only with
	 * --exe: a host that execs thousands of programs a second would wake it
	 * as often.
	 */
	if (cfg->exec_select && cfg->filter_pids) {
		/* The file it runs now, as the agent found the ones --exe matches (its mm is the new program's by now). */
		struct exe_file_key file = {};
		struct inode *inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
		file.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		file.ino = BPF_CORE_READ(inode, i_ino);
		pid_bit_set(&loupe_exe_known, pid, bpf_map_lookup_elem(&loupe_exe_files, &file) != NULL);
		if (!pid_selected(pid)) {
			pid_bit_set(&loupe_pending, pid, 1);
			pid_select(pid, 1);
		} else if (pid_bit(&loupe_pending, pid)) {
			pid_bit_set(&loupe_reexec, pid, 1);
		}
	}
	emit_waking(&ev, sizeof(ev), cfg->exec_select);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int process_exit(struct trace_event_raw_sched_process_template *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	if ((__u32)id != pid) /* a thread, not the process */
		return 0;
	struct loupe_config *cfg = loupe_cfg();
	if (!watched(cfg, pid))
		return 0;
	struct loupe_proc_exit_event ev = {};
	fill_header(&ev.hdr, LOUPE_EV_PROC_EXIT);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	ev.exit_code = BPF_CORE_READ(task, exit_code);
	emit(&ev, sizeof(ev));
	pid_select(pid, 0);
	return 0;
}
