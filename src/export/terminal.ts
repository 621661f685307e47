/**
 * Text for a terminal made of bytes anyone can send: a request target or a
 * query can carry escape sequences that move the cursor, rewrite earlier
 * lines or set the window title. Every line of terminal output goes through
 * escapeControl, which writes control characters (C0, DEL, C1) and Unicode's
 * bidirectional overrides as visible escapes.
 */

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const visible = (c: string): string => {
  const code = c.charCodeAt(0);
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
};

/** One line of text, with every character a terminal would act on shown instead. */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, visible);
}

/** Lines made safe one by one, then joined: the newlines between them are the only ones left. */
export function safeLines(lines: string[]): string {
  return lines.map(escapeControl).join('\n');
}
