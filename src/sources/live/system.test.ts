import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildAdvice } from './system';
import { tempDir } from '../../../test/helpers';

describe('the advice when the live agent is not built', () => {
  const saved = process.env.PATH;
  afterEach(() => {
    process.env.PATH = saved;
  });

  it('names the set-up that installs the BPF build tools where they are missing, and make build where they are there', () => {
    process.env.PATH = tempDir(); // nothing on it
    expect(buildAdvice()).toMatch(/the BPF build tools are missing \(clang, bpftool.*\): run 'make system-deps build' as root/);
    const bin = tempDir();
    for (const tool of ['clang', 'bpftool']) {
      fs.writeFileSync(path.join(bin, tool), '#!/bin/sh\n');
      fs.chmodSync(path.join(bin, tool), 0o755);
    }
    process.env.PATH = bin;
    expect(buildAdvice()).toBe(fs.existsSync('/usr/include/bpf/libbpf.h') ? "run 'make build'" : expect.stringMatching(/missing \(libbpf-dev\)/));
  });
});
