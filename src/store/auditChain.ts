// The audit log's hash chain: each entry's hash covers the previous hash and the entry itself, so changing,
// inserting or deleting any entry before the newest breaks every hash after it.
import * as crypto from 'node:crypto';
import { checkTimestamp } from './inputChecks.ts';
import type { AuditEntry, NewAuditEntry } from './store.ts';

export const GENESIS_HASH = '0'.repeat(64);

// One-shot crypto.hash (Node 20.12+) where there is one: half the cost of a Hash object, once per audit entry.
const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');

const ACTOR_TYPES: ReadonlySet<string> = new Set(['app', 'user', 'device', 'system', 'cli']);
const RESULTS: ReadonlySet<string> = new Set(['success', 'failure']);

/**
 * JSON with object keys sorted at every level and no whitespace: one byte string per value. Members whose value
 * has no JSON form (undefined, functions, symbols) are left out; in arrays those are null, and holes stay empty.
 * The output is part of every stored hash: it must never change (test/store/auditChain.test.ts pins it).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    return s === undefined ? 'null' : s;
  }
  // Concatenation in loops rather than map/filter/join: this runs for every audit entry written (hot path).
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      if (i in value) out += canonicalJson(value[i]);
    }
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  let out = '{';
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (!hasJsonForm(v)) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(k)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

function hasJsonForm(v: unknown): boolean {
  return v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
}

/**
 * The fields of an entry, and only those (extra properties a caller passed are neither stored nor hashed), with
 * `detail` as given.
 */
function entryFields(e: NewAuditEntry, detail: unknown): NewAuditEntry {
  return {
    at: e.at,
    actorType: e.actorType,
    actorId: e.actorId,
    actorName: e.actorName,
    action: e.action,
    target: e.target,
    result: e.result,
    status: e.status,
    clientIp: e.clientIp,
    correlationId: e.correlationId,
    detail,
  };
}

/** What the hash covers: every field except id (assigned by the store) and the hash itself, in canonical order. */
const HASHED_FIELDS = (
  ['at', 'actorType', 'actorId', 'actorName', 'action', 'target', 'result', 'status', 'clientIp', 'correlationId', 'detail', 'prevHash'] as const
)
  .slice()
  .sort()
  .map((name) => ({ name, prefix: `${JSON.stringify(name)}:` }));

/** sha256 over the previous hash and canonicalJson of the hashed fields. */
export function auditHash(prevHash: string, entry: Omit<AuditEntry, 'id' | 'hash' | 'prevHash'>): string {
  return sha256Hex(`${prevHash}\n${flatEntryJson(prevHash, entry) ?? entryJson(prevHash, entry)}`);
}

/** canonicalJson of the hashed fields, built field by field (any entry). */
function entryJson(prevHash: string, entry: Omit<AuditEntry, 'id' | 'hash' | 'prevHash'>): string {
  let body = '{';
  for (const { name, prefix } of HASHED_FIELDS) {
    const v = name === 'prevHash' ? prevHash : entry[name];
    if (!hasJsonForm(v)) continue;
    if (body.length > 1) body += ',';
    body += prefix + canonicalJson(v);
  }
  return `${body}}`;
}

/** Member names that JSON.stringify would not keep in insertion order: array indices, which V8 lists first. */
const INDEX_LIKE = /^(?:0|[1-9][0-9]*)$/;

