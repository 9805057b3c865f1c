// Chooses the store from configuration: PostgreSQL when a database URL is given, else SQLite in the data dir.
import { join } from 'node:path';
import { openPostgresStore } from './postgres/openPostgresStore.ts';
import { openSqliteStore } from './sqlite/openSqliteStore.ts';
import type { Store } from './store.ts';

export const SQLITE_FILE_NAME = 'tourniquet.db';

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

export async function openStore(opts: { databaseUrl?: string | null; dataDir: string }): Promise<Store> {
  const url = opts.databaseUrl?.trim();
  if (url) {
    if (!isPostgresUrl(url)) throw new TypeError('database URL must start with postgres:// or postgresql://');
    return openPostgresStore({ url });
  }
  return openSqliteStore({ path: join(opts.dataDir, SQLITE_FILE_NAME) });
}
