// Splits a $filter text into tokens. Literal forms follow OData v4 URL conventions plus what MDE clients send:
// 'quoted strings' with '' escaping, numbers, unquoted dates and date-times, unquoted GUIDs.
import { normalizeTimestamp } from '../../../core/time.ts';
import { at, invalidQuery } from './invalid.ts';

export type Token =
  | { kind: 'identifier'; text: string; pos: number }
  | { kind: 'string'; value: string; pos: number }
  | { kind: 'number'; value: number; text: string; pos: number }
  /** Already in the stored fixed-width UTC form. */
  | { kind: 'datetime'; value: string; text: string; pos: number }
  | { kind: 'guid'; text: string; pos: number }
  | { kind: 'punct'; text: '(' | ')' | ',' | '/' | ':'; pos: number }
  | { kind: 'end'; pos: number };

/**
 * An unquoted date or date-time. The offset may appear as ` HH:MM` because an unencoded `+02:00` in a query
 * string is decoded to a space before it reaches us; that form is only taken after a time of day.
 */
const DATETIME =
  /\d{4}-\d{2}-\d{2}(?:(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(?:Z|[+-]\d{2}:\d{2}| \d{2}:\d{2})?|Z|[+-]\d{2}:\d{2})?/iy;
const DATE_PREFIX = /\d{4}-\d{2}/y;
const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/iy;
const NUMBER = /-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/iy;
const IDENTIFIER = /[\p{L}_][\p{L}\p{N}_]*/uy;
const IDENTIFIER_CHAR = /[\p{L}\p{N}_]/u;
const WHITESPACE = /\s/;

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const matchAt = (re: RegExp): string | null => {
    re.lastIndex = i;
    const m = re.exec(text);
    return m ? m[0] : null;
  };
  /** A literal must not run straight into a name (`123abc`, `2024-01-01Zfoo`). */
  const endsCleanly = (end: number): boolean => end >= text.length || !IDENTIFIER_CHAR.test(text[end]!);

  while (i < text.length) {
    const c = text[i]!;
    if (WHITESPACE.test(c)) {
      i++;
      continue;
    }
    const pos = i;
    if (c === '(' || c === ')' || c === ',' || c === '/' || c === ':') {
      tokens.push({ kind: 'punct', text: c, pos });
      i++;
      continue;
    }
    if (c === "'") {
      const { value, end } = readString(text, i);
      tokens.push({ kind: 'string', value, pos });
      i = end;
      continue;
    }
    const guid = matchAt(GUID);
    if (guid !== null && endsCleanly(i + guid.length)) {
      tokens.push({ kind: 'guid', text: guid, pos });
      i += guid.length;
      continue;
    }
    if (/[0-9-]/.test(c)) {
      const date = matchAt(DATETIME);
      if (date !== null && endsCleanly(i + date.length)) {
        const value = normalizeTimestamp(date.replace(/ (\d{2}:\d{2})$/, '+$1'));
        if (value === null) {
          throw invalidQuery(`Unrecognized 'Edm.DateTimeOffset' literal '${date}' ${at(pos, text)}.`);
        }
        tokens.push({ kind: 'datetime', value, text: date, pos });
        i += date.length;
        continue;
      }
      if (matchAt(DATE_PREFIX) !== null) {
        throw invalidQuery(`Unrecognized 'Edm.DateTimeOffset' literal '${literalRun(text, i)}' ${at(pos, text)}.`);
      }
      const num = matchAt(NUMBER);
      if (num !== null) {
        if (!endsCleanly(i + num.length) || text[i + num.length] === '.') {
          throw invalidQuery(`Syntax error: '${literalRun(text, i)}' is not a valid number ${at(pos, text)}.`);
        }
        const value = Number(num);
        const integral = !/[.e]/i.test(num);
        if (!Number.isFinite(value) || (integral && !Number.isSafeInteger(value))) {
          throw invalidQuery(`The number '${num}' is out of range ${at(pos, text)}.`);
        }
        tokens.push({ kind: 'number', value, text: num, pos });
        i += num.length;
        continue;
      }
    }
    const ident = matchAt(IDENTIFIER);
    if (ident !== null) {
      tokens.push({ kind: 'identifier', text: ident, pos });
      i += ident.length;
      continue;
    }
    throw invalidQuery(`Syntax error: character '${c}' is not valid ${at(pos, text)}.`);
  }
  tokens.push({ kind: 'end', pos: text.length });
  return tokens;
}

function readString(text: string, start: number): { value: string; end: number } {
  let value = '';
  let i = start + 1;
  for (;;) {
    const close = text.indexOf("'", i);
    if (close < 0) throw invalidQuery(`Unterminated string literal ${at(start, text)}.`);
    value += text.slice(i, close);
    if (text[close + 1] === "'") {
      value += "'";
      i = close + 2;
      continue;
    }
    return { value, end: close + 1 };
  }
}

/** The run of literal-looking characters at i, to quote in an error. */
function literalRun(text: string, i: number): string {
  const m = /[\p{L}\p{N}_.:+-]+/uy;
  m.lastIndex = i;
  return m.exec(text)?.[0] ?? text[i]!;
}
