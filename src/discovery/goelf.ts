/**
 * What a Go binary says about itself, for placing uprobes (issue 9): its
 * function symbols (ELF .symtab), its Go version and modules (.go.buildinfo),
 * and, per function, the file offsets of its entry and of every RET
 * instruction — Go functions get probes on each RET, never a uretprobe (a
 * moving goroutine stack breaks the return trampoline). RETs come from
 * binutils' disassembler, which knows x86-64 instruction boundaries; a byte
 * search for 0xC3 would not.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';

export class ElfError extends Error {}

interface Section {
  name: string;
  type: number;
  addr: bigint;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export interface FunctionSymbol {
  name: string;
  /** Virtual address and size of the function. */
  addr: bigint;
  size: number;
  /** File offset of its first instruction: what a uprobe is attached at. */
  offset: number;
}

/**
 * Struct field offsets for binaries without DWARF, by Go release. Only what was
 * read from DWARF on a real binary of that release is here: a binary whose
 * release is missing is refused, never guessed at.
 */
export const GO_OFFSETS: Record<string, Record<string, number>> = {
  'go1.19': {
    'runtime.g.goid': 152,
    'net/http.Request.Method': 0,
    'net/http.Request.URL': 16,
    'net/url.URL.Path': 56,
    'net/url.URL.Host': 40,
    'net/http.response.conn': 0,
    'net/http.response.status': 120,
    'net/http.conn.rwc': 16,
    'net.conn.fd': 0,
    'net.netFD.pfd': 0,
    'internal/poll.FD.Sysfd': 16,
    'net/http.Response.StatusCode': 16,
    'net/http.Request.Header': 56,
    'hash<string,[]string>.B': 9,
    'hash<string,[]string>.buckets': 16,
    'hash<string,[]string>.noverflow': 10,
    'hash<string,[]string>.oldbuckets': 24,
    'bucket<string,[]string>.keys': 8,
    'bucket<string,[]string>.overflow': 328,
    'bufio.Writer.wr': 48,
    'net/http.persistConn.conn': 80,
    'crypto/tls.Conn.conn': 0,
  },
};

export interface GoBuildInfo {
  goVersion: string;
  /** The main module's path, then dependencies, as `path version`. */
  mainModule?: string;
  modules: string[];
}

/**
 * The section headers of a 64-bit little-endian ELF file, with their names.
 * `read` gives the bytes at an offset: views of a file read whole, or a few
 * reads of an open one (a check on every exec reads no more than this).
 */
export function elfSections(path: string, read: (offset: number, length: number) => Buffer): Section[] {
  const head = read(0, 64);
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(`${path}: not an ELF file`);
  if (head[4] !== 2 || head[5] !== 1) throw new ElfError(`${path}: only 64-bit little-endian ELF is supported`);
  const shoff = Number(head.readBigUInt64LE(0x28));
  const shentsize = head.readUInt16LE(0x3a);
  const shnum = head.readUInt16LE(0x3c);
  const shstrndx = head.readUInt16LE(0x3e);
  const table = read(shoff, shentsize * shnum);
  if (shentsize < 0x40 || table.length < shentsize * shnum) throw new ElfError(`${path}: section headers cut short`);
  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = i * shentsize;
    return {
      nameAt: table.readUInt32LE(at), type: table.readUInt32LE(at + 4), addr: table.readBigUInt64LE(at + 0x10),
      offset: Number(table.readBigUInt64LE(at + 0x18)), size: Number(table.readBigUInt64LE(at + 0x20)),
      link: table.readUInt32LE(at + 0x28), entsize: Number(table.readBigUInt64LE(at + 0x38)),
    };
  });
  const names = raw[shstrndx];
  if (!names) throw new ElfError(`${path}: no section-name table`);
  const strings = read(names.offset, names.size);
  return raw.map((sec) => ({ ...sec, name: cstring(strings, sec.nameAt) }));
}

export class GoBinary {
  private readonly buf: Buffer;
  private readonly sections: Section[];
  private symbols: Map<string, FunctionSymbol> | undefined;

  constructor(readonly path: string) {
    try {
      this.buf = fs.readFileSync(path);
    } catch (e) {
      throw new ElfError(`${path}: ${(e as Error).message}`);
    }
    this.sections = elfSections(path, (offset, length) => this.buf.subarray(offset, offset + length));
  }

  section(name: string): Section | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** Every .symtab entry, as the binary lists them; throws when it was stripped. */
  private *symtab(): Generator<{ name: string; info: number; shndx: number; addr: bigint; size: number }> {
    const symtab = this.sections.find((s) => s.type === 2 /* SHT_SYMTAB */);
    if (!symtab) throw new ElfError(`${this.path}: no symbol table (stripped, -ldflags=-s): its functions cannot be found`);
    const strtab = this.sections[symtab.link]!;
    for (let at = symtab.offset; at + 24 <= symtab.offset + symtab.size; at += symtab.entsize || 24) {
      yield {
        name: cstring(this.buf, strtab.offset + this.buf.readUInt32LE(at)),
        info: this.buf[at + 4]!,
        shndx: this.buf.readUInt16LE(at + 6),
        addr: this.buf.readBigUInt64LE(at + 8),
        size: Number(this.buf.readBigUInt64LE(at + 16)),
      };
    }
  }

