// The RS256 keys that sign our access tokens. They live in the store so every node signs and verifies with the
// same set; each node keeps a copy in memory and re-reads it on a timer to see other nodes' rotations.
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, SignJWT, type JWK, type JWTPayload } from 'jose';
import { timestampToMillis } from '../../core/time.ts';
import type { SigningKeyRecord, Store } from '../../store/store.ts';
import { nowTimestamp } from '../clock.ts';

export interface SigningKeysOptions {
  /** Lifetime of the tokens we sign: a retired key keeps verifying for this long (plus margin). Default 3599. */
  tokenLifetimeSec?: number;
  /** How often to re-read the key set from the store; 0 disables the timer. Default 60 000. */
  refreshMs?: number;
}

/** The public half of a signing key as published in the JWKS. */
export interface PublicSigningJwk {
  kty: 'RSA';
  use: 'sig';
  kid: string;
  n: string;
  e: string;
  alg: 'RS256';
}

interface LoadedKey {
  record: SigningKeyRecord;
  publicKey: KeyObject;
  privateKey: KeyObject | null;
  publicJwk: PublicSigningJwk;
  /** Epoch ms after which the key no longer verifies; Infinity while active. */
  verifiesUntilMs: number;
}

/** Extra time a retired key keeps verifying beyond the token lifetime: clock skew plus other nodes' refresh lag. */
const RETIREMENT_MARGIN_SEC = 15 * 60;
/** On an unknown kid, re-read the store at most this often (a rotation on another node may have just happened). */
const MISS_REFRESH_MIN_INTERVAL_MS = 1_000;

function newestFirst(a: SigningKeyRecord, b: SigningKeyRecord): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.kid < b.kid ? 1 : a.kid > b.kid ? -1 : 0;
}

async function generateSigningKeyRecord(): Promise<SigningKeyRecord> {
  const { publicKey, privateKey } = await new Promise<{ publicKey: KeyObject; privateKey: KeyObject }>((resolve, reject) =>
    generateKeyPair('rsa', { modulusLength: 2048, publicExponent: 0x10001 }, (err, pub, priv) =>
      err ? reject(err) : resolve({ publicKey: pub, privateKey: priv }),
    ),
  );
  const jwk = publicKey.export({ format: 'jwk' }) as JWK;
  const publicJwk = { kty: 'RSA', n: jwk.n!, e: jwk.e! };
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  return {
    kid,
    alg: 'RS256',
    publicJwk: JSON.stringify(publicJwk),
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    createdAt: nowTimestamp(),
    status: 'active',
    retiredAt: null,
  };
}

export class SigningKeys {
  private keys = new Map<string, LoadedKey>();
  private signer: LoadedKey | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastRefreshMs = 0;
  private refreshing: Promise<void> | null = null;

  private constructor(
    private readonly store: Store,
    private readonly opts: SigningKeysOptions,
  ) {}

  /** Loads the key set, creating the first active key when the store has none. */
  static async load(store: Store, opts: SigningKeysOptions): Promise<SigningKeys> {
    const keys = new SigningKeys(store, opts);
    await keys.refresh();
    const every = opts.refreshMs ?? 60_000;
    if (every > 0) {
      keys.timer = setInterval(() => {
        keys.refresh().catch(() => {
          // A store hiccup keeps the last good key set; the next tick tries again.
        });
      }, every);
      keys.timer.unref();
    }
    return keys;
  }

  /** Re-reads the store; ensures an active key exists (another node may have retired the last one mid-rotation). */
  refresh(): Promise<void> {
    // Concurrent callers share one read so a burst of unknown kids cannot stampede the store.
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    let records = await this.store.listSigningKeys();
    if (!records.some((r) => r.status === 'active')) {
      // If nodes race here, the store keeps whichever active keys it accepts; we all re-read and use those.
      await this.store.insertSigningKey(await generateSigningKeyRecord());
      records = await this.store.listSigningKeys();
    }
    this.install(records);
    this.lastRefreshMs = Date.now();
  }

