// Client secrets: generated Entra-style, stored only as scrypt hashes, checked in constant time.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { ExpiringLru } from './expiringLru.ts';

const SCRYPT_N = 2 ** 15;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;

// Stored parameters are bounded so that a corrupted or hostile row cannot make one check eat the CPU or memory.
const MAX_LOG2_N = 20;
const MIN_LOG2_N = 10;
const MAX_R = 32;
const MAX_P = 16;

function scryptAsync(secret: string, salt: Buffer, keylen: number, N: number, r: number, p: number): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; Node's default ceiling (32 MiB) is exactly what N=2^15, r=8 needs, so leave headroom.
  const maxmem = 128 * N * r * p + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, keylen, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** `scrypt$N$r$p$saltB64$hashB64` */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await scryptAsync(secret, salt, HASH_BYTES, SCRYPT_N, SCRYPT_R, SCRYPT_P);
  return `scrypt$${SCRYPT_N}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

function parseStoredHash(stored: unknown): ParsedHash | null {
  if (typeof stored !== 'string' || stored.length > 1024) return null;
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [, nText, rText, pText, saltText, hashText] = parts as [string, string, string, string, string, string];
  if (!/^\d{1,8}$/.test(nText) || !/^\d{1,3}$/.test(rText) || !/^\d{1,3}$/.test(pText)) return null;
  const N = Number(nText);
  const r = Number(rText);
  const p = Number(pText);
  const log2N = Math.log2(N);
  if (!Number.isInteger(log2N) || log2N < MIN_LOG2_N || log2N > MAX_LOG2_N) return null;
  if (r < 1 || r > MAX_R || p < 1 || p > MAX_P) return null;
  if (!B64.test(saltText) || !B64.test(hashText)) return null;
  const salt = Buffer.from(saltText, 'base64');
  const hash = Buffer.from(hashText, 'base64');
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return null;
  return { N, r, p, salt, hash };
}

/** True only when `secret` matches `stored`; malformed stored values and odd inputs simply yield false. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  try {
    if (typeof secret !== 'string' || secret.length === 0 || secret.length > 1024) return false;
    const parsed = parseStoredHash(stored);
    if (!parsed) return false;
    const candidate = await scryptAsync(secret, parsed.salt, parsed.hash.length, parsed.N, parsed.r, parsed.p);
    return timingSafeEqual(candidate, parsed.hash);
  } catch {
    return false;
  }
}

// Entra secrets look like `abC8Q~` + 34 more characters (40 in all) drawn from a URL-safe alphabet.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** 40 characters, 38 of them uniformly random over 64 symbols: 228 bits. */
export function newClientSecret(): string {
  const bytes = randomBytes(38);
  // 256 is a multiple of 64, so masking keeps every symbol equally likely.
  const chars = Array.from(bytes, (b) => ALPHABET[b & 63]!);
  return `${chars.slice(0, 4).join('')}Q~${chars.slice(4).join('')}`;
}

export interface SecretCheckerOptions {
  /** How long a successful check is remembered. */
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

/**
 * Client-secret checks for the token endpoint. scrypt costs tens of milliseconds by design, so a burst of token
 * requests from one client must not run it hundreds of times: successes are remembered briefly (keyed by a hash
 * of client id, secret and stored hash, so a changed secret invalidates the entry), and concurrent checks of the
 * same input share one computation. Failures are never remembered.
 */
export class SecretChecker {
  private readonly ok: ExpiringLru<string, true>;
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: SecretCheckerOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.ok = new ExpiringLru(opts.maxEntries ?? 10_000);
    this.now = opts.now ?? Date.now;
  }

  async check(clientId: string, secret: string, stored: string): Promise<boolean> {
    const key = createHash('sha256').update(clientId).update('\0').update(secret).update('\0').update(stored).digest('base64');
    if (this.ok.get(key, this.now())) return true;
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const run = verifySecret(secret, stored).then((matches) => {
      if (matches) this.ok.set(key, true, this.now() + this.ttlMs);
      return matches;
    });
    this.inFlight.set(key, run);
    try {
      return await run;
    } finally {
      this.inFlight.delete(key);
    }
  }
}
