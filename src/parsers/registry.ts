/**
 * Which parser reads which protocol. A detected protocol with no parser yet is
 * still named on the connection (so `loupe parse` can say what it saw).
 */
import { Http1Parser } from './http1/parser';
import type { ProtocolParser } from './types';

const FACTORIES: Record<string, () => ProtocolParser> = {
  http1: () => new Http1Parser(),
};

export function createParser(protocol: string): ProtocolParser | undefined {
  return FACTORIES[protocol]?.();
}

export function hasParser(protocol: string): boolean {
  return protocol in FACTORIES;
}
