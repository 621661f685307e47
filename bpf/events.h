/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of every record the kernel side hands to user space.
 *
 * The TypeScript decoder (src/events/layout.ts) mirrors these structs and
 * test/events-header.test.ts compiles this file with the C compiler to check
 * every offset, size, enum value and constant against it, so the two sides
 * cannot drift. Keep to these rules so that check stays simple and exact:
 *   - one member per line, fixed-width types only (__u8.. __u64, __s32, char);
 *   - no implicit padding: align members naturally and name the padding;
 *   - new fields go at the end of a struct (old readers ignore a longer record);
 *   - record types are never renumbered.
 * Records are little-endian (the host's order on x86_64 and arm64).
 */
#ifndef LOUPE_EVENTS_H
#define LOUPE_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define LOUPE_EVENTS_VERSION 1

/* Upper bound of one record's payload. */
#define LOUPE_MAX_PAYLOAD 4096
/*
 * Upper bound of what one syscall's copy may take (config.max_payload): past
 * LOUPE_MAX_PAYLOAD it goes out as several records, each after the first
 * flagged LOUPE_DATA_F_CONTINUED, whose `bytes` add up to the syscall's.
 */
#define LOUPE_MAX_COPY (256 * 1024)
#define LOUPE_COMM_LEN 16
#define LOUPE_FILENAME_LEN 256
#define LOUPE_GO_METHOD_LEN 16
#define LOUPE_GO_PATH_LEN 128
#define LOUPE_GO_HOST_LEN 64
/* "00-" + 32 hex + "-" + 16 hex + "-" + 2 hex = 55, plus a NUL */
#define LOUPE_TRACEPARENT_LEN 56
/* The JSON of a process's description in a LOUPE_EV_PROC_INFO record, at most. */
#define LOUPE_PROC_INFO_MAX 4096

enum loupe_event_type {
	LOUPE_EV_SOCK_OPEN = 1,
	LOUPE_EV_DATA = 2,
	LOUPE_EV_SOCK_CLOSE = 3,
	LOUPE_EV_TCP_STATE = 4,
	LOUPE_EV_PROC_EXEC = 5,
	LOUPE_EV_PROC_EXIT = 6,
	LOUPE_EV_GO_GOROUTINE_CREATE = 7,
	LOUPE_EV_GO_GOROUTINE_EXIT = 8,
	LOUPE_EV_GO_REQUEST_START = 9,
	LOUPE_EV_GO_REQUEST_END = 10,
	LOUPE_EV_LOSS = 11,
	LOUPE_EV_PROC_INFO = 12, /* the agent's, not the kernel's: see loupe_proc_info_event */
	LOUPE_EV_PROC_FORK = 13,
	LOUPE_EV_NAT = 14, /* the agent's, not the kernel's: see loupe_nat_event */
	LOUPE_EV_TRACE_CONTEXT = 15,
};

/* Which side of a connection this process is on. */
enum loupe_role {
	LOUPE_ROLE_UNKNOWN = 0,
	LOUPE_ROLE_CLIENT = 1, /* it called connect() */
	LOUPE_ROLE_SERVER = 2, /* it got the socket from accept() */
};

enum loupe_direction {
	LOUPE_DIR_EGRESS = 1,  /* the process wrote these bytes */
	LOUPE_DIR_INGRESS = 2, /* the process read these bytes */
};

/* The syscall (or library call) a data record came from. */
enum loupe_data_source {
	LOUPE_SRC_READ = 1,
	LOUPE_SRC_READV = 2,
	LOUPE_SRC_RECVFROM = 3,
	LOUPE_SRC_RECVMSG = 4,
	LOUPE_SRC_WRITE = 5,
	LOUPE_SRC_WRITEV = 6,
	LOUPE_SRC_SENDTO = 7,
	LOUPE_SRC_SENDMSG = 8,
	LOUPE_SRC_SSL_READ = 9,
	LOUPE_SRC_SSL_WRITE = 10,
};

/* loupe_data_event.flags */
#define LOUPE_DATA_F_TRUNCATED 0x1 /* captured < bytes: the copy was cut at the configured bound */
#define LOUPE_DATA_F_TLS 0x2       /* plaintext taken from a TLS library, not the socket */
#define LOUPE_DATA_F_CONTINUED 0x4 /* the next piece of the syscall the record before it began (a copy over LOUPE_MAX_PAYLOAD) */
#define LOUPE_DATA_F_SEQ 0x8       /* `seq` holds the TCP socket's write sequence (see loupe_data_event) */

enum loupe_go_request_kind {
	LOUPE_GO_HTTP_SERVER = 1,
	LOUPE_GO_HTTP_CLIENT = 2,
	LOUPE_GO_GRPC_SERVER = 3,
	LOUPE_GO_GRPC_CLIENT = 4,
};

/* What a loupe_trace_context_event says. */
enum loupe_context_kind {
	LOUPE_CTX_SERVER_REQUEST = 1, /* a watched server began reading a request: the trace it serves */
	LOUPE_CTX_CLIENT_CALL = 2,    /* a watched client's request went out with the context in a TCP option, or a traceparent header the kernel inserted */
};

/* Where a server request's trace came from. */
enum loupe_context_origin {
	LOUPE_CTX_NEW = 1,        /* begun here: a new trace id */
	LOUPE_CTX_TCP_OPTION = 2, /* the caller's Loupe put it in a TCP option on the request's segment */
	LOUPE_CTX_THREAD = 3,     /* a client call: the trace its thread was serving */
	LOUPE_CTX_TRACEPARENT = 4, /* the request's own traceparent header (an SDK's, a proxy's) */
};

enum loupe_loss_source {
	LOUPE_LOSS_RINGBUF = 1,  /* bpf_ringbuf_reserve failed: the buffer was full */
	LOUPE_LOSS_PAYLOAD = 2,  /* a payload copy failed (page not resident, ...) */
};

struct loupe_event_header {
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, ns since boot */
	__u32 type;  /* enum loupe_event_type */
	__u32 pid;   /* thread group id: the process */
	__u32 tid;   /* thread id */
	__u32 cpu;
};

/*
 * A socket became known to us: connect() completed (client) or accept()
 * returned a connection (server). Addresses are network order bytes; an IPv4
 * address fills the first 4 bytes of the 16.
 */
struct loupe_sock_open_event {
	struct loupe_event_header hdr;
	__s32 fd;
	__u16 family; /* AF_INET (2) or AF_INET6 (10) */
	__u8 role;    /* enum loupe_role */
	__u8 protocol; /* IPPROTO_TCP (6) */
	__u16 local_port;
	__u16 remote_port;
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u32 seq;         /* the socket's write_seq (mod 2^32) when reported: where its data records' `seq` begin */
	__u64 sock_cookie; /* stable identity of the socket across fds and dup() */
};

/*
 * Bytes a process moved through a socket. The record is variable-length:
 * the fixed part, then exactly `captured` payload bytes (never the whole
 * LOUPE_MAX_PAYLOAD array).
 */
struct loupe_data_event {
	struct loupe_event_header hdr;
	__s32 fd;
	__u8 direction; /* enum loupe_direction */
	__u8 source;    /* enum loupe_data_source */
	__u16 flags;    /* LOUPE_DATA_F_* */
	__u64 sock_cookie;
	__u64 bytes;    /* what the call returned: bytes really moved (this piece of them, with LOUPE_DATA_F_CONTINUED pieces) */
	__u32 captured; /* payload bytes that follow, <= bytes */
	/*
	 * With LOUPE_DATA_F_SEQ, the socket's write_seq (mod 2^32): a write's is
	 * the stream position just after this record's bytes, a read's is how far
	 * the socket's owner had written when the read returned. A record is made
	 * at the syscall's exit, so a writer preempted there can be overtaken by
	 * the answer to what it wrote; a read whose seq is ahead of every write
	 * recorded so far says a write is still to come before it.
	 */
	__u32 seq;
	__u8 payload[LOUPE_MAX_PAYLOAD];
};

struct loupe_sock_close_event {
	struct loupe_event_header hdr;
	__s32 fd;
	__u32 pad0;
	__u64 sock_cookie;
};

/* From tracepoint sock:inet_sock_set_state. States are the kernel's TCP_* values. */
struct loupe_tcp_state_event {
	struct loupe_event_header hdr;
	__u16 family;
	__u16 local_port;
	__u16 remote_port;
	__u8 old_state;
	__u8 new_state;
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u64 sock_cookie;
};

struct loupe_proc_exec_event {
	struct loupe_event_header hdr;
	__u32 ppid;
	__u32 uid;
	char comm[LOUPE_COMM_LEN];
	char filename[LOUPE_FILENAME_LEN];
};

struct loupe_proc_exit_event {
	struct loupe_event_header hdr;
	__s32 exit_code;
	__u32 pad0;
};

/*
 * A watched process (hdr.pid) forked a process (not a thread): the child runs
 * the parent's program until it execs. A pre-forking or fork-per-connection
 * server's child may be gone before the agent could read /proc (PostgreSQL's
 * backend for a pgbench connection lives ~0.1 s); this record names it.
 */
struct loupe_proc_fork_event {
	struct loupe_event_header hdr;
	__u32 child_pid;
	__u32 pad0;
};

/* Goroutine created (parent -> child) or exited (parent_goid 0). */
struct loupe_go_goroutine_event {
	struct loupe_event_header hdr;
	__u64 goid;
	__u64 parent_goid;
};

/*
 * A Go server request or client call began or ended on a goroutine. For a
 * server request, start_ns of the END record is when the handler started.
 */
struct loupe_go_request_event {
	struct loupe_event_header hdr;
	__u64 goid;
	__u8 kind;  /* enum loupe_go_request_kind */
	__u8 pad0;
	__u16 status; /* HTTP status or gRPC status code; END only */
	__s32 fd;     /* connection fd when known, else -1 */
	__u64 start_ns;
	char method[LOUPE_GO_METHOD_LEN];
	char path[LOUPE_GO_PATH_LEN];
	char traceparent[LOUPE_TRACEPARENT_LEN];
	char host[LOUPE_GO_HOST_LEN]; /* client START: the URL's host[:port] */
};

/* Records that could not be delivered; the user side turns this into visible loss. */
struct loupe_loss_event {
	struct loupe_event_header hdr;
	__u64 lost;
	__u32 source; /* enum loupe_loss_source */
	__u32 pad0;
};

/*
 * Written by the agent into the record stream, never by the kernel: what
 * /proc said of a process when its first record came (executable, service
 * name, arguments), as UTF-8 JSON of `length` bytes. In the stream, not in
 * the capture's header, so a capture is written as it is recorded, header
 * first, and a recording killed at any point is still a capture.
 */
struct loupe_proc_info_event {
	struct loupe_event_header hdr;
	__u32 length;
	__u32 pad0;
	char json[LOUPE_PROC_INFO_MAX];
};

/*
 * Written by the agent into the record stream, never by the kernel: the
 * client of a connection a watched process accepted addressed it elsewhere,
 * and the host's connection tracking says where (DNAT: a container's
 * published port, a Kubernetes Service). Just before the accept's sock_open
 * record, hdr.pid the server's, so a replay pairs the two ends as the live
 * run did. Addresses as in loupe_sock_open_event.
 */
struct loupe_nat_event {
	struct loupe_event_header hdr;
	__u16 client_family; /* AF_INET or AF_INET6: the family of the client's two addresses */
	__u16 server_family; /* the family of the server socket's two addresses */
	__u16 client_local_port;
	__u16 client_remote_port;
	__u16 server_local_port;
	__u16 server_remote_port;
	__u32 pad0;
	__u8 client_local_addr[16];  /* conntrack's original source: the client's own address */
	__u8 client_remote_addr[16]; /* original destination: where the client connected */
	__u8 server_local_addr[16];  /* reply source: the server socket's own address */
	__u8 server_remote_addr[16]; /* reply destination: the peer the server sees */
};

/*
 * Trace context the kernel chose or carried (TCP-option propagation, see
 * bpf/tcpopt.bpf.c), so user space makes its spans with the ids that went on
 * the wire. Both kinds name a range of the client's byte stream: the request
 * whose first byte lies in [offset, offset + length) (mod 2^32) of the
 * stream the client writes and the server reads is the one meant. Offsets
 * count from the connection's first data byte. A server request's record is
 * just before the data record of the read it began in; a client call's just
 * before the data record of its write.
 */
struct loupe_trace_context_event {
	struct loupe_event_header hdr;
	__u64 sock_cookie;
	__u32 offset;
	__u32 length;
	__u8 kind;   /* enum loupe_context_kind */
	__u8 origin; /* enum loupe_context_origin */
	__u8 pad0[6];
	__u8 trace_id[16];
	__u8 span_id[8]; /* client call: its span, put on the wire; server request from a TCP option: the calling span; else zeros */
};

/*
 * User -> kernel: the agent's settings, the one entry of the `loupe_config`
 * map. The kernel side reads it on every hook, so changes apply at once.
 */
struct loupe_config {
	__u32 agent_pid;   /* never traced: the agent must not watch itself */
	__u32 max_payload; /* payload bytes copied per syscall, <= LOUPE_MAX_COPY (in records of LOUPE_MAX_PAYLOAD) */
	__u32 filter_pids; /* 1: only processes in the `loupe_pids` map (and their children) */
	__u32 filter_ports; /* 1: only connections with a port in the `loupe_ports` map at either end */
	__u64 cookie_key;  /* mixed into socket cookies so kernel addresses never reach a capture */
	__u32 tls_probes;  /* 1: OpenSSL probes are attached (a syscall may be inside SSL_read/SSL_write) */
	__u32 go_probes;   /* 1: Go programs may be probed (a server read may carry a traceparent for them) */
	__u32 exec_select; /* 1: the agent picks processes by their exec (--exe): exec'd programs are watched as pending until it decides, and a proc_exec reaches it at once */
	__u32 tcp_options; /* 1: trace context crosses hosts in TCP options (bpf/tcpopt.bpf.c): server reads say which trace they begin; 2: the same, the option only on calls of processes in loupe_tcpopt_pids */
	__u32 inject_http; /* 1: HTTP/1 requests of watched programs that are not Go get a traceparent header (bpf/inject.bpf.c); 2: the same, only processes in loupe_inject_pids */
	__u32 pad;
};

/* loupe_go_offsets.flags */
#define LOUPE_GO_F_INJECT 0x1 /* put traceparent on this program's outgoing HTTP/1 requests */
#define LOUPE_GO_F_GRPC 0x2   /* the grpc_* offsets are known: gRPC probes may read */
#define LOUPE_GO_F_TLS 0x4    /* tls_conn_conn is known: crypto/tls probes may read */
#define LOUPE_GO_F_SWISS 0x8  /* the header map is a swiss table (Go 1.24+): the header_swiss_* offsets hold */

/*
 * User -> kernel: where one Go program keeps what the Go probes read, by
 * process (the `loupe_go_procs` map). Byte offsets of struct members, read
 * from the binary's DWARF or from the offsets table for its Go release.
 */
struct loupe_go_offsets {
	__u32 g_goid;             /* runtime.g.goid */
	__u32 request_method;     /* net/http.Request.Method */
	__u32 request_url;        /* net/http.Request.URL */
	__u32 url_path;           /* net/url.URL.Path */
	__u32 url_host;           /* net/url.URL.Host */
	__u32 response_conn;      /* net/http.response.conn */
	__u32 response_status;    /* net/http.response.status */
	__u32 conn_rwc;           /* net/http.conn.rwc */
	__u32 netconn_fd;         /* net.conn.fd */
	__u32 netfd_pfd;          /* net.netFD.pfd */
	__u32 pollfd_sysfd;       /* internal/poll.FD.Sysfd */
	__u32 client_status_code; /* net/http.Response.StatusCode */
	__u32 flags;              /* LOUPE_GO_F_* */
	__u32 grpc_stream_method; /* google.golang.org/grpc/internal/transport.Stream.method */
	__u32 grpc_server_conn;   /* google.golang.org/grpc/internal/transport.http2Server.conn */
	__u32 grpc_cc_target;     /* google.golang.org/grpc.ClientConn.target */
	__u32 request_header;     /* net/http.Request.Header: a map[string][]string */
	__u32 header_map_b;       /* hash<string,[]string>.B: log2 of its bucket count */
	__u32 header_map_buckets; /* hash<string,[]string>.buckets */
	__u32 header_bucket_keys; /* bucket<string,[]string>.keys */
	__u32 header_bucket_overflow; /* bucket<string,[]string>.overflow: the last member, so size - 8 */
	__u32 header_map_noverflow; /* hash<string,[]string>.noverflow: overflow buckets in use (exact for small maps) */
	__u32 header_map_oldbuckets; /* hash<string,[]string>.oldbuckets: not nil while the map grows */
	__u32 writer_wr;          /* bufio.Writer.wr: the io.Writer a persistConn's bufio.Writer writes to */
	__u32 persist_conn_conn;  /* net/http.persistConn.conn */
	__u32 tls_conn_conn;      /* crypto/tls.Conn.conn: the net.Conn under TLS */
	/* Go 1.24+: a map is a swiss table, a directory of tables of groups of 8 slots, or one group when small. */
	__u32 header_swiss_used;     /* map<string,[]string>.used: entries */
	__u32 header_swiss_dir_ptr;  /* map<string,[]string>.dirPtr: the one group (dirLen 0), or the table directory */
	__u32 header_swiss_dir_len;  /* map<string,[]string>.dirLen */
	__u32 header_swiss_groups;   /* table<string,[]string>.groups: a groupReference (data, then lengthMask) */
	__u32 header_swiss_mask;     /* groupReference<string,[]string>.lengthMask: groups - 1 */
	__u32 header_swiss_slots;    /* noalg.map.group[string][]string.slots: after the 8 control bytes */
	__u32 header_swiss_slot_size; /* one slot: the key string, then its []string */
	__u32 pad0;
	/*
	 * Address of the itab of *net.TCPConn as a net.Conn: a net.Conn whose
	 * itab is another (a *tls.Conn) is not followed to an fd. For a
	 * position-independent binary, where this process loaded it. 0: unknown,
	 * not checked.
	 */
	__u64 tcpconn_itab;
};

#endif /* LOUPE_EVENTS_H */
