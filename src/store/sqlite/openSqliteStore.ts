// The embedded store: one SQLite file (better-sqlite3 through Kysely), durable on acknowledgement.
import { closeSync, mkdirSync, openSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { StoreDialect } from '../dialect.ts';
import { KyselyStore } from '../kyselyStore.ts';
import { migrateToLatest } from '../migrations/index.ts';
import { LocalNotifier } from '../notifier.ts';
import type { Database } from '../schema.ts';
import type { Store } from '../store.ts';
import { withKeyLock } from '../writeLock.ts';

export interface SqliteStoreOptions {
  /** File path, or `:memory:` for a private in-memory database. */
  path: string;
  /** Group commit for createAction (default on); off only to measure what it buys. */
  groupCommit?: boolean;
  /** How long a writer waits for another process's write lock before failing (default 5000 ms). */
  busyTimeoutMs?: number;
}

/** better-sqlite3's SQLite is built with SQLITE_MAX_VARIABLE_NUMBER = 32766. */
const SQLITE_MAX_PARAMETERS = 32766;

const MIGRATION_ATTEMPTS = 20;

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

  const sqlite = new BetterSqlite3(file);
  try {
    // WAL: readers never wait for the writer. synchronous=FULL: the WAL is fsynced at every commit, so a
    // commit that returned survives kill -9 and power loss (NORMAL would only survive a process crash).
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    const busy = opts.busyTimeoutMs ?? 5000;
    if (!Number.isSafeInteger(busy) || busy < 0) throw new TypeError('busyTimeoutMs must be a non-negative integer');
    sqlite.pragma(`busy_timeout = ${busy}`);
    sqlite.pragma('foreign_keys = ON');
    // A larger page cache and memory-mapped reads keep the action indexes hot: ~8% more durable inserts/s
    // in bench/api (measured). Both are caps, not allocations.
    sqlite.pragma('cache_size = -65536');
    sqlite.pragma('temp_store = MEMORY');
    sqlite.pragma('mmap_size = 268435456');
  } catch (err) {
    sqlite.close();
    throw err;
  }

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
    maxParameters: SQLITE_MAX_PARAMETERS,
    actionGroupCommit: opts.groupCommit === false ? null : { maxBatch: 512, maxInFlight: 1 },
    auditGroupCommit: { maxBatch: 512, maxInFlight: 1 },
  };

  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
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
  return new KyselyStore(db, dialect, new LocalNotifier());
}

/**
 * Kysely prepares every query anew; SQLite's prepare is a large share of a request's CPU. Kysely emits the same SQL
 * text for the same query shape, so statements are cached by text (bounded: shapes vary only with list sizes).
 */
function withStatementCache(sqlite: BetterSqlite3.Database): BetterSqlite3.Database {
  const cache = new Map<string, BetterSqlite3.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  return new Proxy(sqlite, {
    get(target, prop, receiver) {
      if (prop === 'prepare') {
        return (sql: string) => {
          let stmt = cache.get(sql);
          if (!stmt) {
            stmt = prepare(sql);
            if (cache.size >= 1000) cache.delete(cache.keys().next().value as string);
            cache.set(sql, stmt);
          }
          return stmt;
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