  /** Function symbols by name; throws when the binary was stripped (no .symtab). */
  functions(): Map<string, FunctionSymbol> {
    if (this.symbols) return this.symbols;
    const out = new Map<string, FunctionSymbol>();
    for (const sym of this.symtab()) {
      if ((sym.info & 0xf) !== 2 /* STT_FUNC */) continue;
      const home = this.sections[sym.shndx];
      if (!home) continue;
      out.set(sym.name, { name: sym.name, addr: sym.addr, size: sym.size, offset: Number(sym.addr - home.addr) + home.offset });
    }
    this.symbols = out;
    return out;
  }

  /**
   * Where a data or function symbol is, under the first of these names the
   * binary has: its link-time address, and for a position-independent binary
   * (ET_DYN) its distance from the start of the segment that maps file offset
   * 0 — add that segment's load address in a process to find it there.
   * Undefined when none is there, or the binary was stripped.
   */
  symbolAddress(...names: string[]): { addr: bigint; pie: false } | { fromBase: bigint; pie: true } | undefined {
    const found = new Map<string, bigint>();
    try {
      for (const sym of this.symtab()) if (names.includes(sym.name)) found.set(sym.name, sym.addr);
    } catch (e) {
      if (e instanceof ElfError) return undefined;
      throw e;
    }
    const name = names.find((n) => found.has(n));
    if (name === undefined) return undefined;
    const addr = found.get(name)!;
    if (this.buf.readUInt16LE(0x10) !== 3 /* ET_DYN */) return { addr, pie: false };
    // The PT_LOAD segment that maps file offset 0: what /proc/PID/maps shows at offset 0.
    const phoff = Number(this.buf.readBigUInt64LE(0x20));
    const phentsize = this.buf.readUInt16LE(0x36);
    for (let i = 0; i < this.buf.readUInt16LE(0x38); i++) {
      const ph = phoff + i * phentsize;
      if (this.buf.readUInt32LE(ph) === 1 && this.buf.readBigUInt64LE(ph + 8) === 0n) return { fromBase: addr - this.buf.readBigUInt64LE(ph + 16), pie: true };
    }
    return undefined;
  }

  /** Go version and modules from .go.buildinfo (Go 1.18+ inline format). */
  buildInfo(): GoBuildInfo {
    const s = this.section('.go.buildinfo');
    if (!s) throw new ElfError(`${this.path}: no .go.buildinfo section: not a Go binary, or older than Go 1.13`);
    const b = this.buf.subarray(s.offset, s.offset + s.size);
    if (b.toString('latin1', 0, 14) !== '\xff Go buildinf:') throw new ElfError(`${this.path}: .go.buildinfo has no build-info magic`);
    if (!(b[15]! & 0x2)) throw new ElfError(`${this.path}: build info in the pre-1.18 pointer format is not supported`);
    let at = 32;
    const next = (): string => {
      let len = 0;
      let shift = 0;
      for (;;) {
        const byte = b[at++]!;
        len |= (byte & 0x7f) << shift;
        if (!(byte & 0x80)) break;
        shift += 7;
      }
      const str = b.toString('utf8', at, at + len);
      at += len;
      return str;
    };
    const goVersion = next();
    // The module info is framed by 16 sentinel bytes on each side.
    const modinfo = next();
    const text = modinfo.length > 32 ? modinfo.slice(16, -16) : '';
    const lines = text.split('\n');
    const field = (kind: string) => lines.filter((l) => l.startsWith(`${kind}\t`)).map((l) => l.split('\t').slice(1, 3).join(' '));
    const main = field('mod')[0];
    return { goVersion, ...(main ? { mainModule: main } : {}), modules: field('dep') };
  }

  /**
   * Byte offset of `member` in struct `struct` (`runtime.g`, `goid`): from the
   * binary's DWARF when it has it, else from GO_OFFSETS for its Go release;
   * an ElfError when neither knows.
   */
  async fieldOffset(struct: string, member: string): Promise<{ offset: number; from: 'dwarf' | 'table' }> {
    return (await this.fieldOffsets([`${struct}.${member}`]))[0]!;
  }

  /**
   * Several offsets at once (`runtime.g.goid`: the member after the last dot),
   * from one pass over the DWARF; in the order asked. Throws the first field's
   * refusal.
   */
  async fieldOffsets(fields: string[]): Promise<Array<{ offset: number; from: 'dwarf' | 'table' }>> {
    const resolved = await this.resolveFields(fields);
    return fields.map((field) => {
      const r = resolved.get(field)!;
      if (r instanceof ElfError) throw r;
      return r;
    });
  }

