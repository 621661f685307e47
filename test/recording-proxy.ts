/**
 * A TCP proxy that records what passes through it as a Loupe capture, seen
 * from the client's socket: a real client talks to a real server through it,
 * and the capture holds the bytes exactly as they went, with no root and no
 * BPF. Times are the proxy's monotonic clock (this is a test tool, not the core).
 */
import * as net from 'node:net';
import { CaptureWriter, type CaptureHeader } from '../src/events/capture';
import { encodeEvent } from '../src/events/codec';
import type { Event } from '../src/events/types';
import { CONSTANTS } from '../src/events/layout';

export interface RecordingProxy {
  port: number;
  /** Stop listening, end open connections, and write the capture. */
  close(file: string): Promise<void>;
  events: Event[];
}

export async function recordingProxy(targetPort: number, clientPid: number, clientExe: string): Promise<RecordingProxy> {
  const events: Event[] = [];
  const sockets = new Set<net.Socket>();
  let nextFd = 10;
  const now = () => process.hrtime.bigint();
  const server = net.createServer((down) => {
    const fd = nextFd++;
    const local = { addr: '127.0.0.1', port: down.remotePort! };
    const remote = { addr: '127.0.0.1', port: targetPort };
    const base = { pid: clientPid, tid: clientPid, cpu: 0 };
    events.push({ type: 'sock_open', ts: now(), ...base, fd, family: 4, role: 'client', protocol: 6, local, remote, cookie: BigInt(fd) });
    const up = net.connect(targetPort, '127.0.0.1');
    sockets.add(down);
    sockets.add(up);
    // A record holds at most LOUPE_MAX_PAYLOAD bytes: a bigger chunk becomes several, nothing is cut.
    const data = (direction: 'egress' | 'ingress', chunk: Buffer) => {
      for (let at = 0; at < chunk.length; at += CONSTANTS.LOUPE_MAX_PAYLOAD) {
        const piece = Buffer.from(chunk.subarray(at, at + CONSTANTS.LOUPE_MAX_PAYLOAD));
        events.push({
          type: 'data',
          ts: now(),
          ...base,
          fd,
          direction,
          source: direction === 'egress' ? 'write' : 'read',
          flags: 0,
          cookie: BigInt(fd),
          bytes: piece.length,
          data: piece,
        });
      }
    };
    down.on('data', (c) => {
      data('egress', c);
      up.write(c);
    });
    up.on('data', (c) => {
      data('ingress', c);
      down.write(c);
    });
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      events.push({ type: 'sock_close', ts: now(), ...base, fd, cookie: BigInt(fd) });
      down.destroy();
      up.destroy();
    };
    down.on('close', close).on('error', close);
    up.on('close', close).on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    events,
    close: async (file: string) => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise((r) => setTimeout(r, 20)); // let the close handlers run
      const header: CaptureHeader = {
        eventsVersion: 1,
        seed: '0123456789abcdef',
        host: { hostname: 'test', kernel: 'proxy', arch: 'x86_64' },
        bootTimeNs: '0',
        processes: [{ pid: clientPid, exe: clientExe }],
        config: { recordedBy: 'test/recording-proxy.ts' },
      };
      const writer = new CaptureWriter(file, header);
      for (const ev of events) writer.write(encodeEvent(ev));
      writer.close();
    },
  };
}
