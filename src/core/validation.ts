// Input rules shared by the API and by devices: identifiers and action bodies, in MDE's error terms.
import { MdeError } from './errors.ts';

export const SHA1_RE = /^[0-9a-fA-F]{40}$/;
export const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
export const MAX_COMMENT_LENGTH = 4000;

export function isSha1(s: unknown): s is string {
  return typeof s === 'string' && SHA1_RE.test(s);
}

export function isGuid(s: unknown): s is string {
  return typeof s === 'string' && GUID_RE.test(s);
}

export function assertGuidKey(id: string): string {
  if (!isGuid(id)) {
    throw new MdeError(
      400,
      'BadRequest',
      `The key value (${id}) from request is not valid. The key value should be format of type 'Edm.Guid'.`,
    );
  }
  return id.toLowerCase();
}

/** Body keys are case-sensitive on the live service: `sha1` is not `Sha1`. */
export function requireString(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (v === undefined || v === null) throw new MdeError(400, 'MissingRequiredParameter', `Parameter ${key} is missing`);
  if (typeof v !== 'string') throw new MdeError(400, 'InvalidRequestBody', `Parameter ${key} must be a string`);
  // NUL cannot be stored in PostgreSQL text and never belongs in a comment or an identifier.
  if (v.includes('\u0000')) throw new MdeError(400, 'InvalidInput', `Invalid input ${key}: contains a NUL character`);
  return v;
}

export function requireComment(body: Record<string, unknown>): string {
  const c = requireString(body, 'Comment');
  if (c.length > MAX_COMMENT_LENGTH) {
    throw new MdeError(400, 'InvalidInput', `Invalid input Comment: longer than ${MAX_COMMENT_LENGTH} characters`);
  }
  return c;
}

export function requireSha1(body: Record<string, unknown>): string {
  const h = requireString(body, 'Sha1');
  if (!SHA1_RE.test(h)) throw new MdeError(400, 'InvalidHashValue', `Hash value ${h} is invalid`);
  return h.toLowerCase();
}

/** A value from a fixed set, e.g. IsolationType or ScanType; `fallback` when the key is absent. */
export function requireEnum<T extends string>(
  body: Record<string, unknown>,
  key: string,
  allowed: readonly T[],
  fallback?: T,
): T {
  const v = body[key];
  if ((v === undefined || v === null) && fallback !== undefined) return fallback;
  const s = requireString(body, key);
  const hit = allowed.find((a) => a === s);
  if (!hit) throw new MdeError(400, 'InvalidInput', `Invalid input ${key}: ${s}. Allowed values: ${allowed.join(', ')}`);
  return hit;
}

/** Parses a request body as a JSON object; anything else is MDE's InvalidRequestBody. */
export function parseJsonObject(raw: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new MdeError(400, 'InvalidRequestBody', 'Request body is incorrect');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new MdeError(400, 'InvalidRequestBody', 'Request body is incorrect');
  }
  return v as Record<string, unknown>;
}
