// Chooses the store from configuration: PostgreSQL when a database URL is given, else SQLite in the data dir.
import { join } from 'node:path';
import { openPostgresStore } from './postgres/openPostgresStore.ts';
import { openSqliteStore } from './sqlite/openSqliteStore.ts';
import type { Store } from './store.ts';

export const SQLITE_FILE_NAME = 'tourniquet.db';

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/**
 * Splits Tourniquet's own `schema` query parameter off a PostgreSQL URL (postgres://…/db?schema=tq_prod): the
 * schema holding the tables, created if missing. The rest of the URL goes to pg unchanged.
 */
export function parseDatabaseUrl(raw: string): { url: string; schema?: string } {
  const url = raw.trim();
  if (!isPostgresUrl(url)) throw new TypeError('database URL must start with postgres:// or postgresql://');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError('database URL is not a valid URL');
  }
  const schemas = parsed.searchParams.getAll('schema');
  if (schemas.length === 0) return { url };
  if (schemas.length > 1) throw new TypeError('database URL names more than one schema');
  parsed.searchParams.delete('schema');
  return { url: parsed.toString(), schema: schemas[0]! };
}

export async function openStore(opts: {
  databaseUrl?: string | null;
  dataDir: string;
  /** SQLite only: group-commit batches on a writer thread (src/store/sqlite/writerThread.ts). */
  sqliteWriterThread?: boolean;
}): Promise<Store> {
  const raw = opts.databaseUrl?.trim();
  if (raw) {
    const { url, schema } = parseDatabaseUrl(raw);
    return openPostgresStore(schema === undefined ? { url } : { url, schema });
  }
  return openSqliteStore({ path: join(opts.dataDir, SQLITE_FILE_NAME), writerThread: opts.sqliteWriterThread === true });
}
