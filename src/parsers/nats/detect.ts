/**
 * NATS from a connection's start (the server's `INFO {…}`, the client's
 * `CONNECT {…}`), or mid-connection from a PUB, HPUB, SUB, MSG or HMSG line.
 * Asked before Redis: `INFO {…}` would read as a Redis inline command.
 */
import type { ModuleVerdict } from '../module';
import { NEED_MORE, seenFrom } from '../shared/detection';

const SUBJECT = '[\\x21-\\x7e]{1,512}';
const MID_CLIENT = new RegExp(
  `^(?:PUB ${SUBJECT}(?: ${SUBJECT})? \\d{1,10}|HPUB ${SUBJECT}(?: ${SUBJECT})? \\d{1,10} \\d{1,10}|SUB ${SUBJECT}(?: ${SUBJECT})? [\\x21-\\x7e]{1,64})$`,
);
const MID_SERVER = new RegExp(`^(?:MSG ${SUBJECT} [\\x21-\\x7e]{1,64}(?: ${SUBJECT})? \\d{1,10}|HMSG ${SUBJECT} [\\x21-\\x7e]{1,64}(?: ${SUBJECT})? \\d{1,10} \\d{1,10})$`);

export function detectNats(b: Buffer): ModuleVerdict {
  const head = b.toString('latin1', 0, Math.min(b.length, 16));
  if (head.startsWith('INFO {')) return seenFrom('server', true);
  if (head.startsWith('CONNECT {')) return seenFrom('client', true);
  if (b.length < 9 && ('INFO {'.startsWith(head) || 'CONNECT {'.startsWith(head))) return NEED_MORE;
  const lf = b.indexOf(0x0a);
  if (lf < 0) return undefined;
  const line = b.toString('latin1', 0, lf > 0 && b[lf - 1] === 0x0d ? lf - 1 : lf);
  if (MID_CLIENT.test(line)) return seenFrom('client', false);
  if (MID_SERVER.test(line)) return seenFrom('server', false);
  return undefined;
}
