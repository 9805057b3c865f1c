// Quarantining one file into the vault (endpoint-agent.md §3.8). Order for one file (one inode, all its names):
//   journal → open source (O_NOFOLLOW) + fstat → encrypt into tmp-<id> (O_EXCL, 0600) while hashing →
//   fsync → verify SHA-1 and that the source did not change → rename to <id>.data → fsync dir →
//   write + fsync <id>.meta → remove each name (checking it still is the same file) → update meta → drop journal.
// Nothing touches the original before the metadata is durable, which is what makes recovery (recoverVault.ts)
// able to roll every interrupted quarantine either back or forward.
import { closeSync, constants, existsSync, fstatSync, fsyncSync, lstatSync, openSync, renameSync, statfsSync, unlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { isSha1 } from '../../core/validation.ts';
import { openReadNoAtime } from '../hashIndex/hashFile.ts';
import { readRemovalFlags, setRemovalFlags } from '../platform/linux/fileFlags.ts';
import type { RemovalFlags } from '../platform/linux/fileFlags.ts';
import { readXattrs } from '../platform/linux/xattrsAndTimes.ts';
import { fsyncDir, unlinkDurable } from './durable.ts';
import { encryptFdToFd, newItemKey, wrapItemKey } from './itemCrypto.ts';
import type { StreamDigest } from './itemCrypto.ts';
import type { ItemMetadata, ItemPath } from './itemMetadata.ts';
import { METADATA_FORMAT } from './itemMetadata.ts';
import type { FileIdentityStrings, VaultStore } from './vaultStore.ts';
import { errText, identityStrings, matchesIdentity } from './vaultStore.ts';

/** Points in a quarantine, in order; a test may stop the process at any of them. */
export type QuarantineStep =
  | 'journaled'
  | 'tmp-created'
  | 'encrypted'
  | 'data-stored'
  | 'meta-written'
  | 'name-removed'
  | 'meta-updated'
  | 'done';

export interface QuarantineRequest {
  /** Where the content is read from: a path, or a /proc link (set sourceViaProc) for deleted/memfd binaries. */
  source: string;
  sourceViaProc?: boolean;
  /** Names of the source's inode to remove once the item is safely stored; empty when none is left on disk. */
  paths: string[];
  /** The name a restore uses by default. */
  originalPath: string;
  expectedSha1: string;
  actionId: string | null;
  killedPids?: number[];
  deletedOnDisk?: boolean;
  memfd?: boolean;
  namespace?: string | null;
  onStep?: (step: QuarantineStep) => void;
}

export interface QuarantineOutcome {
  itemId: string | null;
  sha1: string | null;
  sha256: string | null;
  size: number;
  device: bigint | null;
  inode: bigint | null;
  /** Links the inode still has after removal: > 0 means a name outside `paths` still holds the content. */
  linksLeft: number | null;
  paths: ItemPath[];
  /** Set when nothing was quarantined (the content did not match, changed, or could not be stored). */
  error?: string;
}

function newItemId(): string {
  return randomBytes(16).toString('hex');
}

/** Quarantines one file (one inode and the names given for it); see the order at the top of this file. */
export function quarantineFile(store: VaultStore, req: QuarantineRequest): QuarantineOutcome {
  const step = req.onStep ?? (() => {});
  const expected = typeof req.expectedSha1 === 'string' ? req.expectedSha1.toLowerCase() : '';
  const fail = (error: string, partial: Partial<QuarantineOutcome> = {}): QuarantineOutcome => ({
    itemId: null,
    sha1: null,
    sha256: null,
    size: 0,
    device: null,
    inode: null,
    linksLeft: null,
    paths: req.paths.map((p) => ({ path: p, removed: false, reason: error })),
    error,
    ...partial,
  });
  if (!isSha1(expected)) return fail(`invalid SHA-1: ${req.expectedSha1}`);
  if (!req.source.startsWith('/') || req.paths.some((p) => !p.startsWith('/'))) return fail('paths must be absolute');

  let srcFd: number;
  try {
    srcFd = openReadNoAtime(req.source, constants.O_RDONLY | constants.O_NONBLOCK | (req.sourceViaProc ? 0 : constants.O_NOFOLLOW));
  } catch (err) {
    return fail(`cannot open ${req.source}: ${errText(err)}`);
  }
  try {
    return quarantineOpen(store, req, srcFd, expected, step, fail);
  } finally {
    closeSync(srcFd);
  }
}

function quarantineOpen(
  store: VaultStore,
  req: QuarantineRequest,
  srcFd: number,
  expected: string,
  step: (s: QuarantineStep) => void,
  fail: (error: string, partial?: Partial<QuarantineOutcome>) => QuarantineOutcome,
): QuarantineOutcome {
  const st0 = fstatSync(srcFd, { bigint: true });
  if (!st0.isFile()) return fail(`${req.source} is not a regular file`);
  const base = { size: Number(st0.size), device: st0.dev, inode: st0.ino };
  const identity = identityStrings(st0);

  // Only names that still are this very file are removed later; others are reported, never touched.
  const paths: ItemPath[] = [];
  for (const p of [...new Set(req.paths)]) {
    try {
      const l = lstatSync(p, { bigint: true });
      if (l.isFile() && matchesIdentity(l, identity)) paths.push({ path: p, removed: false });
      else paths.push({ path: p, removed: false, reason: 'no longer the matched file (replaced or modified)' });
    } catch (err) {
      paths.push({ path: p, removed: false, reason: `cannot stat: ${errText(err)}` });
    }
  }
  const removable = paths.filter((p) => p.reason === undefined).map((p) => p.path);
  if (req.paths.length > 0 && removable.length === 0) {
    return fail('the file changed or disappeared before it could be quarantined', { ...base, paths });
  }

  try {
    const fs = statfsSync(store.dir);
    const free = Number(fs.bavail) * Number(fs.bsize);
    if (free < Number(st0.size) + 1024 * 1024) return fail(`vault filesystem has ${free} bytes free, item needs ${st0.size}`, { ...base, paths });
  } catch {
    // statfs unsupported: the write itself will report ENOSPC
  }

  const flags: RemovalFlags = removable[0]
    ? readRemovalFlags(removable[0])
    : { immutable: false, appendOnly: false, captured: false, note: 'no name on disk' };
  const xattrs = readXattrs(srcFd);

  const id = newItemId();
  let meta: ItemMetadata;
  try {
    const stored = storeItem(store, req, srcFd, st0, identity, removable, flags, xattrs, id, expected, step);
    if ('error' in stored) return fail(stored.error, { ...base, paths });
    meta = stored.meta;
  } catch (err) {
    // Before the metadata exists the original was never touched: undo whatever part of the item exists.
    try {
      abandonItem(store, id);
    } catch {
      // the journal entry stays; recover() finishes the undo
    }
    return fail(`storing the content failed: ${errText(err)}`, { ...base, paths });
  }

  removeNames(meta, step);
  const removedCount = meta.paths.filter((p) => p.removed).length;
  try {
    if (removable.length > 0 && removedCount === 0) {
      // Nothing left the disk: keeping the item would leave the file twice. Undo it, meta first.
      const reason = meta.paths.map((p) => p.reason).find(Boolean) ?? 'could not remove the file';
      unlinkDurable(store.metaPath(id));
      unlinkDurable(store.dataPath(id));
      store.journal.remove(id, 'quarantine');
      return fail(`could not remove the original: ${reason}`, { ...base, sha1: meta.sha1, sha256: meta.sha256, paths: mergePaths(paths, meta.paths) });
    }
    store.writeMeta(meta);
    step('meta-updated');
    store.journal.remove(id, 'quarantine');
    step('done');
  } catch {
    // The item is complete and the names are handled; the journal entry stays so recover() settles the
    // metadata (it re-checks every name) at the next start.
  }
  const linksLeft = Number(fstatSync(srcFd, { bigint: true }).nlink);
  return { itemId: id, sha1: meta.sha1, sha256: meta.sha256, ...base, linksLeft, paths: mergePaths(paths, meta.paths) };
}

/**
 * Journal → encrypted temp file → verified → renamed into place → metadata: the part of a quarantine that
 * creates the item. Returns the metadata once it is durable, or an error when the content is not the one
 * expected (the caller then reports and nothing was kept). Throws on I/O failure.
 */
function storeItem(
  store: VaultStore,
  req: QuarantineRequest,
  srcFd: number,
  st0: BigIntStats,
  identity: FileIdentityStrings,
  removable: string[],
  flags: RemovalFlags,
  xattrs: ItemMetadata['xattrs'],
  id: string,
  expected: string,
  step: (s: QuarantineStep) => void,
): { meta: ItemMetadata } | { error: string } {
  store.journal.write({ op: 'quarantine', id, startedAt: new Date().toISOString(), paths: removable, identity });
  step('journaled');

  const tmp = store.tmpPath(id);
  const itemKey = newItemKey();
  const tmpFd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  step('tmp-created');
  let digest: StreamDigest;
  try {
    digest = encryptFdToFd(srcFd, tmpFd, itemKey, id);
    fsyncSync(tmpFd);
  } finally {
    closeSync(tmpFd);
  }
  step('encrypted');

  if (digest.sha1 !== expected) {
    abandonItem(store, id);
    return { error: `content SHA-1 is ${digest.sha1}, not ${expected}: the file changed after it was matched` };
  }
  const st1 = fstatSync(srcFd, { bigint: true });
  if (!matchesIdentity(st1, identity) || st1.ctimeNs !== st0.ctimeNs || BigInt(digest.size) !== st0.size) {
    abandonItem(store, id);
    return { error: 'the file changed while it was being read' };
  }

  renameSync(tmp, store.dataPath(id));
  fsyncDir(store.dir);
  step('data-stored');

  const meta: ItemMetadata = {
    format: METADATA_FORMAT,
    id,
    state: 'quarantined',
    actionId: req.actionId,
    sha1: digest.sha1,
    sha256: digest.sha256,
    size: digest.size,
    originalPath: req.originalPath,
    paths: removable.map((p) => ({ path: p, removed: false })),
    source: req.source,
    deletedOnDisk: req.deletedOnDisk ?? Number(st0.nlink) === 0,
    memfd: req.memfd ?? false,
    namespace: req.namespace ?? null,
    device: String(st0.dev),
    inode: String(st0.ino),
    nlink: Number(st0.nlink),
    mode: Number(st0.mode),
    uid: Number(st0.uid),
    gid: Number(st0.gid),
    atimeNs: String(st0.atimeNs),
    mtimeNs: String(st0.mtimeNs),
    ctimeNs: String(st0.ctimeNs),
    flags,
    xattrs,
    killedPids: [...new Set(req.killedPids ?? [])],
    quarantinedAt: new Date().toISOString(),
    wrappedKey: wrapItemKey(store.keys.wrap, id, itemKey),
  };
  store.writeMeta(meta);
  step('meta-written');
  return { meta };
}

/** Deletes everything of an item that never became complete (its originals were never touched). */
export function abandonItem(store: VaultStore, id: string): void {
  for (const p of [store.tmpPath(id), store.metaPath(id), store.dataPath(id)]) {
    try {
      unlinkSync(p);
    } catch {
      // absent
    }
  }
  fsyncDir(store.dir);
  store.journal.remove(id, 'quarantine');
}

/**
 * Removes every name in meta.paths not yet removed, each only if it still is the stored file. Clears
 * +i/+a first when the item recorded them, and puts them back on the inode if a name had to stay.
 */
export function removeNames(meta: ItemMetadata, step: (s: QuarantineStep) => void): void {
  const identity: FileIdentityStrings = { dev: meta.device, ino: meta.inode, size: String(meta.size), mtimeNs: meta.mtimeNs };
  const needsClear = meta.flags.immutable || meta.flags.appendOnly;
  let cleared = false;
  for (const entry of meta.paths) {
    if (entry.removed) continue;
    let st: BigIntStats;
    try {
      st = lstatSync(entry.path, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        entry.removed = true;
        entry.reason = 'already gone';
      } else {
        entry.reason = `cannot stat: ${errText(err)}`;
      }
      continue;
    }
    if (!st.isFile() || !matchesIdentity(st, identity)) {
      entry.reason = 'changed between hash and unlink (size, mtime or inode differ): left in place';
      continue;
    }
    try {
      if (needsClear && !cleared) {
        setRemovalFlags(entry.path, meta.flags, false);
        cleared = true;
      }
      unlinkSync(entry.path);
      fsyncDir(posix.dirname(entry.path));
      entry.removed = true;
      delete entry.reason;
      step('name-removed');
    } catch (err) {
      entry.reason = `cannot remove: ${errText(err)}`;
    }
  }
  if (cleared) {
    const left = meta.paths.find((p) => !p.removed && existsSync(p.path));
    if (left) {
      try {
        setRemovalFlags(left.path, meta.flags, true);
      } catch {
        // reported through the path's reason already
      }
    }
  }
}

/** The outcome per requested name: the item's removal results where it tracked the name, else the pre-check. */
function mergePaths(requested: ItemPath[], tracked: ItemPath[]): ItemPath[] {
  const byPath = new Map(tracked.map((p) => [p.path, p]));
  return requested.map((p) => byPath.get(p.path) ?? p);
}
