// One SQLite connection as the store uses it, whichever thread opens it: the same pragmas, the same statement cache.
import BetterSqlite3 from 'better-sqlite3';
import type { CompiledQuery, QueryResult } from 'kysely';

export interface ConnectionOptions {
  /** How long a writer waits for another connection's write lock before failing. */
  busyTimeoutMs: number;
}

export function openConnection(file: string, opts: ConnectionOptions): BetterSqlite3.Database {
  const busy = opts.busyTimeoutMs;
  if (!Number.isSafeInteger(busy) || busy < 0) throw new TypeError('busyTimeoutMs must be a non-negative integer');
  const sqlite = new BetterSqlite3(file);
  try {
    // WAL: readers never wait for the writer. synchronous=FULL: the WAL is fsynced at every commit, so a
    // commit that returned survives kill -9 and power loss (NORMAL would only survive a process crash). The store's
    // main connection then hands the fsyncs to walDurability.ts, which keeps the same promise off the event loop.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma(`busy_timeout = ${busy}`);
    sqlite.pragma('foreign_keys = ON');
    // Memory-mapped reads keep the action indexes hot (~8% more durable inserts/s in bench/api). The page cache
    // stays small (8 MiB, above the ~1,000 WAL pages between checkpoints): SQLite scans the cache's whole hash table
    // at every commit (pcache1TruncateUnsafe), ~240 µs per commit with 64 MiB (measured, docs/decisions.md).
    // Both are caps, not allocations.
    sqlite.pragma('cache_size = -8192');
    sqlite.pragma('temp_store = MEMORY');
    sqlite.pragma('mmap_size = 268435456');
  } catch (err) {
    sqlite.close();
    throw err;
  }
  return withStatementCache(sqlite);
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

/**
 * A compiled query run on `sqlite` at once, answered as Kysely's SQLite driver answers (rows for a statement that
 * returns rows; else the count of changed rows and the last rowid). See StoreDialect.runCompiledNow.
 */
export function runCompiled(sqlite: BetterSqlite3.Database, query: CompiledQuery): QueryResult<unknown> {
  const stmt = sqlite.prepare(query.sql);
  // Values as separate arguments, not one array: better-sqlite3 reads an array's elements through V8's generic
  // property lookup, ~2% of a POST's instructions over its 39 bound values (callgrind), arguments directly.
  if (stmt.reader) return { rows: stmt.all(...query.parameters) };
  const { changes, lastInsertRowid } = stmt.run(...query.parameters);
  return { rows: [], numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid) };
}
