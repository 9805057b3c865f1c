// The scale-out store: PostgreSQL through a pg Pool and Kysely, shared by every server node, with
// LISTEN/NOTIFY carrying "something changed for machine X" between nodes.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { StoreDialect } from '../dialect.ts';
import { KyselyStore } from '../kyselyStore.ts';
import { migrateToLatest } from '../migrations/index.ts';
import type { Database } from '../schema.ts';
import type { Store } from '../store.ts';
import { PgNotifier } from './pgNotifier.ts';

export interface PostgresStoreOptions {
  url: string;
  /** Schema holding Tourniquet's tables (created if missing); default: the connection's current schema. */
  schema?: string;
  /** Pooled connections per store (default 10), plus one dedicated LISTEN connection. */
  poolSize?: number;
  /** Group commit for createAction (default on); off only to measure what it buys. */
  groupCommit?: boolean;
}

/** PostgreSQL's limit on bind parameters in one statement. */
const PG_MAX_PARAMETERS = 65535;

/** Lower-case identifiers only: the schema name goes into search_path and DDL, never as untrusted text. */
const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

const INT8_OID = 20;

/**
 * int8 (counts, bigint columns) arrives from pg as a string; ours are ids, sizes and HRESULTs well inside 2^53,
 * so read them as numbers — and refuse, rather than round, one that is not.
 */
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`integer ${text} is outside the safe range`);
  return n;
}

const typeParsers = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** First key of our two-key advisory locks ('TRNQ'), so they never collide with another application's. */
const ADVISORY_LOCK_CLASS = 0x54524e51;

/** A 32-bit key per schema for the audit-chain advisory lock, so separate deployments never wait on each other. */
function auditLockKey(schema: string): number {
  return createHash('sha256').update(`tourniquet.audit:${schema}`).digest().readInt32BE(0);
}

/** Likewise for the device-group rules lock (shared by machine writes, exclusive for rule changes). */
function deviceGroupsLockKey(schema: string): number {
  return createHash('sha256').update(`tourniquet.device-groups:${schema}`).digest().readInt32BE(0);
}

export async function openPostgresStore(opts: PostgresStoreOptions): Promise<Store> {
  if (!/^postgres(ql)?:\/\//i.test(opts.url)) throw new TypeError('PostgreSQL url must start with postgres:// or postgresql://');
  if (opts.schema !== undefined && !SCHEMA_RE.test(opts.schema)) {
    throw new TypeError('schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)');
  }
  const base: pg.ClientConfig = {
    connectionString: opts.url,
    types: typeParsers,
    application_name: 'tourniquet',
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  };

  if (opts.schema) await ensureSchema(base, opts.schema);

  const pool = new pg.Pool({ ...base, max: opts.poolSize ?? 10 });
  // An idle pooled connection the server drops (restart, failover) must not crash the process; the pool
  // discards it and the next query opens a fresh one.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let notifier: PgNotifier | null = null;
  try {
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
    const schema = rows[0]?.schema;
    if (!schema) throw new Error('PostgreSQL has no current schema (check search_path)');
    // Kysely's migrator introspects the tables of every schema in the database; a schema another deployment (or
    // test run) drops at that moment makes the introspection fail with 3F000 naming *that* schema. Ours is not
    // affected: try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await migrateToLatest(db, schema);
        break;
      } catch (err) {
        const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
        const foreignSchemaVanished =
          cause?.code === '3F000' && typeof cause.message === 'string' && !cause.message.includes(`"${schema}"`);
        if (!foreignSchemaVanished || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }

    const lockKey = auditLockKey(schema);
    const groupsKey = deviceGroupsLockKey(schema);
    const dialect: StoreDialect = {
      kind: 'postgres',
      beginWrite: 'begin',
      rowLocks: true,
      serializeWrites: (fn) => fn(),
      lockAuditChain: async (trx) => {
        await sql`select pg_advisory_xact_lock(${ADVISORY_LOCK_CLASS}::int4, ${lockKey}::int4)`.execute(trx);
      },
      lockDeviceGroups: async (trx, mode) => {
        if (mode === 'shared') {
          await sql`select pg_advisory_xact_lock_shared(${ADVISORY_LOCK_CLASS}::int4, ${groupsKey}::int4)`.execute(trx);
        } else {
          await sql`select pg_advisory_xact_lock(${ADVISORY_LOCK_CLASS}::int4, ${groupsKey}::int4)`.execute(trx);
        }
      },
      singleRowInserts: false,
      maxParameters: PG_MAX_PARAMETERS,
      actionGroupCommit: opts.groupCommit === false ? null : { maxBatch: 512, maxInFlight: 4 },
      auditGroupCommit: { maxBatch: 512, maxInFlight: 1 },
    };

    notifier = new PgNotifier(pool, base, schema);
    await notifier.start();
    return new KyselyStore(db, dialect, notifier);
  } catch (err) {
    await notifier?.close();
    await db.destroy().catch(() => undefined);
    throw err;
  }
}

/** CREATE SCHEMA IF NOT EXISTS, tolerating a node that creates it at the same moment. */
async function ensureSchema(base: pg.ClientConfig, schema: string): Promise<void> {
  const c = new pg.Client({ ...base, options: undefined });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(`create schema if not exists "${schema}"`);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== '23505' && code !== '42P06') throw err; // unique_violation / duplicate_schema: it exists
  } finally {
    await c.end().catch(() => undefined);
  }
}
