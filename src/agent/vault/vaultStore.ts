// What every vault operation shares: the directory layout, the keys, the journal, and authenticated access
// to an item's metadata and content key.
//
// Layout:  <dir>/<id>.data   content, AES-256-GCM under a per-item key (itemCrypto.ts)
//          <dir>/<id>.meta   authenticated metadata, incl. the item key wrapped by the device key
//          <dir>/tmp-<id>    an item being written
//          <dir>/journal/    one entry per operation in flight (journal.ts)
import { existsSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { posix } from 'node:path';
import { ensurePrivateDir } from '../privateDir.ts';
import { decryptItem, unwrapItemKey } from './itemCrypto.ts';
import type { ItemMetadata } from './itemMetadata.ts';
import { readMetadata, writeMetadata } from './itemMetadata.ts';
import { ITEM_ID_RE, Journal } from './journal.ts';
import type { VaultKeys } from './vaultKey.ts';

export class VaultError extends Error {
  constructor(
    message: string,
    readonly code: 'NotFound' | 'InvalidInput' | 'Conflict' | 'Integrity' | 'Io' = 'Io',
  ) {
    super(message);
    this.name = 'VaultError';
  }
}

export const errText = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException;
  if (!(e instanceof Error)) return String(err);
  return e.code && !e.message.startsWith(e.code) ? `${e.code}: ${e.message}` : e.message;
};

/** The identity of one version of a file, as decimal strings (how the journal and metadata keep it). */
export interface FileIdentityStrings {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
}

export function identityStrings(st: BigIntStats): FileIdentityStrings {
  return { dev: String(st.dev), ino: String(st.ino), size: String(st.size), mtimeNs: String(st.mtimeNs) };
}

/** Same file, same content version. ctime is not compared: clearing +i and unlinking siblings change it. */
export function matchesIdentity(st: BigIntStats, id: FileIdentityStrings): boolean {
  return String(st.dev) === id.dev && String(st.ino) === id.ino && String(st.size) === id.size && String(st.mtimeNs) === id.mtimeNs;
}

export class VaultStore {
  readonly journal: Journal;

  constructor(
    readonly dir: string,
    readonly keys: VaultKeys,
  ) {
    this.journal = new Journal(ensurePrivateDir(posix.join(dir, 'journal')));
  }

  dataPath(id: string): string {
    return posix.join(this.dir, `${id}.data`);
  }

  metaPath(id: string): string {
    return posix.join(this.dir, `${id}.meta`);
  }

  tmpPath(id: string): string {
    return posix.join(this.dir, `tmp-${id}`);
  }

  checkId(id: string): string {
    if (typeof id !== 'string' || !ITEM_ID_RE.test(id)) throw new VaultError(`invalid vault item id: ${String(id)}`, 'InvalidInput');
    return id;
  }

  /** Authenticated metadata of one item. */
  get(itemId: string): ItemMetadata {
    const id = this.checkId(itemId);
    if (!existsSync(this.metaPath(id))) throw new VaultError(`vault item ${id} not found`, 'NotFound');
    try {
      return readMetadata(this.metaPath(id), this.keys.mac, id);
    } catch (err) {
      throw new VaultError(errText(err), 'Integrity');
    }
  }

  writeMeta(meta: ItemMetadata): void {
    writeMetadata(this.metaPath(meta.id), this.keys.mac, meta);
  }

  itemKey(meta: ItemMetadata): Buffer {
    try {
      return unwrapItemKey(this.keys.wrap, meta.id, meta.wrappedKey);
    } catch {
      throw new VaultError(`vault item ${meta.id}: the item key does not unwrap under this device's vault key`, 'Integrity');
    }
  }

  /** Decrypts and hashes an item without keeping it: true when it is intact and matches its SHA-1/SHA-256. */
  verify(itemId: string): boolean {
    const meta = this.get(itemId);
    try {
      const d = decryptItem(this.dataPath(meta.id), this.itemKey(meta), meta.id, () => {});
      return d.sha1 === meta.sha1 && d.sha256 === meta.sha256 && d.size === meta.size;
    } catch {
      return false;
    }
  }
}
