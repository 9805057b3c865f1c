// Ed25519 device keys: generation, SPKI export, and the two signatures of protocol v1 (hello and result).
// The signing inputs themselves are defined in v1.ts so every implementation signs exactly the same bytes.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { helloSigningInput, resultSigningInput, type ActionResultDetail } from './v1.ts';

export interface DeviceKeyPair {
  privateKey: KeyObject;
  /** SPKI DER, base64: what enrollment sends and what the machine id is derived from. */
  publicKey: string;
}

/** PKCS#8 prefix of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function generateDeviceKey(): DeviceKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey: exportPublicKey(publicKey) };
}

/** A key derived from 32 seed bytes: reproducible identities for simulated devices (never for real agents). */
export function deviceKeyFromSeed(seed: Buffer): DeviceKeyPair {
  if (seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  return { privateKey, publicKey: exportPublicKey(createPublicKey(privateKey)) };
}

export function exportPublicKey(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ format: 'der', type: 'spki' }).toString('base64');
}

/** The public key in its canonical base64 form, or null when `b64` is not an Ed25519 SPKI key. */
export function importPublicKey(b64: string): { key: KeyObject; canonical: string } | null {
  if (b64.length > 256 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return null;
  try {
    const key = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'ed25519') return null;
    return { key, canonical: exportPublicKey(key) };
  } catch {
    return null;
  }
}

export function exportPrivateKeyPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function importPrivateKeyPem(pem: string): DeviceKeyPair {
  const privateKey = createPrivateKey({ key: pem, format: 'pem' });
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 private key');
  return { privateKey, publicKey: exportPublicKey(privateKey) };
}

/**
 * JSON with object keys sorted at every level and no whitespace: the form of `detail` that result signatures cover,
 * so signer and verifier agree whatever order their JSON libraries write keys in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    return s === undefined ? 'null' : s;
  }
  if (Array.isArray(value)) {
    return `[${value.map((v) => (v === undefined || typeof v === 'function' ? 'null' : canonicalJson(v))).join(',')}]`;
  }
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function') continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

export function signHello(privateKey: KeyObject, nonce: string, machineId: string): string {
  return sign(null, helloSigningInput(nonce, machineId), privateKey).toString('base64');
}

export function verifyHello(publicKey: KeyObject, nonce: string, machineId: string, signature: string): boolean {
  return verifySignature(publicKey, helloSigningInput(nonce, machineId), signature);
}

export interface SignableResult {
  actionId: string;
  outcome: 'Succeeded' | 'Failed';
  errorHResult: number;
  detail: ActionResultDetail;
}

function resultInput(machineId: string, r: SignableResult): Buffer {
  return resultSigningInput(machineId, r.actionId, r.outcome, r.errorHResult, canonicalJson(r.detail));
}

export function signResult(privateKey: KeyObject, machineId: string, r: SignableResult): string {
  return sign(null, resultInput(machineId, r), privateKey).toString('base64');
}

export function verifyResult(publicKey: KeyObject, machineId: string, r: SignableResult, signature: string): boolean {
  return verifySignature(publicKey, resultInput(machineId, r), signature);
}

function verifySignature(publicKey: KeyObject, data: Buffer, signature: string): boolean {
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, data, publicKey, sig);
  } catch {
    return false;
  }
}

/** 32 seed bytes from any label (simulator identities). */
export function seedBytes(label: string): Buffer {
  return createHash('sha256').update(label).digest();
}
