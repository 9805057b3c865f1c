// Restoring a vault item: decrypt next to the target, verify SHA-1 and SHA-256 (and the GCM tag) before
// anything is renamed into place, then owner, mode, xattrs, nanosecond times, hard links and +i/+a.
import { closeSync, constants, fchmodSync, fchownSync, fsyncSync, futimesSync, linkSync, lstatSync, openSync, renameSync, unlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { hashFile } from '../hashIndex/hashFile.ts';
import { readRemovalFlags, setRemovalFlags } from '../platform/linux/fileFlags.ts';
import { applyXattrsAndTimes } from '../platform/linux/xattrsAndTimes.ts';
import { fsyncDir, writeAll } from './durable.ts';
import { decryptItem } from './itemCrypto.ts';
import type { ItemMetadata } from './itemMetadata.ts';
import type { VaultStore } from './vaultStore.ts';
import { VaultError, errText } from './vaultStore.ts';

export interface RestoreOptions {
  /** Restore somewhere else than the original path. */
  destinationPath?: string;
  /** Replace a different file that now sits at the destination. */
  overwrite?: boolean;
}

export interface RestoreOutcome {
  itemId: string;
  path: string;
  sha1: string;
  /** Other hard-link names re-created. */
  links: string[];
  /** Things that could not be put back exactly (xattrs, flags, ns times), or "already present". */
  notes: string[];
}

/** Puts an item back (see RestoreOptions), verified by hash, with owner, mode, times, xattrs, flags, links. */
export function restoreItem(store: VaultStore, itemId: string, opts: RestoreOptions = {}): RestoreOutcome {
  const meta = store.get(itemId);
  const id = meta.id;
  if (meta.state === 'purged') throw new VaultError(`vault item ${id} was purged; nothing to restore`, 'NotFound');
  if (meta.state === 'restored') throw new VaultError(`vault item ${id} was already restored to ${meta.restoredTo}`, 'Conflict');
  const dest = opts.destinationPath;
  if (dest !== undefined && (typeof dest !== 'string' || !posix.isAbsolute(dest) || dest.includes('\0'))) {
    throw new VaultError(`destinationPath must be an absolute path: ${String(dest)}`, 'InvalidInput');
  }
  if (dest === undefined && (meta.memfd || !meta.originalPath.startsWith('/'))) {
    throw new VaultError(`vault item ${id} came from ${meta.originalPath}, which is not a path on disk; give a destinationPath`, 'InvalidInput');
  }
  if (dest === undefined && meta.namespace) {
    throw new VaultError(`vault item ${id} came from another mount namespace (${meta.namespace}); give a destinationPath`, 'InvalidInput');
  }
  const target = posix.normalize(dest ?? meta.originalPath);
  if (target.endsWith('/')) throw new VaultError(`destination ${target} names a directory`, 'InvalidInput');
  const dir = posix.dirname(target);
  try {
    if (!lstatSync(dir).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new VaultError(`cannot restore to ${target}: directory ${dir} does not exist`, 'Conflict');
  }
  const notes: string[] = [];

  let existing: BigIntStats | null = null;
  try {
    existing = lstatSync(target, { bigint: true });
  } catch {
    existing = null;
  }
  if (existing) {
    if (existing.isFile() && hashFile(target).sha1 === meta.sha1) {
      notes.push('an identical file was already present; left as is');
      markRestored(store, meta, target, notes);
      return { itemId: id, path: target, sha1: meta.sha1, links: [], notes };
    }
    if (!opts.overwrite) {
      throw new VaultError(`cannot restore to ${target}: a different file exists there (pass overwrite to replace it)`, 'Conflict');
    }
    if (existing.isDirectory()) throw new VaultError(`cannot restore to ${target}: it is a directory`, 'Conflict');
  }

  const tmpPath = posix.join(dir, `.tourniquet-restore-${id}-${randomBytes(4).toString('hex')}`);
  store.journal.write({ op: 'restore', id, startedAt: new Date().toISOString(), tmpPath, target });
  const fd = openSync(tmpPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    let digest;
    try {
      digest = decryptItem(store.dataPath(id), store.itemKey(meta), id, (c) => writeAll(fd, c));
    } catch (err) {
      throw new VaultError(`vault item ${id} failed to decrypt: ${errText(err)}`, 'Integrity');
    }
    if (digest.sha1 !== meta.sha1 || digest.sha256 !== meta.sha256 || digest.size !== meta.size) {
      throw new VaultError(`vault item ${id} decrypted to SHA-1 ${digest.sha1}, expected ${meta.sha1}`, 'Integrity');
    }
    // chown before chmod: chown clears set-uid/set-gid bits.
    fchownSync(fd, meta.uid, meta.gid);
    fchmodSync(fd, meta.mode & 0o7777);
    const times = { atimeNs: BigInt(meta.atimeNs), mtimeNs: BigInt(meta.mtimeNs) };
    const applied = applyXattrsAndTimes(fd, meta.xattrs.captured ? meta.xattrs.values : {}, times);
    if (!applied || !applied.exactTimes) {
      futimesSync(fd, Number(times.atimeNs) / 1e9, Number(times.mtimeNs) / 1e9);
      notes.push('timestamps restored with microsecond precision (no system python3)');
    }
    if (applied) notes.push(...applied.errors.map((e) => `xattr not restored: ${e}`));
    if (!meta.xattrs.captured) notes.push(`extended attributes were not captured at quarantine: ${meta.xattrs.reason}`);
    else if (!applied && Object.keys(meta.xattrs.values).length > 0) notes.push('extended attributes not restored (no system python3)');
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmpPath);
    } catch {
      // already gone
    }
    store.journal.remove(id, 'restore');
    throw err;
  }
  closeSync(fd);
  if (existing && opts.overwrite) {
    try {
      const f = readRemovalFlags(target);
      if (f.immutable || f.appendOnly) setRemovalFlags(target, f, false);
    } catch {
      // rename below reports EPERM
    }
  }
  try {
    renameSync(tmpPath, target);
  } catch (err) {
    unlinkSync(tmpPath);
    store.journal.remove(id, 'restore');
    throw new VaultError(`cannot restore to ${target}: ${errText(err)}`, 'Io');
  }
  fsyncDir(dir);

  // Hard links first: an immutable inode refuses new links.
  const links: string[] = [];
  if (dest === undefined) {
    for (const p of meta.paths) {
      if (!p.removed || p.path === target) continue;
      try {
        linkSync(target, p.path);
        fsyncDir(posix.dirname(p.path));
        links.push(p.path);
      } catch (err) {
        notes.push(`hard link ${p.path} not re-created: ${errText(err)}`);
      }
    }
  }
  if (meta.flags.immutable || meta.flags.appendOnly) {
    try {
      setRemovalFlags(target, meta.flags, true);
    } catch (err) {
      notes.push(`immutable/append-only flag not restored: ${errText(err)}`);
    }
  }
  markRestored(store, meta, target, notes);
  store.journal.remove(id, 'restore');
  return { itemId: id, path: target, sha1: meta.sha1, links, notes };
}

export function markRestored(store: VaultStore, meta: ItemMetadata, target: string, notes: string[]): void {
  meta.state = 'restored';
  meta.restoredAt = new Date().toISOString();
  meta.restoredTo = target;
  if (notes.length > 0) meta.restoreNotes = notes;
  store.writeMeta(meta);
}
