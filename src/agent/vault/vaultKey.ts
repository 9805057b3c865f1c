// The device vault key: 32 random bytes in <stateDir>/vault.key (0600, root-owned), created exactly once.
// Every item's content key is wrapped by a key derived from it, and item metadata is authenticated by
// another derived key, so the two uses never share key material.
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, linkSync, openSync, readSync, unlinkSync } from 'node:fs';
import { hkdfSync, randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { fsyncDir, writeAll } from './durable.ts';

export const VAULT_KEY_BYTES = 32;

export interface VaultKeys {
  /** AES-256-GCM key that wraps per-item content keys. */
  wrap: Buffer;
  /** HMAC-SHA256 key that authenticates item metadata. */
  mac: Buffer;
  /** Short public fingerprint (for logs and for detecting a swapped key). */
  fingerprint: string;
}

function derive(master: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `tourniquet-vault/${info}`, 32));
}

export function deriveVaultKeys(master: Buffer): VaultKeys {
  return {
    wrap: derive(master, 'wrap-v1'),
    mac: derive(master, 'meta-mac-v1'),
    fingerprint: derive(master, 'fingerprint-v1').subarray(0, 8).toString('hex'),
  };
}

function readExisting(file: string): Buffer {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`vault key ${file} is not a regular file`);
    const uid = process.geteuid?.() ?? 0;
    if (st.uid !== uid) throw new Error(`vault key ${file} is owned by uid ${st.uid}, expected ${uid}`);
    if (st.size !== VAULT_KEY_BYTES) {
      // Never regenerate over a damaged key: every existing item would become unreadable.
      throw new Error(`vault key ${file} has ${st.size} bytes, expected ${VAULT_KEY_BYTES}; refusing to use or replace it`);
    }
    if ((st.mode & 0o077) !== 0) fchmodSync(fd, 0o600);
    const key = Buffer.alloc(VAULT_KEY_BYTES);
    let off = 0;
    while (off < VAULT_KEY_BYTES) {
      const n = readSync(fd, key, off, VAULT_KEY_BYTES - off, off);
      if (n === 0) throw new Error(`vault key ${file} is truncated`);
      off += n;
    }
    return key;
  } finally {
    closeSync(fd);
  }
}

/**
 * Loads the key, creating it on first use. Creation writes a complete temp file and hard-links it into
 * place (link fails if the name exists), so no crash or race can leave a short or second key behind.
 */
export function loadOrCreateVaultKey(file: string): Buffer {
  try {
    return readExisting(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const dir = posix.dirname(file);
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeAll(fd, randomBytes(VAULT_KEY_BYTES));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      unlinkSync(tmp);
      throw err;
    }
  }
  unlinkSync(tmp);
  fsyncDir(dir);
  return readExisting(file);
}
