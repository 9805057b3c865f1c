// MDE timestamps: UTC, 100-nanosecond precision. Stored with exactly 7 fraction digits so that string order
// is time order in every database; served with trailing zeros trimmed, as the live service does.

const FIXED = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{7})Z$/;

// The date and time up to the second of recent timestamps: a busy server formats several per request (now, and
// now plus the action expiry), nearly all within two seconds, and Date#toISOString was the costliest step.
const memoSeconds = [Number.NaN, Number.NaN];
const memoPrefixes = ['', ''];
let memoNext = 0;

function secondPrefix(second: number): string {
  if (memoSeconds[0] === second) return memoPrefixes[0]!;
  if (memoSeconds[1] === second) return memoPrefixes[1]!;
  const prefix = new Date(second * 1000).toISOString().slice(0, 20); // 2026-11-29T06:57:06.
  memoSeconds[memoNext] = second;
  memoPrefixes[memoNext] = prefix;
  memoNext = 1 - memoNext;
  return prefix;
}

/** Formats epoch microseconds (plus an optional 100 ns digit) as the stored fixed-width form. */
export function formatTicks(epochMicros: bigint, hundredNanos = 0): string {
  // Seconds and microseconds apart, in BigInt: epoch microseconds pass 2^53 in the year 2255.
  const prefix = secondPrefix(Number(epochMicros / 1_000_000n));
  const fraction = Number(epochMicros % 1_000_000n) * 10 + hundredNanos;
  return `${prefix}${String(fraction).padStart(7, '0')}Z`;
}

/** Stored form → wire form: trailing zeros of the fraction trimmed (and the dot when nothing is left). */
export function toWireTimestamp(stored: string): string {
  const m = FIXED.exec(stored);
  if (!m) return stored;
  const frac = m[2]!.replace(/0+$/, '');
  return frac ? `${m[1]}.${frac}Z` : `${m[1]}Z`;
}

/**
 * Any ISO-8601 date or date-time an OData client may send (`2019-11-22T00:00:00Z`, `2018-08-01Z`,
 * `2024-01-01T10:00:00.12+02:00`) → the stored fixed-width UTC form, or null when it is not a date.
 */
export function normalizeTimestamp(input: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:\d{2})?$/i.exec(input);
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', tz = 'Z'] = m;
  // Date.parse rolls impossible dates over (2024-02-30 → March 1st, T24:00 → next day): refuse them instead.
  const daysInMonth = new Date(Date.UTC(Number(y), Number(mo), 0)).getUTCDate();
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > daysInMonth) return null;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return null;
  const whole = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${tz.toUpperCase() === 'Z' ? 'Z' : tz}`);
  if (Number.isNaN(whole)) return null;
  const digits = (frac + '0000000').slice(0, 7);
  return `${new Date(whole).toISOString().slice(0, 19)}.${digits}Z`;
}

/** Stored form → epoch milliseconds (sub-millisecond digits dropped). */
export function timestampToMillis(stored: string): number {
  return Date.parse(stored.slice(0, 23) + 'Z');
}

export function millisToTimestamp(ms: number): string {
  return formatTicks(BigInt(Math.floor(ms)) * 1000n);
}
