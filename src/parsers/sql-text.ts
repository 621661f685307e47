/**
 * What a SQL statement's text says without a SQL parser: its operation
 * (SELECT, INSERT, ...), the table it works on where that is plain to see, and
 * the text with its literals replaced by `?` (the agent must not export the
 * values a program stores: OpenTelemetry's db.query.text sanitisation).
 */

const SKIP_LEADING = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;

/** The statement's first keyword, upper-cased: SELECT, INSERT, BEGIN, ... ('' when there is none). */
export function sqlOperation(text: string): string {
  const rest = text.replace(SKIP_LEADING, '');
  const m = /^[A-Za-z]+/.exec(rest);
  if (!m) return '';
  const op = m[0].toUpperCase();
  if (op === 'WITH') {
    // A CTE: the operation is the statement after the WITH clauses.
    const main = /\)\s*(SELECT|INSERT|UPDATE|DELETE|MERGE)\b/i.exec(rest);
    return main ? main[1]!.toUpperCase() : op;
  }
  return op;
}

const IDENT = '(?:"(?:[^"]|"")+"|`[^`]+`|[A-Za-z_][A-Za-z0-9_$]*)';
const QUALIFIED = `(${IDENT}(?:\\s*\\.\\s*${IDENT}){0,2})`;
const TABLE_AFTER: Record<string, RegExp> = {
  SELECT: new RegExp(`\\bFROM\\s+${QUALIFIED}`, 'i'),
  DELETE: new RegExp(`\\bFROM\\s+${QUALIFIED}`, 'i'),
  INSERT: new RegExp(`\\bINTO\\s+${QUALIFIED}`, 'i'),
  REPLACE: new RegExp(`\\bINTO\\s+${QUALIFIED}`, 'i'),
  UPDATE: new RegExp(`^\\s*UPDATE\\s+(?:ONLY\\s+)?${QUALIFIED}`, 'i'),
  COPY: new RegExp(`^\\s*COPY\\s+${QUALIFIED}`, 'i'),
  TRUNCATE: new RegExp(`^\\s*TRUNCATE\\s+(?:TABLE\\s+)?${QUALIFIED}`, 'i'),
  CREATE: new RegExp(`^\\s*CREATE\\s+(?:TEMP(?:ORARY)?\\s+|UNLOGGED\\s+)?TABLE\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?${QUALIFIED}`, 'i'),
  DROP: new RegExp(`^\\s*DROP\\s+TABLE\\s+(?:IF\\s+EXISTS\\s+)?${QUALIFIED}`, 'i'),
  ALTER: new RegExp(`^\\s*ALTER\\s+TABLE\\s+(?:IF\\s+EXISTS\\s+)?(?:ONLY\\s+)?${QUALIFIED}`, 'i'),
};

/** The table a statement names, when one is plain (a single FROM/INTO/UPDATE target); undefined otherwise. */
export function sqlTable(text: string): string | undefined {
  const rest = text.replace(SKIP_LEADING, '');
  const op = sqlOperation(rest);
  const re = TABLE_AFTER[op];
  if (!re) return undefined;
  const m = re.exec(rest);
  if (!m) return undefined;
  const name = m[1]!.replace(/\s*\.\s*/g, '.');
  // A sub-select in FROM is not a table.
  if (/^\(/.test(name)) return undefined;
  return name.replace(/"((?:[^"]|"")+)"/g, (_, s: string) => s.replace(/""/g, '"')).replace(/`([^`]+)`/g, '$1');
}

/**
 * Literals become `?`: quoted strings (standard, E'', $$dollar$$), numbers,
 * hex and boolean-free keywords stay. Identifiers in double quotes or
 * backticks stay. Comments are dropped (they may hold values too).
 */
export function obfuscateSql(text: string): string {
  let out = '';
  let i = 0;
  const n = text.length;
  let lastWasSpace = false;
  const put = (s: string) => {
    out += s;
    lastWasSpace = false;
  };
  while (i < n) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '-' && next === '-') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? n : end;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
      if (!lastWasSpace) put(' ');
      lastWasSpace = true;
      continue;
    }
    if (c === "'" || ((c === 'E' || c === 'e' || c === 'N' || c === 'n' || c === 'X' || c === 'x' || c === 'B' || c === 'b') && next === "'" && !isIdentChar(text[i - 1]))) {
      let j = c === "'" ? i + 1 : i + 2;
      const backslashEscapes = c === 'E' || c === 'e';
      while (j < n) {
        if (text[j] === '\\' && backslashEscapes) j += 2;
        else if (text[j] === "'" && text[j + 1] === "'") j += 2;
        else if (text[j] === "'") break;
        else j++;
      }
      i = j + 1;
      put('?');
      continue;
    }
    if (c === '$' && !isIdentChar(text[i - 1])) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i, i + 64));
      if (tag) {
        const close = text.indexOf(tag[0], i + tag[0].length);
        i = close < 0 ? n : close + tag[0].length;
        put('?');
        continue;
      }
    }
    if (c === '"' || c === '`') {
      const close = text.indexOf(c, i + 1);
      const end = close < 0 ? n : close + 1;
      put(text.slice(i, end));
      i = end;
      continue;
    }
    if ((c === '-' || c === '+') && (isDigit(next) || (next === '.' && isDigit(text[i + 2]))) && unarySign(out)) {
      // A sign belongs to its number: `x = -3` and `x = 3` are one statement, `a - 3` keeps its operator.
      i++;
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(next))) {
      if (!isIdentChar(text[i - 1])) {
        let j = i;
        if (c === '0' && (next === 'x' || next === 'X')) j += 2;
        while (j < n && (isIdentChar(text[j]) || text[j] === '.' || ((text[j] === '+' || text[j] === '-') && (text[j - 1] === 'e' || text[j - 1] === 'E')))) j++;
        i = j;
        put('?');
        continue;
      }
    }
    if (c === ' ' || c === '\n' || c === '\t' || c === '\r') {
      if (!lastWasSpace && out.length > 0) put(' ');
      lastWasSpace = true;
      i++;
      continue;
    }
    put(c);
    i++;
  }
  return out.trim();
}

/** Words after which a sign starts a number rather than subtracting. */
const SIGN_BEFORE = new Set([
  'SELECT',
  'WHERE',
  'AND',
  'OR',
  'NOT',
  'VALUES',
  'SET',
  'IN',
  'BETWEEN',
  'WHEN',
  'THEN',
  'ELSE',
  'LIMIT',
  'OFFSET',
  'RETURN',
  'RETURNING',
  'BY',
  'IS',
  'LIKE',
  'HAVING',
  'ON',
  'CASE',
  'AS',
  'INTERVAL',
]);

/** Whether a sign at this point of the output (what came before it) is unary. */
function unarySign(out: string): boolean {
  let end = out.length;
  while (end > 0 && out[end - 1] === ' ') end--;
  if (end === 0) return true;
  const last = out[end - 1]!;
  if ('=<>!(,*/%+-|&^~['.includes(last)) return true;
  if (!isIdentChar(last)) return false; // ')', '?', a quoted name: an operand, so the sign subtracts
  let start = end;
  while (start > 0 && isIdentChar(out[start - 1])) start--;
  return SIGN_BEFORE.has(out.slice(start, end).toUpperCase());
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isIdentChar(c: string | undefined): boolean {
  return c !== undefined && (isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c === '$');
}
