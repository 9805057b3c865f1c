// The embedded store: one SQLite file (better-sqlite3 through Kysely), durable on acknowledgement.
import { closeSync, mkdirSync, openSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Kysely, SqliteDialect } from 'kysely';
import type { StoreDialect } from '../dialect.ts';
import { KyselyStore } from '../kyselyStore.ts';
import { migrateToLatest } from '../migrations/index.ts';
import { LocalNotifier } from '../notifier.ts';
import type { Database } from '../schema.ts';
import type { NewAuditEntry, Store } from '../store.ts';
import type { PendingAction } from '../batchWrites.ts';
import { openConnection, runCompiled } from './connection.ts';
import { SQLITE_MAX_PARAMETERS } from './limits.ts';
import { WalDurability } from './walDurability.ts';
import { SqliteWriterThread } from './writerThread.ts';
import type { WriteEpoch } from '../machineCache.ts';
import { withKeyLock } from '../writeLock.ts';

export interface SqliteStoreOptions {
  /** File path, or `:memory:` for a private in-memory database. */
  path: string;
  /** Group commit for createAction (default on); off only to measure what it buys. */
  groupCommit?: boolean;
  /** How long a writer waits for another process's write lock before failing (default 5000 ms). */
  busyTimeoutMs?: number;
  /**
   * Write group-commit batches on a thread of their own (default off; see writerThread.ts for what it buys and
   * costs). A :memory: database is private to its one connection, so it never has one.
   */
  writerThread?: boolean;
}

const MIGRATION_ATTEMPTS = 20;

/** Group-commit batches queued at the writer thread at once: one committing, one ready behind it. */
const WRITER_BATCHES_IN_FLIGHT = 2;

/** Per database file (by its lock key): bumped by every write any store of this process makes to it. */
const writeEpochs = new Map<string, WriteEpoch>();

function isBusy(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) return true;
  }
  return false;
}

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<Store> {
  const memory = opts.path === ':memory:';
  const file = memory ? ':memory:' : resolve(opts.path);
  if (!memory) {
    // The database holds token-signing private keys and secret hashes: readable by the service user only.
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    closeSync(openSync(file, 'a', 0o600)); // SQLite gives its -wal and -shm files the database file's mode
  }

  const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
  const sqlite = openConnection(file, { busyTimeoutMs });

  // Writers of this process on this file queue here (see writeLock.ts); :memory: databases are private.
  // (The real path: two spellings of one file, e.g. through a symlink, must share the lock.)
  const lockKey = memory ? `sqlite-memory:${randomUUID()}` : `sqlite:${realpathSync(file)}`;
  const dialect: StoreDialect = {
    kind: 'sqlite',
    beginWrite: 'begin immediate',
    rowLocks: false,
    serializeWrites: (fn) => withKeyLock(lockKey, fn),
    // BEGIN IMMEDIATE already made this transaction the only writer of the file.
    lockAuditChain: async () => undefined,
    // Likewise: one writer at a time already orders machine writes and group changes.
    lockDeviceGroups: async () => undefined,
    singleRowInserts: true,
    maxParameters: SQLITE_MAX_PARAMETERS,
    runCompiledNow: (query) => runCompiled(sqlite, query),
    actionGroupCommit: opts.groupCommit === false ? null : { maxBatch: 512, maxInFlight: 1 },
    auditGroupCommit: { maxBatch: 512, maxInFlight: 1 },
  };

  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    // Another process may be migrating the same file; its lock makes ours fail fast with BUSY — wait and retry.
    for (let attempt = 1; ; attempt++) {
      try {
        await withKeyLock(lockKey, () => migrateToLatest(db));
        break;
      } catch (err) {
        if (!isBusy(err) || attempt >= MIGRATION_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  } catch (err) {
    await db.destroy();
    throw err;
  }
  // Changes whenever another connection (another process, the writer thread) commits: cached machine rows then go.
  const dataVersion = sqlite.prepare('pragma data_version').pluck();
  const changeCounter = () => dataVersion.get() as number;
  let writeEpoch = writeEpochs.get(lockKey);
  if (!writeEpoch) writeEpochs.set(lockKey, (writeEpoch = { value: 0 }));
  if (memory) return new KyselyStore(db, dialect, new LocalNotifier(), { changeCounter, writeEpoch });
  if (opts.writerThread !== true) {
    let durability: WalDurability;
    try {
      durability = WalDurability.open(sqlite, file, busyTimeoutMs);
    } catch (err) {
      await db.destroy();
      throw err;
    }
    const durable: StoreDialect = {
      ...dialect,
      // A write is done once it is on disk; the lock is free as soon as it has committed, so the next write commits
      // while this one's fdatasync runs (and shares the next one).
      serializeWrites: async (fn) => {
        const result = await withKeyLock(lockKey, async () => {
          const r = await fn();
          await durability.checkpointIfDue();
          return r;
        });
        await durability.synced();
        return result;
      },
      // One batch committing while the one before it waits for its fdatasync.
      actionGroupCommit: dialect.actionGroupCommit && { ...dialect.actionGroupCommit, maxInFlight: 2 },
      auditGroupCommit: { ...dialect.auditGroupCommit, maxInFlight: 2 },
    };
    return new KyselyStore(db, durable, new LocalNotifier(), {
      changeCounter,
      writeEpoch,
      beforeClose: () => durability.close(),
    });
  }
  let writer: SqliteWriterThread;
  try {
    writer = await SqliteWriterThread.start({ file, busyTimeoutMs });
  } catch (err) {
    await db.destroy();
    throw err;
  }
  // Batches go over whole and several can be in flight: the next one is on its way while the thread commits the
  // previous one. Every other write runs here, on this connection, while the thread lends the write lock.
  const batches = {
    writeActions: (items: PendingAction[]) => writer.writeBatch('actions', items),
    writeAudit: (items: NewAuditEntry[]) => writer.writeBatch('audit', items),
    close: () => writer.close(),
  };
  const pipelined: StoreDialect = {
    ...dialect,
    serializeWrites: (fn) => withKeyLock(lockKey, () => writer.withLease(fn)),
    actionGroupCommit: dialect.actionGroupCommit && { ...dialect.actionGroupCommit, maxInFlight: WRITER_BATCHES_IN_FLIGHT },
    auditGroupCommit: { ...dialect.auditGroupCommit, maxInFlight: WRITER_BATCHES_IN_FLIGHT },
  };
  return new KyselyStore(db, pipelined, new LocalNotifier(), { batches, changeCounter, writeEpoch });
}
