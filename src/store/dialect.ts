// The few places where SQLite and PostgreSQL truly differ, as data the one KyselyStore branches on — never as
// copies of its queries.
import type { CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { GroupCommitOptions } from './groupCommit.ts';
import type { Database } from './schema.ts';

export interface StoreDialect {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * Opens a write transaction. SQLite: BEGIN IMMEDIATE takes the write lock up front, so a transaction that
   * reads then writes never fails to upgrade its lock half-way (SQLITE_BUSY with no retry).
   */
  readonly beginWrite: string;
  /** Row locks (FOR UPDATE, SKIP LOCKED): PostgreSQL has them; SQLite has one writer at a time anyway. */
  readonly rowLocks: boolean;
  /** Runs a write after every earlier write of this process on the same database (SQLite), or directly. */
  serializeWrites<T>(fn: () => Promise<T>): Promise<T>;
  /** Inside a write transaction: excludes every other appender of the audit chain until commit. */
  lockAuditChain(trx: Kysely<Database>): Promise<void>;
  /**
   * Inside a write transaction: 'shared' for a machine write (which places the machine by the current rules),
   * 'exclusive' for a device-group change (which re-places every machine). Without it, a machine written while
   * the rules change could be placed by the old rules after the re-placement finished.
   */
  lockDeviceGroups(trx: Kysely<Database>, mode: 'shared' | 'exclusive'): Promise<void>;
  /**
   * Batched inserts as one compiled-once single-row statement per row (SQLite: in process, no round trips) instead
   * of one multi-row statement per batch (PostgreSQL: a round trip per statement).
   */
  readonly singleRowInserts: boolean;
  /** Bound parameters allowed in one statement. */
  readonly maxParameters: number;
  /**
   * SQLite in process: runs a statement Kysely compiled at once, on the connection, without Kysely's executor (its
   * promises and query id cost ~1.5 µs a statement, as much as a small insert itself). Only for the group-commit
   * batches, inside their transaction: it holds the one connection until it ends. Absent, statements go through Kysely.
   */
  readonly runCompiledNow?: (query: CompiledQuery) => QueryResult<unknown>;
  /** Group commit for createAction; null writes each action in its own transaction. */
  readonly actionGroupCommit: GroupCommitOptions | null;
  readonly auditGroupCommit: GroupCommitOptions;
}
