import { describe, expect, it } from 'vitest';
import type { Connection } from '../streams/connections';
import { ConnectionPairs, MAX_HOST_ADDRESSES } from './connection-pairs';

/** A server connection bound to `local`, its peer at `remote`: only what the pairs read of it. */
const server = (local: string, remote: string, port: number) => ({ role: 'server', local: { addr: local, port: 8080 }, remote: { addr: remote, port } }) as unknown as Connection;
const addr = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

describe("this host's addresses", () => {
  it('forgets the least recently used past its bound, and a peer at a forgotten one is no longer on this host', () => {
    const pairs = new ConnectionPairs(() => undefined);
    for (let i = 0; i < MAX_HOST_ADDRESSES; i++) pairs.index(server(addr(i), '192.0.2.1', 40000 + (i % 20000)));
    // The first address is used again, so the second is now the least recent.
    pairs.index(server(addr(0), '192.0.2.2', 40000));
    pairs.index(server(addr(MAX_HOST_ADDRESSES), '192.0.2.3', 40000));
    const peerAt = (a: string) => pairs.peerOnHost(server('192.0.2.9', a, 50000));
    expect(pairs.sizes().hostAddresses).toBe(MAX_HOST_ADDRESSES);
    expect(peerAt(addr(0))).toBe(true);
    expect(peerAt(addr(1))).toBe(false);
    expect(peerAt(addr(2))).toBe(true);
    expect(peerAt(addr(MAX_HOST_ADDRESSES))).toBe(true);
    expect(peerAt('127.0.0.1')).toBe(true);
  });
});
