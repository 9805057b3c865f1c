// The quarantine vault: a root-only directory of encrypted, authenticated items (endpoint-agent.md §3.8),
// opened with the device key. This facade is what the executor and the agent use; the work is done in
// quarantineFile.ts, restoreItem.ts and recoverVault.ts over a shared VaultStore (vaultStore.ts).
import { existsSync, readdirSync } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { ensurePrivateDir } from '../privateDir.ts';
import { unlinkDurable } from './durable.ts';
import { decryptItem, decryptItemChunks } from './itemCrypto.ts';
import type { ItemMetadata, ItemState } from './itemMetadata.ts';
import { readMetadata } from './itemMetadata.ts';
import type { QuarantineOutcome, QuarantineRequest } from './quarantineFile.ts';
import { quarantineFile } from './quarantineFile.ts';
import type { RecoveryReport } from './recoverVault.ts';
import { recoverVault } from './recoverVault.ts';
import type { RestoreOptions, RestoreOutcome } from './restoreItem.ts';
import { restoreItem } from './restoreItem.ts';
import { deriveVaultKeys, loadOrCreateVaultKey } from './vaultKey.ts';
import { VaultError, VaultStore, errText } from './vaultStore.ts';

export { VaultError } from './vaultStore.ts';
export type { QuarantineOutcome, QuarantineRequest, QuarantineStep } from './quarantineFile.ts';
export type { RecoveryReport } from './recoverVault.ts';
export type { RestoreOptions, RestoreOutcome } from './restoreItem.ts';

export interface VaultOptions {
  /** The vault directory (created 0700). */
  dir: string;
  /** The device vault key file (created 0600 on first use). */
  keyFile: string;
}

export interface VaultItemSummary {
  itemId: string;
  actionId: string | null;
  sha1: string;
  sha256: string;
  originalPath: string;
  paths: string[];
  size: number;
  quarantinedAt: string;
  state: ItemState;
  restoredAt: string | null;
}

export class Vault {
  private readonly store: VaultStore;

  private constructor(store: VaultStore) {
    this.store = store;
  }

  /** Opens (creating if needed) the vault and its device key. Call recover() before using it. */
  static open(opts: VaultOptions): Vault {
    const dir = ensurePrivateDir(opts.dir);
    ensurePrivateDir(posix.dirname(posix.resolve(opts.keyFile)));
    return new Vault(new VaultStore(dir, deriveVaultKeys(loadOrCreateVaultKey(opts.keyFile))));
  }

  get dir(): string {
    return this.store.dir;
  }

  get keyFingerprint(): string {
    return this.store.keys.fingerprint;
  }

  /** Authenticated metadata of one item. */
  get(itemId: string): ItemMetadata {
    return this.store.get(itemId);
  }

  /** Inventory of every authentic item (tampered or foreign items are listed by audit()). */
  list(): VaultItemSummary[] {
    const out: VaultItemSummary[] = [];
    for (const name of readdirSync(this.dir)) {
      const m = /^([0-9a-f]{32})\.meta$/.exec(name);
      if (!m) continue;
      let meta: ItemMetadata;
      try {
        meta = readMetadata(posix.join(this.dir, name), this.store.keys.mac, m[1]!);
      } catch {
        continue;
      }
      out.push({
        itemId: meta.id,
        actionId: meta.actionId,
        sha1: meta.sha1,
        sha256: meta.sha256,
        originalPath: meta.originalPath,
        paths: meta.paths.map((p) => p.path),
        size: meta.size,
        quarantinedAt: meta.quarantinedAt,
        state: meta.state,
        restoredAt: meta.restoredAt ?? null,
      });
    }
    return out.sort((a, b) => a.quarantinedAt.localeCompare(b.quarantinedAt) || a.itemId.localeCompare(b.itemId));
  }

  /** Items whose metadata fails authentication or whose data file is missing. */
  audit(): { itemId: string; problem: string }[] {
    const out: { itemId: string; problem: string }[] = [];
    for (const name of readdirSync(this.dir)) {
      const m = /^([0-9a-f]{32})\.meta$/.exec(name);
      if (!m) continue;
      try {
        const meta = readMetadata(posix.join(this.dir, name), this.store.keys.mac, m[1]!);
        if (meta.state !== 'purged' && !existsSync(this.store.dataPath(meta.id))) out.push({ itemId: meta.id, problem: 'data file missing' });
      } catch (err) {
        out.push({ itemId: m[1]!, problem: errText(err) });
      }
    }
    return out;
  }

  quarantine(req: QuarantineRequest): QuarantineOutcome {
    return quarantineFile(this.store, req);
  }

  restore(itemId: string, opts: RestoreOptions = {}): RestoreOutcome {
    return restoreItem(this.store, itemId, opts);
  }

  recover(): RecoveryReport {
    return recoverVault(this.store);
  }

  /** Decrypts and hashes an item without keeping it: true when it is intact and matches its SHA-1/SHA-256. */
  verify(itemId: string): boolean {
    return this.store.verify(itemId);
  }

  /** The whole plaintext (for verification and small files). Throws if the item fails authentication. */
  decryptToBuffer(itemId: string): Buffer {
    const meta = this.store.get(itemId);
    if (meta.state === 'purged') throw new VaultError(`vault item ${meta.id} was purged`, 'NotFound');
    const parts: Buffer[] = [];
    try {
      decryptItem(this.store.dataPath(meta.id), this.store.itemKey(meta), meta.id, (c) => parts.push(Buffer.from(c)));
    } catch (err) {
      if (err instanceof VaultError) throw err;
      throw new VaultError(`vault item ${meta.id} failed to decrypt: ${errText(err)}`, 'Integrity');
    }
    return Buffer.concat(parts);
  }

  /** A stream of the plaintext; it errors at the end if the item fails authentication. */
  decryptToStream(itemId: string): Readable {
    const meta = this.store.get(itemId);
    if (meta.state === 'purged') throw new VaultError(`vault item ${meta.id} was purged`, 'NotFound');
    return Readable.from(decryptItemChunks(this.store.dataPath(meta.id), this.store.itemKey(meta), meta.id));
  }

  /** Deletes an item's content for good, keeping its metadata for audit. */
  purge(itemId: string): void {
    const meta = this.store.get(itemId);
    if (meta.state === 'purged') return;
    unlinkDurable(this.store.dataPath(meta.id));
    meta.state = 'purged';
    meta.purgedAt = new Date().toISOString();
    this.store.writeMeta(meta);
  }
}
