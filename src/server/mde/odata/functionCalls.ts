// OData function calls in a path segment: `findbyip(ip='10.1.2.3',timestamp=2026-11-29T05:24:41Z)` and
// `GetLiveResponseResultDownloadLink(index=0)`. Names and parameter names match case-insensitively.
import { isIP } from 'node:net';
import { MdeError, badRequest } from '../../../core/errors.ts';
import { normalizeTimestamp } from '../../../core/time.ts';

export interface FindByIpCall {
  ip: string;
  /** Stored fixed-width UTC form. */
  timestamp: string;
}

const MAX_INDEX = 2_147_483_647;

export function parseFindByIp(segment: string): FindByIpCall {
  const usage = "expected findbyip(ip='<address>',timestamp=<date-time>)";
  const args = parseCall(segment, 'findbyip', ['ip', 'timestamp'], usage);
  const ip = args.get('ip');
  const rawTimestamp = args.get('timestamp');
  if (ip === undefined) throw badRequest(`Parameter ip is missing; ${usage}`);
  if (rawTimestamp === undefined) throw badRequest(`Parameter timestamp is missing; ${usage}`);
  if (isIP(ip) === 0) throw new MdeError(400, 'InvalidIpAddress', `IP address ${ip} is invalid`);
  // An unencoded `+02:00` offset turns into a space when something decodes the path as a form.
  const timestamp = normalizeTimestamp(rawTimestamp.replace(/ (\d{2}:\d{2})$/, '+$1'));
  if (timestamp === null) {
    throw badRequest(`Timestamp ${rawTimestamp} is not a valid date-time; use a form such as 2026-11-29T05:24:41Z`);
  }
  return { ip: ip.toLowerCase(), timestamp };
}

export function parseIndexCall(segment: string, name: string): number {
  const usage = `expected ${name}(index=<n>)`;
  const raw = parseCall(segment, name, ['index'], usage).get('index');
  if (raw === undefined) throw badRequest(`Parameter index is missing; ${usage}`);
  if (!/^\d{1,10}$/.test(raw) || Number(raw) > MAX_INDEX) {
    throw badRequest(`Index ${raw} is invalid; it must be a non-negative integer`);
  }
  return Number(raw);
}

/**
 * `name(key=value,…)` → lower-cased key → value. Values are 'quoted' (with '' escaping) or bare up to the next
 * comma; each key may appear once, in any order.
 */
function parseCall(rawSegment: string, name: string, keys: readonly string[], usage: string): Map<string, string> {
  const segment = decodeIfEncoded(rawSegment);
  const shape = /^\s*([A-Za-z_][\w.]*)\s*\(([\s\S]*)\)\s*$/.exec(segment);
  if (!shape || shape[1]!.toLowerCase() !== name.toLowerCase()) {
    throw badRequest(`Invalid function call ${rawSegment}: ${usage}`);
  }
  const body = shape[2]!;
  const args = new Map<string, string>();
  let i = 0;
  const skipSpace = () => {
    while (i < body.length && /\s/.test(body[i]!)) i++;
  };
  skipSpace();
  if (i === body.length) return args;
  for (;;) {
    skipSpace();
    const keyMatch = /[A-Za-z_]\w*/y;
    keyMatch.lastIndex = i;
    const key = keyMatch.exec(body)?.[0];
    if (!key) throw badRequest(`Invalid function call ${rawSegment}: a parameter name expected; ${usage}`);
    i += key.length;
    const lower = key.toLowerCase();
    if (!keys.includes(lower)) throw badRequest(`Unknown parameter ${key} in ${name}; ${usage}`);
    if (args.has(lower)) throw badRequest(`Parameter ${key} is given more than once in ${name}`);
    skipSpace();
    if (body[i] !== '=') throw badRequest(`Invalid function call ${rawSegment}: '=' expected after ${key}; ${usage}`);
    i++;
    skipSpace();
    let value: string;
    if (body[i] === "'") {
      value = '';
      i++;
      for (;;) {
        const close = body.indexOf("'", i);
        if (close < 0) throw badRequest(`Invalid function call ${rawSegment}: unterminated string; ${usage}`);
        value += body.slice(i, close);
        i = close + 1;
        if (body[i] !== "'") break;
        value += "'";
        i++;
      }
      skipSpace();
    } else {
      const comma = body.indexOf(',', i);
      const end = comma < 0 ? body.length : comma;
      value = body.slice(i, end).trim();
      i = end;
    }
    if (value === '') throw badRequest(`Parameter ${key} is empty in ${name}; ${usage}`);
    args.set(lower, value);
    if (i === body.length) return args;
    if (body[i] !== ',') throw badRequest(`Invalid function call ${rawSegment}: ',' or ')' expected; ${usage}`);
    i++;
  }
}

/**
 * Routers hand over decoded segments, but a raw one (`findbyip(ip=%2710.1.2.3%27,…)`) is decoded once here.
 * Only percent-escapes of the call syntax trigger this, so a literal `%` in an already decoded value stays.
 */
function decodeIfEncoded(segment: string): string {
  if (!/%(?:27|28|29|2c|3a|3d|20)/i.test(segment)) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
