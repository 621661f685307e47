/** A Redis client's secrets masked in its bytes, byte for byte, however the stream is cut. */
import type { PayloadMasker } from '../module';

const STAR = 0x2a;
const LF = 0x0a;
const CR = 0x0d;

/** Redis commands whose arguments from this index on are secret, or a rule for which. */
const REDIS_SECRET_ARGS: Record<string, number> = { AUTH: 1 };

/** Redis, client commands: AUTH's arguments, HELLO's password, CONFIG SET of passwords, ACL SETUSER's password rules, MIGRATE's AUTH. */
export class RedisMasker implements PayloadMasker {
  private state: 'start' | 'count' | 'bulkHead' | 'bulk' | 'bulkCr' | 'bulkLf' | 'inline' | 'skipLine' = 'start';
  private number = '';
  private args = 0;
  private index = 0;
  private bulkLeft = 0;
  private words: string[] = [];
  private word: number[] = [];
  private maskThis = false;
  private inlineSpace = false;

  mask(payload: Uint8Array): number {
    let masked = 0;
    for (let i = 0; i < payload.length; i++) {
      const b = payload[i]!;
      switch (this.state) {
        case 'start':
          if (b === 0x2a) Object.assign(this, { state: 'count', number: '', index: 0, words: [] });
          else if (b === CR || b === LF) break;
          else {
            Object.assign(this, { state: 'inline', words: [], word: [b], inlineSpace: false, index: 0, maskThis: false });
          }
          break;
        case 'count':
          if (b === LF) {
            this.args = Number(this.number) || 0;
            this.state = this.args > 0 ? 'bulkHead' : 'start';
          } else if (b !== CR) this.number += String.fromCharCode(b);
          break;
        case 'bulkHead':
          if (b === 0x24) this.number = '';
          else if (b === LF) {
            this.bulkLeft = Math.max(0, Number(this.number) || 0);
            this.maskThis = this.isSecret(this.index);
            this.word = [];
            this.state = this.bulkLeft > 0 ? 'bulk' : 'bulkCr';
          } else if (b !== CR) this.number += String.fromCharCode(b);
          break;
        case 'bulk':
          if (this.word.length < 32) this.word.push(b);
          if (this.maskThis) {
            payload[i] = STAR;
            masked++;
          }
          if (--this.bulkLeft === 0) this.state = 'bulkCr';
          break;
        case 'bulkCr':
          this.state = 'bulkLf';
          break;
        case 'bulkLf':
          this.words.push(Buffer.from(this.word).toString('latin1').toUpperCase());
          this.index++;
          this.state = this.index < this.args ? 'bulkHead' : 'start';
          break;
        case 'inline':
          if (b === LF) {
            this.state = 'start';
            break;
          }
          if (b === 0x20) {
            if (!this.inlineSpace) {
              this.words.push(Buffer.from(this.word).toString('latin1').toUpperCase());
              this.index++;
              this.word = [];
              this.maskThis = this.isSecret(this.index);
            }
            this.inlineSpace = true;
            break;
          }
          this.inlineSpace = false;
          if (this.word.length < 32) this.word.push(b);
          if (this.maskThis && b !== CR) {
            payload[i] = STAR;
            masked++;
          }
          break;
        default:
          break;
      }
    }
    return masked;
  }

  /** Whether argument `index` of the command under way is a secret, from the words before it. */
  private isSecret(index: number): boolean {
    const w = this.words;
    const command = w[0];
    if (command === undefined) return false;
    const from = REDIS_SECRET_ARGS[command];
    if (from !== undefined) return index >= from;
    if (command === 'HELLO') return w[index - 2] === 'AUTH'; // HELLO 3 AUTH user password
    if (command === 'MIGRATE') return w[index - 1] === 'AUTH' || w[index - 2] === 'AUTH2' || w[index - 1] === 'AUTH2';
    if (command === 'CONFIG' && w[1] === 'SET') return index >= 3 && (index - 3) % 2 === 1 && /PASS|AUTH/.test(w[index - 1] ?? '');
    if (command === 'ACL' && w[1] === 'SETUSER') return index >= 3; // rules: >password, #hash among them
    return false;
  }
}
