// The persistent local hash index (endpoint-agent.md §1.3, §3.7): answers "where is the file with this SHA-1?"
// from a SQLite table instead of a disk crawl. Incremental: an entry is keyed by its identity
// (dev, ino, size, mtime_ns, ctime_ns) and only files whose identity changed are read again. When the index
// may be stale, findCandidatesBySize walks the roots but hashes only files of the target's exact size.
import Database from 'better-sqlite3';
import { chmodSync, closeSync, constants, fstatSync, lstatSync, openSync, realpathSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { posix } from 'node:path';
import type { CachedHashes } from './hashCache.ts';
import type { FileIdentity, HashedFile } from './hashFile.ts';
import { hashFd, identityOf, openReadNoAtime, sameIdentity } from './hashFile.ts';
import { isUnder, walkFiles } from './walk.ts';

export interface IndexedFile {
  path: string;
  dev: bigint;
  ino: bigint;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  nlink: number;
  /** Null for files larger than maxHashBytes: known by size only, hashed on demand. */
  sha1: string | null;
  sha256: string | null;
}

export interface HashIndexOptions {
  /** The SQLite file (created 0600). */
  file: string;
  /** Absolute directories (or files) to index. Symlinked roots are resolved once, here. */
  roots: readonly string[];
  /** Never indexed: the vault and the agent's state directory. */
  skipPaths?: readonly string[];
  /** Files larger than this are recorded by size only during a full scan. */
  maxHashBytes?: number;
  sliceMs?: number;
}

export interface ScanReport {
  files: number;
  hashed: number;
  unchanged: number;
  removed: number;
  unhashedLarge: number;
  errors: number;
  durationMs: number;
}

interface Row {
  path: string;
  dev: string;
  ino: string;
  size: number;
  mtime_ns: string;
  ctime_ns: string;
  nlink: number;
  sha1: string | null;
  sha256: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS files (
  path TEXT PRIMARY KEY,
  dev TEXT NOT NULL,
  ino TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns TEXT NOT NULL,
  ctime_ns TEXT NOT NULL,
  nlink INTEGER NOT NULL,
  sha1 TEXT,
  sha256 TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_sha1 ON files(sha1);
CREATE INDEX IF NOT EXISTS files_size ON files(size);
CREATE INDEX IF NOT EXISTS files_inode ON files(dev, ino);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
`;

const FLUSH_EVERY = 512;

function toFile(r: Row): IndexedFile {
  return {
    path: r.path,
    dev: BigInt(r.dev),
    ino: BigInt(r.ino),
    size: r.size,
    mtimeNs: BigInt(r.mtime_ns),
    ctimeNs: BigInt(r.ctime_ns),
    nlink: r.nlink,
    sha1: r.sha1,
    sha256: r.sha256,
  };
}

function rowIdentity(r: Row): FileIdentity {
  return { dev: BigInt(r.dev), ino: BigInt(r.ino), size: BigInt(r.size), mtimeNs: BigInt(r.mtime_ns), ctimeNs: BigInt(r.ctime_ns) };
}

function resolveRoot(root: string): string {
  if (!posix.isAbsolute(root)) throw new Error(`hash index root must be absolute: ${root}`);
  try {
    return realpathSync(root);
  } catch {
    return posix.normalize(root);
  }
}

/**
 * Hashes `path` only if it is still the file `expected` describes, reading through O_NOFOLLOW and checking
 * the identity again afterwards; null when it changed or vanished (the next scan picks it up).
 */
function hashIfUnchanged(path: string, expected: BigIntStats): { hashes: HashedFile; st: BigIntStats } | null {
  let fd: number;
  try {
    fd = openReadNoAtime(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const before = fstatSync(fd, { bigint: true });
    if (!before.isFile() || !sameIdentity(identityOf(before), identityOf(expected))) return null;
    const h = hashFd(fd);
    const after = fstatSync(fd, { bigint: true });
    if (!sameIdentity(identityOf(before), identityOf(after))) return null;
    return { hashes: { ...h, identity: identityOf(after), stat: after }, st: after };
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

function prepareStatements(db: Database.Database) {
  return {
    bySha1: db.prepare<[string], Row>('SELECT * FROM files WHERE sha1 = ?'),
    byInode: db.prepare<[string, string], Row>('SELECT * FROM files WHERE dev = ? AND ino = ?'),
    byPath: db.prepare<[string], Row>('SELECT * FROM files WHERE path = ?'),
    byIdentity: db.prepare<[string, string, number, string, string], Pick<Row, 'sha1' | 'sha256'>>(
      'SELECT sha1, sha256 FROM files WHERE dev = ? AND ino = ? AND size = ? AND mtime_ns = ? AND ctime_ns = ? AND sha1 IS NOT NULL LIMIT 1',
    ),
    all: db.prepare<[], Row>('SELECT * FROM files'),
    upsert: db.prepare(
      `INSERT INTO files (path, dev, ino, size, mtime_ns, ctime_ns, nlink, sha1, sha256)
       VALUES (@path, @dev, @ino, @size, @mtime_ns, @ctime_ns, @nlink, @sha1, @sha256)
       ON CONFLICT(path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, size = excluded.size,
         mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, nlink = excluded.nlink,
         sha1 = excluded.sha1, sha256 = excluded.sha256`,
    ),
    remove: db.prepare<[string]>('DELETE FROM files WHERE path = ?'),
    count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM files'),
    getMeta: db.prepare<[string], { v: string }>('SELECT v FROM meta WHERE k = ?'),
    setMeta: db.prepare<[string, string]>('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v'),
  };
}

export class HashIndex {
  readonly roots: string[];
  private readonly skipPaths: string[];
  private readonly maxHashBytes: number;
  private readonly sliceMs: number;
  private readonly db: Database.Database;
  private readonly stmts: ReturnType<typeof prepareStatements>;
  private scanning: Promise<ScanReport> | null = null;

  private constructor(opts: HashIndexOptions) {
    this.roots = opts.roots.map(resolveRoot);
    this.skipPaths = (opts.skipPaths ?? []).map(resolveRoot);
    this.maxHashBytes = opts.maxHashBytes ?? 256 * 1024 * 1024;
    this.sliceMs = opts.sliceMs ?? 15;
    // Create the file 0600 before SQLite does (it would use the umask); WAL/SHM files inherit its mode.
    closeSync(openSync(opts.file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600));
    chmodSync(opts.file, 0o600);
    this.db = new Database(opts.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    this.stmts = prepareStatements(this.db);
  }

  static open(opts: HashIndexOptions): HashIndex {
    return new HashIndex(opts);
  }

  close(): void {
    this.db.close();
  }

  get count(): number {
    return this.stmts.count.get()?.n ?? 0;
  }

  /** Epoch ms of the last completed full scan, or null if none ever completed. */
  lastScanCompletedAt(): number | null {
    const v = this.stmts.getMeta.get('last_scan_completed_at')?.v;
    return v ? Number(v) : null;
  }

  lookupSha1(sha1: string): IndexedFile[] {
    return this.stmts.bySha1.all(sha1.toLowerCase()).map(toFile);
  }

  lookupInode(dev: bigint, ino: bigint): IndexedFile[] {
    return this.stmts.byInode.all(String(dev), String(ino)).map(toFile);
  }

  lookupPath(path: string): IndexedFile | null {
    const r = this.stmts.byPath.get(path);
    return r ? toFile(r) : null;
  }

  /** The hashes of exactly this version of a file, if it was indexed. Serves as a HashCache oracle. */
  lookupIdentity(id: FileIdentity): CachedHashes | null {
    const r = this.stmts.byIdentity.get(String(id.dev), String(id.ino), Number(id.size), String(id.mtimeNs), String(id.ctimeNs));
    return r && r.sha1 ? { sha1: r.sha1, sha256: r.sha256 } : null;
  }

  /** Records a file hashed elsewhere (a running copy, a quarantine) so the index stays warm. */
  record(path: string, st: BigIntStats, hashes: { sha1: string; sha256: string | null }): void {
    if (!this.covers(path)) return;
    this.stmts.upsert.run(this.rowOf(path, st, hashes.sha1, hashes.sha256));
  }

  forget(path: string): void {
    this.stmts.remove.run(path);
  }

  /** True when `path` lies under a root and outside the skipped paths. */
  covers(path: string): boolean {
    return this.roots.some((r) => isUnder(path, r)) && !this.skipPaths.some((s) => isUnder(path, s));
  }

  private rowOf(path: string, st: BigIntStats, sha1: string | null, sha256: string | null): Row {
    return {
      path,
      dev: String(st.dev),
      ino: String(st.ino),
      size: Number(st.size),
      mtime_ns: String(st.mtimeNs),
      ctime_ns: String(st.ctimeNs),
      nlink: Number(st.nlink),
      sha1,
      sha256,
    };
  }

  /** A full incremental scan of the roots. Concurrent callers share one scan. */
  scan(signal?: AbortSignal): Promise<ScanReport> {
    this.scanning ??= this.runScan(signal).finally(() => {
      this.scanning = null;
    });
    return this.scanning;
  }

  private async runScan(signal?: AbortSignal): Promise<ScanReport> {
    const t0 = performance.now();
    const report: ScanReport = { files: 0, hashed: 0, unchanged: 0, removed: 0, unhashedLarge: 0, errors: 0, durationMs: 0 };
    // Everything currently indexed; whatever the walk does not meet again is gone (or left the roots).
    const known = new Map<string, Row>();
    for (const r of this.stmts.all.iterate()) known.set(r.path, r);
    const pending: Row[] = [];
    const flush = this.db.transaction((rows: Row[]) => {
      for (const r of rows) this.stmts.upsert.run(r);
    });
    const walk = await walkFiles({ roots: this.roots, skipPaths: this.skipPaths, sliceMs: this.sliceMs, signal }, (path, st) => {
      report.files++;
      const prev = known.get(path);
      known.delete(path);
      if (prev && sameIdentity(rowIdentity(prev), identityOf(st)) && (prev.sha1 !== null || Number(st.size) > this.maxHashBytes)) {
        report.unchanged++;
        return;
      }
      if (Number(st.size) > this.maxHashBytes) {
        report.unhashedLarge++;
        pending.push(this.rowOf(path, st, null, null));
      } else {
        const got = hashIfUnchanged(path, st);
        if (!got) {
          report.errors++;
          return;
        }
        report.hashed++;
        pending.push(this.rowOf(path, got.st, got.hashes.sha1, got.hashes.sha256));
      }
      if (pending.length >= FLUSH_EVERY) flush(pending.splice(0));
    });
    flush(pending.splice(0));
    report.errors += walk.errors;
    const removeAll = this.db.transaction((paths: string[]) => {
      for (const p of paths) this.stmts.remove.run(p);
    });
    removeAll([...known.keys()]);
    report.removed = known.size;
    this.stmts.setMeta.run('last_scan_completed_at', String(Date.now()));
    report.durationMs = performance.now() - t0;
    return report;
  }

  /**
   * Walks the roots and hashes only files of exactly `size` bytes (reusing indexed hashes of unchanged
   * files), updating the index as it goes. Returns the files of that size whose SHA-1 is `sha1` (or all of
   * that size when no SHA-1 is given).
   */
  async findCandidatesBySize(size: number, sha1?: string, signal?: AbortSignal): Promise<IndexedFile[]> {
    const want = sha1?.toLowerCase();
    const out: IndexedFile[] = [];
    await walkFiles({ roots: this.roots, skipPaths: this.skipPaths, sliceMs: this.sliceMs, signal }, (path, st) => {
      if (Number(st.size) !== size) return;
      const prev = this.stmts.byPath.get(path);
      let row: Row;
      if (prev && prev.sha1 && sameIdentity(rowIdentity(prev), identityOf(st))) {
        row = prev;
      } else {
        const got = hashIfUnchanged(path, st);
        if (!got) return;
        row = this.rowOf(path, got.st, got.hashes.sha1, got.hashes.sha256);
        this.stmts.upsert.run(row);
      }
      if (!want || row.sha1 === want) out.push(toFile(row));
    });
    return out;
  }

  /** Every name of inode (dev, ino) under the roots: the index first, then a walk of that device. */
  async findInodePaths(dev: bigint, ino: bigint, expectedLinks?: number, signal?: AbortSignal): Promise<string[]> {
    const found = new Set<string>();
    for (const f of this.lookupInode(dev, ino)) {
      try {
        const st = lstatSync(f.path, { bigint: true });
        if (st.dev === dev && st.ino === ino) found.add(f.path);
      } catch {
        // stale row: the walk below settles it
      }
    }
    if (expectedLinks !== undefined && found.size >= expectedLinks) return [...found];
    await walkFiles({ roots: this.roots, skipPaths: this.skipPaths, device: dev, sliceMs: this.sliceMs, signal }, (path, st) => {
      if (st.dev === dev && st.ino === ino) found.add(path);
    });
    return [...found];
  }
}