  private install(records: SigningKeyRecord[]): void {
    const next = new Map<string, LoadedKey>();
    const nowMs = Date.now();
    for (const record of [...records].sort(newestFirst)) {
      const verifiesUntilMs =
        record.status === 'active'
          ? Infinity
          : timestampToMillis(record.retiredAt ?? record.createdAt) + ((this.opts.tokenLifetimeSec ?? 3599) + RETIREMENT_MARGIN_SEC) * 1000;
      if (verifiesUntilMs <= nowMs) continue;
      const previous = this.keys.get(record.kid);
      if (previous && previous.record.status === record.status) {
        next.set(record.kid, { ...previous, record, verifiesUntilMs });
        continue;
      }
      try {
        const parsed = JSON.parse(record.publicJwk) as JWK;
        if (parsed.kty !== 'RSA' || typeof parsed.n !== 'string' || typeof parsed.e !== 'string') continue;
        const publicKey = createPublicKey({ key: { kty: 'RSA', n: parsed.n, e: parsed.e }, format: 'jwk' });
        next.set(record.kid, {
          record,
          publicKey,
          privateKey: record.status === 'active' ? createPrivateKey(record.privatePem) : null,
          publicJwk: { kty: 'RSA', use: 'sig', kid: record.kid, n: parsed.n, e: parsed.e, alg: 'RS256' },
          verifiesUntilMs,
        });
      } catch {
        // An unreadable row must not take token issuance down; it is simply not used.
      }
    }
    const signer = [...next.values()].find((k) => k.record.status === 'active' && k.privateKey) ?? null;
    if (!signer) throw new Error('no usable active signing key in the store');
    this.keys = next;
    this.signer = signer;
  }

  /** The kid new tokens are signed with. */
  get currentKid(): string {
    return this.requireSigner().record.kid;
  }

  private requireSigner(): LoadedKey {
    if (!this.signer) throw new Error('signing keys not loaded');
    return this.signer;
  }

  /**
   * Signs with the newest active key. `iat`, `nbf` and `exp` follow `aud` and `iss` (Entra's claim order) unless the
   * caller supplies them.
   */
  async sign(claims: JWTPayload, lifetimeSec: number, nowSec = Math.floor(Date.now() / 1000)): Promise<string> {
    const signer = this.requireSigner();
    const { aud, iss, ...rest } = claims;
    const payload: JWTPayload = {};
    if (aud !== undefined) payload.aud = aud;
    if (iss !== undefined) payload.iss = iss;
    payload.iat = nowSec;
    payload.nbf = nowSec;
    payload.exp = nowSec + lifetimeSec;
    Object.assign(payload, rest);
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: signer.record.kid })
      .sign(signer.privateKey!);
  }

  /** Public key for `kid` if it is active or recently retired. */
  verificationKey(kid: string): KeyObject | null {
    const key = this.keys.get(kid);
    if (!key || key.verifiesUntilMs <= Date.now()) return null;
    return key.publicKey;
  }

  /** Like verificationKey, but on a miss re-reads the store (rate-limited) in case another node just rotated. */
  async findVerificationKey(kid: string): Promise<KeyObject | null> {
    const hit = this.verificationKey(kid);
    if (hit) return hit;
    if (Date.now() - this.lastRefreshMs < MISS_REFRESH_MIN_INTERVAL_MS) return null;
    try {
      await this.refresh();
    } catch {
      return null;
    }
    return this.verificationKey(kid);
  }

  /** JWKS document: active and still-verifying retired keys, public parts only. */
  jwks(): { keys: PublicSigningJwk[] } {
    const nowMs = Date.now();
    return { keys: [...this.keys.values()].filter((k) => k.verifiesUntilMs > nowMs).map((k) => ({ ...k.publicJwk })) };
  }

  /** A fresh active key; the previous ones retire and keep verifying until their last token has expired. */
  async rotate(): Promise<string> {
    const fresh = await generateSigningKeyRecord();
    const at = nowTimestamp();
    const current = (await this.store.listSigningKeys()).filter((r) => r.status === 'active');
    // Retire first: the store refuses a second active key, so inserting first would be silently dropped.
    for (const record of current) await this.store.retireSigningKey(record.kid, at);
    await this.store.insertSigningKey(fresh);
    await this.refresh();
    return this.currentKid;
  }

  /** Stops the refresh timer. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
