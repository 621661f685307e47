/**
 * Connection-pair matching: one connection seen from both ends on this host
 * (the client's 4-tuple is the server's reversed, or the one the host's
 * connection tracking names for it: a `nat` record), and, across NAT that no
 * record names, a client request in flight with exactly the bytes a server
 * received.
 */
import type { Endpoint, NatEvent } from '../events/types';
import type { Connection } from '../streams/connections';
import { push, type InFlight } from './context';

/** How long before a server sees a request the NATed client may have sent it. */
const NAT_WINDOW_NS = 1_000_000_000n;
/** `nat` records are forgotten, oldest first, past this many (about 100 bytes each). */
const MAX_NAT_ENTRIES = 65_536;

/**
 * A 4-tuple as one key, first end first: shared with the multi-host merge, which pairs connections across
 * hosts alike. Joined, not a template: V8 keeps a template of seven parts as a tree of rope strings, and each
 * open connection keeps two keys (heap snapshot: ~0.3 KiB of a connection pair).
 */
export const tupleKey = (local: Endpoint, remote: Endpoint) => [local.addr, local.port, remote.addr, remote.port].join('|');

/** A connection's 4-tuple key as it sees it (local first), made once per pair of endpoints: asked on every request. */
const ownKeys = new WeakMap<Endpoint, { remote: Endpoint; own: string; reversed: string }>();
function connKey(local: Endpoint, remote: Endpoint, reversed: boolean): string {
  let k = ownKeys.get(local);
  if (k?.remote !== remote) ownKeys.set(local, (k = { remote, own: tupleKey(local, remote), reversed: tupleKey(remote, local) }));
  return reversed ? k.reversed : k.own;
}

/** 127.0.0.0/8, ::1, and 127/8 mapped into IPv6 (written as formatAddr writes it: `::ffff:7f00:1`). */
const isLoopback = (addr: string) => addr.startsWith('127.') || addr === '::1' || /^::ffff:7f[0-9a-f]{2}:/.test(addr);

export type Paired = { client: InFlight; how: 'connection-pair' | 'conntrack' | 'connection-pair-nat' };

/** This host's addresses remembered: a host with more in use at once than this joins fewer first requests of connections met mid-life. */
export const MAX_HOST_ADDRESSES = 4096;

export class ConnectionPairs {
  /** Open client connections by their 4-tuple. */
  private readonly clientsByTuple = new Map<string, Connection>();
  /** Open server connections by their 4-tuple seen from the client: tuples visible from both ends. */
  private readonly serversByClientTuple = new Map<string, Connection>();
  /** Unclaimed client requests by their bytes, for pairing across NAT. */
  private readonly clientsByFingerprint = new Map<string, InFlight[]>();
  /** Connections already indexed by their 4-tuple (weak: it ends with the connection). */
  private readonly indexed = new WeakSet<Connection>();
  /** From `nat` records: a server's 4-tuple seen from its peer -> the tuple its client really used. */
  private readonly natClientKeys = new Map<string, string>();
  /**
   * Addresses this host's sockets are bound to, as their records named them: a peer at one is on this
   * host. Kept in order of last use, the least recent forgotten past MAX_HOST_ADDRESSES (containers
   * come and go, each with an address of its own).
   */
  private readonly hostAddresses = new Set<string>();

  /** `requestsOf`: a connection's requests in flight, oldest first. */
  constructor(private readonly requestsOf: (connId: number) => InFlight[] | undefined) {}

  sizes(): Record<string, number> {
    return {
      clientsByTuple: this.clientsByTuple.size,
      serversByClientTuple: this.serversByClientTuple.size,
      clientsByFingerprint: [...this.clientsByFingerprint.values()].reduce((n, l) => n + l.length, 0),
      natClientKeys: this.natClientKeys.size,
      hostAddresses: this.hostAddresses.size,
    };
  }

  /** The host's connection tracking says the server connection `serverLocal`/`serverRemote` is the client's `clientLocal`/`clientRemote`. */
  onNat(ev: NatEvent): void {
    const serverSide = tupleKey(ev.serverRemote, ev.serverLocal);
    const clientKey = tupleKey(ev.clientLocal, ev.clientRemote);
    this.natClientKeys.delete(serverSide);
    this.natClientKeys.set(serverSide, clientKey);
    // Said by the client's agent, it can come after the server's accept was indexed under its own tuple.
    const server = this.serversByClientTuple.get(serverSide);
    if (server) {
      this.serversByClientTuple.delete(serverSide);
      this.serversByClientTuple.set(clientKey, server);
    }
    if (this.natClientKeys.size > MAX_NAT_ENTRIES) this.natClientKeys.delete(this.natClientKeys.keys().next().value!);
  }

  /** A server connection's 4-tuple as its client sees it: reversed, or as connection tracking named it. */
  private clientKeyOf(server: Connection): string {
    const reversed = connKey(server.local!, server.remote!, true);
    return this.natClientKeys.get(reversed) ?? reversed;
  }

  /** How this server connection meets its client end: through connection tracking, or as the reversed tuple. */
  howJoined(server: Connection): 'conntrack' | 'connection-pair' {
    return server.local && server.remote && this.natClientKeys.has(connKey(server.local, server.remote, true)) ? 'conntrack' : 'connection-pair';
  }

