/**
 * Hosts for scenarios: one network namespace per host, all joined by a bridge
 * in a namespace of their own, on a /24 of 10.213.0.0/16. The root namespace
 * gets no address on it, and the subnet is blackholed there before anything
 * is created, so nothing the root namespace sends can leave for that range
 * (EBPF-NOTES: never address a namespace subnet from the root namespace).
 * The load runs from a host namespace too.
 */
import { LoupeError } from '../errors';
import { execFileSync } from 'node:child_process';

export class HostError extends LoupeError {
  constructor(message: string) {
    super('LOUPE_HOST', message);
  }
}

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new HostError(`ip ${args.join(' ')}: ${((e as { stderr?: Buffer }).stderr?.toString() ?? (e as Error).message).trim()}`);
  }
}

export class HostNetwork {
  readonly subnet: string;
  private readonly prefix: string;
  private readonly names: string[];
  private created: string[] = [];
  private routed = false;

  constructor(
    hosts: string[],
    private readonly tag = `${process.pid % 100000}`,
  ) {
    // A /24 per run, from the pid, so concurrent runs do not meet.
    const third = 20 + (process.pid % 200);
    this.prefix = `10.213.${third}`;
    this.subnet = `${this.prefix}.0/24`;
    this.names = hosts;
  }

  namespace(host: string): string {
    return `loupe${this.tag}-${host}`.slice(0, 60);
  }

  addr(host: string): string {
    const i = this.names.indexOf(host);
    if (i < 0) throw new HostError(`no host named ${host} (hosts: ${this.names.join(', ')})`);
    return `${this.prefix}.${10 + i}`;
  }

  /** argv prefix that runs a command on `host`. */
  exec(host: string): string[] {
    this.addr(host);
    return ['ip', 'netns', 'exec', this.namespace(host)];
  }

  up(): void {
    try {
      ip(['route', 'add', 'blackhole', this.subnet]);
      this.routed = true;
      const lan = this.namespace('lan');
      ip(['netns', 'add', lan]);
      this.created.push(lan);
      ip(['-n', lan, 'link', 'add', 'br0', 'type', 'bridge']);
      ip(['-n', lan, 'link', 'set', 'br0', 'up']);
      this.names.forEach((host, i) => {
        const ns = this.namespace(host);
        ip(['netns', 'add', ns]);
        this.created.push(ns);
        ip(['-n', ns, 'link', 'set', 'lo', 'up']);
        ip(['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', lan]);
        ip(['-n', ns, 'addr', 'add', `${this.addr(host)}/24`, 'dev', 'eth0']);
        ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
        ip(['-n', lan, 'link', 'set', `p${i}`, 'master', 'br0']);
        ip(['-n', lan, 'link', 'set', `p${i}`, 'up']);
      });
    } catch (e) {
      this.down();
      throw e;
    }
  }

  down(): void {
    for (const ns of this.created.reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
    this.created = [];
    if (this.routed) {
      try {
        execFileSync('ip', ['route', 'del', 'blackhole', this.subnet], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
      this.routed = false;
    }
  }
}