  /** Like fieldOffsets, one DWARF pass, but each field's offset or refusal on its own. */
  async resolveFields(fields: string[]): Promise<Map<string, { offset: number; from: 'dwarf' | 'table' } | ElfError>> {
    const wanted = fields.map((f) => {
      const dot = f.lastIndexOf('.');
      return { struct: f.slice(0, dot), member: f.slice(dot + 1) };
    });
    const fromDwarf = this.section('.debug_info') || this.section('.zdebug_info') ? await dwarfMemberOffsets(this.path, wanted) : new Map<string, number>();
    let release: string | undefined;
    return new Map(fields.map((field): [string, { offset: number; from: 'dwarf' | 'table' } | ElfError] => {
      const offset = fromDwarf.get(field);
      if (offset !== undefined) return [field, { offset, from: 'dwarf' as const }];
      release ??= /^go\d+\.\d+/.exec(this.buildInfo().goVersion)?.[0] ?? '';
      const known = GO_OFFSETS[release]?.[field];
      if (known === undefined) {
        return [field, new ElfError(`${this.path}: ${field} is not in its DWARF (built with -ldflags=-w?) and ${release || 'this Go release'} is not in the offsets table: refusing to guess`)];
      }
      return [field, { offset: known, from: 'table' as const }];
    }));
  }

  /**
   * File offsets of every RET in a function, from objdump's disassembly; run
   * as a child process the caller does not wait on (a live agent must keep
   * draining its ring buffer meanwhile).
   */
  async retOffsets(fn: FunctionSymbol): Promise<number[]> {
    const text = await new Promise<string>((resolve, reject) => {
      execFile('objdump', this.disassembleArgs(fn), { encoding: 'utf8', maxBuffer: 64 << 20 }, (e, stdout) => {
        if (e) reject(new ElfError(`objdump could not disassemble ${fn.name} in ${this.path}: ${e.message.split('\n')[0]}`));
        else resolve(stdout);
      });
    });
    return this.rets(fn, text);
  }

  private disassembleArgs(fn: FunctionSymbol): string[] {
    return ['-d', '--no-show-raw-insn', `--start-address=0x${fn.addr.toString(16)}`, `--stop-address=0x${(fn.addr + BigInt(fn.size)).toString(16)}`, this.path];
  }

  private rets(fn: FunctionSymbol, text: string): number[] {
    const out: number[] = [];
    for (const m of text.matchAll(/^\s*([0-9a-f]+):\s+ret[qnl]?\b/gm)) {
      const addr = BigInt(`0x${m[1]}`);
      out.push(fn.offset + Number(addr - fn.addr));
    }
    return out;
  }
}

function cstring(b: Buffer, at: number): string {
  const end = b.indexOf(0, at);
  return b.toString('latin1', at, end < 0 ? b.length : end);
}

/**
 * Members' offsets from objdump's DWARF listing, read as a stream and stopped
 * as soon as all are found (a Go binary's listing runs to many MB).
 * Structures are DIEs at depth 1, their members at depth 2. Keys: `struct.member`.
 */
function dwarfMemberOffsets(file: string, wanted: Array<{ struct: string; member: string }>): Promise<Map<string, number>> {
  const structs = new Map<string, Set<string>>();
  for (const w of wanted) {
    if (!structs.has(w.struct)) structs.set(w.struct, new Set());
    structs.get(w.struct)!.add(w.member);
  }
  return new Promise((resolve, reject) => {
    const found = new Map<string, number>();
    const child = spawn('objdump', ['--dwarf=info', file], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.on('error', (e) => reject(new ElfError(`objdump: ${e.message}`)));
    const lines = readline.createInterface({ input: child.stdout! });
    let members: Set<string> | undefined;
    let struct = '';
    let tag = '';
    let name = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      lines.close();
      child.kill();
      resolve(found);
    };
    lines.on('line', (line) => {
      const die = /^\s*<(\d+)><[0-9a-f]+>: Abbrev Number: \d+ \((\w+)\)/.exec(line);
      if (die) {
        tag = die[2]!;
        name = '';
        if (Number(die[1]) <= 1) members = undefined; // a new top-level entry ends the struct we were in
        return;
      }
      const attr = /DW_AT_(name|data_member_location)\s*:\s*(.*)$/.exec(line);
      if (!attr) return;
      if (attr[1] === 'name') {
        name = attr[2]!.replace(/^\(indirect string, offset: 0x[0-9a-f]+\): /, '').trim();
        if (tag === 'DW_TAG_structure_type') {
          members = structs.get(name);
          struct = name;
        }
      } else if (members && tag === 'DW_TAG_member' && members.has(name)) {
        found.set(`${struct}.${name}`, Number(attr[2]!.trim()));
        if (found.size === wanted.length) finish();
      }
    });
    lines.on('close', finish);
  });
}