function isJsonPrimitive(v: unknown): boolean {
  return v === null || v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/**
 * The same text as entryJson, by one JSON.stringify of a literal whose keys are in canonical order — for the usual
 * entry: primitive fields and a `detail` that is absent, null or a flat plain object of primitives. Null otherwise.
 * (The field-by-field path called JSON.stringify ~15 times per entry: ~2% of a POST's instructions.)
 */
function flatEntryJson(prevHash: string, e: Omit<AuditEntry, 'id' | 'hash' | 'prevHash'>): string | null {
  for (const { name } of HASHED_FIELDS) {
    if (name !== 'detail' && name !== 'prevHash' && !isJsonPrimitive(e[name])) return null;
  }
  let detail: unknown = e.detail;
  if (!isJsonPrimitive(detail)) {
    if (typeof detail !== 'object' || Object.getPrototypeOf(detail) !== Object.prototype) return null;
    const source = detail as Record<string, unknown>;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(source).sort()) {
      const v = source[k];
      if (k === '__proto__' || INDEX_LIKE.test(k) || !isJsonPrimitive(v)) return null;
      sorted[k] = v;
    }
    detail = sorted;
  }
  // Keys in HASHED_FIELDS order; JSON.stringify drops undefined members, as entryJson does.
  return JSON.stringify({
    action: e.action,
    actorId: e.actorId,
    actorName: e.actorName,
    actorType: e.actorType,
    at: e.at,
    clientIp: e.clientIp,
    correlationId: e.correlationId,
    detail,
    prevHash,
    result: e.result,
    status: e.status,
    target: e.target,
  });
}

/**
 * Checks a new entry and returns it in the exact form it will be stored and read back (detail through JSON),
 * so the hash computed now is the hash a verifier recomputes from the stored row. Throws on bad input.
 */
export function normalizeAuditEntry(e: NewAuditEntry): NewAuditEntry {
  if (!ACTOR_TYPES.has(e.actorType)) throw new TypeError(`audit actorType must be one of ${[...ACTOR_TYPES].join(', ')}`);
  if (!RESULTS.has(e.result)) throw new TypeError('audit result must be success or failure');
  for (const k of ['at', 'actorId', 'action'] as const) {
    if (typeof e[k] !== 'string' || e[k] === '') throw new TypeError(`audit ${k} must be a non-empty string`);
  }
  for (const k of ['actorName', 'target', 'clientIp', 'correlationId'] as const) {
    if (e[k] !== null && typeof e[k] !== 'string') throw new TypeError(`audit ${k} must be a string or null`);
  }
  if (e.status !== null && !Number.isInteger(e.status)) throw new TypeError('audit status must be an integer or null');
  checkTimestamp('audit at', e.at);
  return entryFields(e, throughJson(e.detail));
}

/**
 * `detail` as JSON gives it back. A flat object of strings, booleans, null and finite numbers comes back as a plain
 * copy (undefined members dropped), built directly: this runs for every action created.
 */
export function throughJson(detail: unknown): unknown {
  if (detail === undefined) return null;
  if (typeof detail === 'object' && detail !== null && Object.getPrototypeOf(detail) === Object.prototype) {
    const copy: Record<string, unknown> = {};
    let flat = true;
    for (const [k, v] of Object.entries(detail)) {
      // '__proto__' would set the copy's prototype instead of a member; -0 and non-finite numbers change in JSON.
      if (k === '__proto__') flat = false;
      else if (v === null || typeof v === 'string' || typeof v === 'boolean') copy[k] = v;
      else if (typeof v === 'number' && Number.isFinite(v) && !Object.is(v, -0)) copy[k] = v;
      else if (v !== undefined) flat = false;
      if (!flat) break;
    }
    if (flat) return copy;
  }
  return JSON.parse(JSON.stringify(detail)) as unknown;
}

export type ChainCheck = { ok: true } | { ok: false; badId: number; reason: string };

/**
 * Verifies consecutive entries (oldest first). `prevHash` is the hash before the first entry given: GENESIS_HASH
 * when starting at the beginning of the log, or the hash of the entry before a page.
 */
export function verifyAuditChain(entries: readonly AuditEntry[], prevHash = GENESIS_HASH): ChainCheck {
  let prev = prevHash;
  for (const e of entries) {
    if (e.prevHash !== prev) return { ok: false, badId: e.id, reason: 'prevHash does not match the previous entry' };
    if (auditHash(prev, e) !== e.hash) return { ok: false, badId: e.id, reason: 'hash does not match the entry' };
    prev = e.hash;
  }
  return { ok: true };
}
