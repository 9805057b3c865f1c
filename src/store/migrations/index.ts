// Every schema version in order. Static (no directory scanning) so the set is the same under tsx, a bundle or a
// compiled build, and one list runs on SQLite and PostgreSQL alike.
import { Migrator } from 'kysely';
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { initial } from './0001_initial.ts';
import { rbac } from './0002_rbac.ts';
import { cluster } from './0003_cluster.ts';
import { actionFileIndex } from './0004_action_file_index.ts';
import { actionsCreatedAscending } from './0005_actions_created_ascending.ts';

export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001_initial': initial,
  '0002_rbac': rbac,
  '0003_cluster': cluster,
  '0004_action_file_index': actionFileIndex,
  '0005_actions_created_ascending': actionsCreatedAscending,
};

const provider: MigrationProvider = { getMigrations: async () => ({ ...MIGRATIONS }) };

/**
 * Brings the database to the latest version; throws (naming the failed migration) instead of half-starting.
 * `schema` (PostgreSQL) must name the schema the tables live in: Kysely checks for its bookkeeping tables
 * across all schemas, so without it another schema's tables would be taken for ours.
 */
export async function migrateToLatest(db: Kysely<any>, schema?: string): Promise<void> {
  const migrator = new Migrator({ db, provider, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`database migration ${failed ?? ''} failed: ${reason}`.replace('  ', ' '), { cause: error });
  }
}
