// The on-disk format of one vault item's content, and key wrapping.
//
//   <id>.data = "TQVAULT1" (8) | nonce (12) | AES-256-GCM ciphertext (size bytes) | tag (16)
//
// The content key is random per item; the id is the GCM additional data, so a data file moved under another
// item's name fails authentication. Encryption streams through a 1 MiB buffer and hashes the plaintext
// (SHA-1 + SHA-256) in the same pass, so a 100 MB file is never held in memory.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { writeAll } from './durable.ts';

export const MAGIC = Buffer.from('TQVAULT1', 'ascii');
const NONCE = 12;
const TAG = 16;
export const HEADER_BYTES = MAGIC.length + NONCE;
const CHUNK = 1024 * 1024;

export const contentAad = (id: string) => Buffer.from(`tourniquet-vault-content\n${id}`, 'utf8');
const wrapAad = (id: string) => Buffer.from(`tourniquet-vault-key\n${id}`, 'utf8');

export interface WrappedKey {
  nonce: string;
  ciphertext: string;
  tag: string;
}

export function newItemKey(): Buffer {
  return randomBytes(32);
}

export function wrapItemKey(wrapKey: Buffer, id: string, itemKey: Buffer): WrappedKey {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', wrapKey, nonce);
  c.setAAD(wrapAad(id));
  const ct = Buffer.concat([c.update(itemKey), c.final()]);
  return { nonce: nonce.toString('base64'), ciphertext: ct.toString('base64'), tag: c.getAuthTag().toString('base64') };
}

export function unwrapItemKey(wrapKey: Buffer, id: string, w: WrappedKey): Buffer {
  const d = createDecipheriv('aes-256-gcm', wrapKey, Buffer.from(w.nonce, 'base64'));
  d.setAAD(wrapAad(id));
  d.setAuthTag(Buffer.from(w.tag, 'base64'));
  return Buffer.concat([d.update(Buffer.from(w.ciphertext, 'base64')), d.final()]);
}

export interface StreamDigest {
  sha1: string;
  sha256: string;
  size: number;
}

/** Reads `srcFd` from its current offset to its end, writing the encrypted item to `dstFd`. */
export function encryptFdToFd(srcFd: number, dstFd: number, itemKey: Buffer, id: string): StreamDigest {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', itemKey, nonce);
  cipher.setAAD(contentAad(id));
  const h1 = createHash('sha1');
  const h2 = createHash('sha256');
  writeAll(dstFd, Buffer.concat([MAGIC, nonce]));
  const buf = Buffer.allocUnsafe(CHUNK);
  let size = 0;
  for (;;) {
    const n = readSync(srcFd, buf, 0, CHUNK, null);
    if (n === 0) break;
    const view = buf.subarray(0, n);
    h1.update(view);
    h2.update(view);
    writeAll(dstFd, cipher.update(view));
    size += n;
  }
  writeAll(dstFd, cipher.final());
  writeAll(dstFd, cipher.getAuthTag());
  return { sha1: h1.digest('hex'), sha256: h2.digest('hex'), size };
}

/** Header and tag of an item's data file; throws when the file is not a vault item. */
function openItem(dataPath: string): { fd: number; nonce: Buffer; tag: Buffer; size: number } {
  const fd = openSync(dataPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const total = fstatSync(fd).size;
    if (total < HEADER_BYTES + TAG) throw new Error(`vault item ${dataPath} is truncated`);
    const header = Buffer.alloc(HEADER_BYTES);
    readSync(fd, header, 0, HEADER_BYTES, 0);
    if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`vault item ${dataPath} has no vault header`);
    const tag = Buffer.alloc(TAG);
    readSync(fd, tag, 0, TAG, total - TAG);
    return { fd, nonce: header.subarray(MAGIC.length), tag, size: total - HEADER_BYTES - TAG };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Decrypts an item chunk by chunk, handing plaintext to `sink`. The GCM tag is checked at the end, so the
 * caller must not trust (rename into place, return) what it received until this returns without throwing.
 */
export function decryptItem(dataPath: string, itemKey: Buffer, id: string, sink: (chunk: Buffer) => void): StreamDigest {
  const item = openItem(dataPath);
  try {
    const d = createDecipheriv('aes-256-gcm', itemKey, item.nonce);
    d.setAAD(contentAad(id));
    d.setAuthTag(item.tag);
    const h1 = createHash('sha1');
    const h2 = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = HEADER_BYTES;
    const end = HEADER_BYTES + item.size;
    while (pos < end) {
      const n = readSync(item.fd, buf, 0, Math.min(CHUNK, end - pos), pos);
      if (n === 0) throw new Error(`vault item ${dataPath} ended early`);
      pos += n;
      const plain = d.update(buf.subarray(0, n));
      h1.update(plain);
      h2.update(plain);
      sink(plain);
    }
    const last = d.final();
    if (last.length > 0) {
      h1.update(last);
      h2.update(last);
      sink(last);
    }
    return { sha1: h1.digest('hex'), sha256: h2.digest('hex'), size: item.size };
  } finally {
    closeSync(item.fd);
  }
}

/** Async chunks of an item's plaintext; the stream fails at its end if authentication fails. */
export async function* decryptItemChunks(dataPath: string, itemKey: Buffer, id: string): AsyncGenerator<Buffer> {
  const item = openItem(dataPath);
  try {
    const d = createDecipheriv('aes-256-gcm', itemKey, item.nonce);
    d.setAAD(contentAad(id));
    d.setAuthTag(item.tag);
    let pos = HEADER_BYTES;
    const end = HEADER_BYTES + item.size;
    while (pos < end) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, end - pos));
      const n = readSync(item.fd, buf, 0, buf.length, pos);
      if (n === 0) throw new Error(`vault item ${dataPath} ended early`);
      pos += n;
      yield d.update(buf.subarray(0, n));
    }
    const last = d.final();
    if (last.length > 0) yield last;
  } finally {
    closeSync(item.fd);
  }
}

/** Canonical JSON: object keys sorted at every level, so the MAC does not depend on key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function macOf(macKey: Buffer, value: unknown): string {
  return createHmac('sha256', macKey).update(canonicalJson(value)).digest('hex');
}

export function macMatches(macKey: Buffer, value: unknown, mac: string): boolean {
  const want = Buffer.from(macOf(macKey, value), 'hex');
  const got = Buffer.from(mac, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}
