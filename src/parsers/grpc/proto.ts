/**
 * gRPC message bodies decoded with the program's own .proto files
 * (`loupe parse --proto DIR`), through @grpc/proto-loader. Only the workbench
 * uses this: spans never carry message contents.
 */
import { LoupeError } from '../../errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { MethodDefinition, PackageDefinition } from '@grpc/proto-loader';
import { protoLoaderPackage } from '../../lazy';

export class ProtoError extends LoupeError {
  constructor(message: string) {
    super('LOUPE_PROTO', message);
  }
}

function protoFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.proto')) out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

export class ProtoDecoder {
  private readonly definition: PackageDefinition;

  constructor(dir: string) {
    let files: string[];
    try {
      files = protoFiles(dir);
    } catch (e) {
      throw new ProtoError(`--proto ${dir}: ${(e as Error).message}`);
    }
    if (files.length === 0) throw new ProtoError(`--proto ${dir}: no .proto files there`);
    try {
      this.definition = protoLoaderPackage().loadSync(files, { includeDirs: [dir], keepCase: true, longs: String, enums: String, bytes: String, defaults: false });
    } catch (e) {
      throw new ProtoError(`--proto ${dir}: ${(e as Error).message}`);
    }
  }

  /** Decoded messages, or an error saying why they could not be. */
  decode(service: string, method: string, direction: 'request' | 'response', payloads: Buffer[]): { messages: unknown[] } | { error: string } {
    const svc = this.definition[service] as Record<string, MethodDefinition<unknown, unknown>> | undefined;
    const m = svc?.[method];
    if (!m || typeof m.requestDeserialize !== 'function') return { error: `${service}/${method} is in none of the .proto files` };
    try {
      return { messages: payloads.map((p) => (direction === 'request' ? m.requestDeserialize(p) : m.responseDeserialize(p))) };
    } catch (e) {
      return { error: `cannot decode ${direction} of ${service}/${method}: ${(e as Error).message}` };
    }
  }
}