  /**
   * Index a connection by its 4-tuple once, when its role is known: at its
   * open, or — met mid-life — at its first message. Once only: a late message
   * on an old connection must not take a reused tuple back from a newer one.
   */
  index(conn: Connection): void {
    if (!conn.local || !conn.remote || conn.role === 'unknown' || this.indexed.has(conn)) return;
    this.indexed.add(conn);
    this.noteHostAddress(conn.local.addr);
    if (conn.role === 'client') this.clientsByTuple.set(connKey(conn.local, conn.remote, false), conn);
    else this.serversByClientTuple.set(this.clientKeyOf(conn), conn);
  }

  private noteHostAddress(addr: string): void {
    this.hostAddresses.delete(addr); // re-inserted last: the set stays in order of last use
    this.hostAddresses.add(addr);
    if (this.hostAddresses.size > MAX_HOST_ADDRESSES) this.hostAddresses.delete(this.hostAddresses.values().next().value!);
  }

  onClose(conn: Connection): void {
    if (!conn.local || !conn.remote) return;
    const key = connKey(conn.local, conn.remote, false);
    if (this.clientsByTuple.get(key) === conn) this.clientsByTuple.delete(key);
    // The tuple's NAT entry stays (bounded, replaced by the next record for it): a dup'ed socket reopened
    // under another fd (Rust's try_clone) ends this connection and goes on as a new one on the same tuple.
    const clientKey = this.clientKeyOf(conn);
    if (this.serversByClientTuple.get(clientKey) === conn) this.serversByClientTuple.delete(clientKey);
  }

  /** A client request no server has claimed: findable by its bytes across NAT. */
  addUnclaimed(client: InFlight): void {
    push(this.clientsByFingerprint, client.fingerprint, client);
  }

  /** Claimed or ended: no longer findable by its bytes. */
  removeUnclaimed(client: InFlight): void {
    const list = this.clientsByFingerprint.get(client.fingerprint);
    const i = list?.indexOf(client) ?? -1;
    if (i < 0) return;
    list!.splice(i, 1);
    if (list!.length === 0) this.clientsByFingerprint.delete(client.fingerprint);
  }

  /**
   * The client span this server request answers, by its bytes: the oldest
   * unclaimed one on the connection that is this one seen from the other end
   * — if it sent this very request (a reused 4-tuple whose close and open
   * were lost must not pair). Failing that, NAT on this host may have
   * rewritten the tuple: then the one client request in flight with exactly
   * these bytes, if only one.
   */
  bySameBytes(conn: Connection, fp: string, arrivedNs: bigint): Paired | undefined {
    if (!conn.local || !conn.remote) return undefined;
    const byTuple = this.clientsByTuple.get(this.clientKeyOf(conn));
    if (byTuple) {
      // Streams by key run at once (HTTP/2): the candidate is the oldest unclaimed one that sent these bytes.
      const candidate = this.requestsOf(byTuple.id)?.find((p) => !p.claimed && (p.streamId === undefined || p.fingerprint === fp));
      if (candidate && candidate.fingerprint === fp) return { client: candidate, how: this.howJoined(conn) };
      if (candidate) return undefined; // the tuple is known but the bytes disagree: no guess
    }
    // NAT: the client's own tuple must not be visible reversed here (then it went elsewhere),
    // and it must have been sent shortly before this request arrived.
    const alike = (this.clientsByFingerprint.get(fp) ?? []).filter(
      (p) =>
        p.conn.pid !== conn.pid &&
        p.conn.local &&
        p.conn.remote &&
        !this.serversByClientTuple.has(connKey(p.conn.local, p.conn.remote, false)) &&
        p.span.startNs <= arrivedNs &&
        arrivedNs - p.span.startNs < NAT_WINDOW_NS,
    );
    const found = alike.length === 1 ? alike[0] : undefined; // two alike: the data cannot tell which
    return found ? { client: found, how: 'connection-pair-nat' } : undefined;
  }

  /**
   * The client span this server request answers, by its place (a database
   * statement): the oldest client request not yet claimed on the same
   * connection seen from the other end (requests answer in order there).
   */
  bySamePlace(conn: Connection): Paired | undefined {
    if (!conn.local || !conn.remote) return undefined;
    const byTuple = this.clientsByTuple.get(this.clientKeyOf(conn));
    const client = byTuple && this.requestsOf(byTuple.id)?.find((p) => !p.claimed && !p.silent);
    return client ? { client, how: this.howJoined(conn) } : undefined;
  }

  /**
   * The server connection's peer is on this host (loopback, or an address a socket here is bound
   * to): its client end may be watched here though none of its records has come yet.
   */
  peerOnHost(conn: Connection): boolean {
    const addr = conn.remote?.addr;
    return addr !== undefined && (isLoopback(addr) || this.hostAddresses.has(addr));
  }

  /** This server connection seen from its client's end is watched here: its requests' records may yet come. */
  hasClientEnd(conn: Connection): boolean {
    return conn.local !== undefined && conn.remote !== undefined && this.clientsByTuple.has(this.clientKeyOf(conn));
  }

  /** The server connection that is this client connection seen from the other end, when this host sees it. */
  serverOf(conn: Connection): Connection | undefined {
    if (!conn.local || !conn.remote) return undefined;
    return this.serversByClientTuple.get(connKey(conn.local, conn.remote, false));
  }
}
