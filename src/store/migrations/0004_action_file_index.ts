// One index where two stood: the duplicate rule and "which actions target this file" share an index.
//
// Until now machine_actions had a unique index on active_key (the duplicate rule) and another on file_identifier
// (the SHA-1 lookups behind `$filter=relatedFileInfo/fileIdentifier eq …`). Both are keyed by a SHA-1, so every
// new action lands on a random leaf page of each, and each such page is written to the WAL at commit and again at
// checkpoint: the two made up ~60% of the pages a batch of durable POSTs writes (bench/api, BENCHMARKS.md).
// Now one unique index on (file_identifier, active_key) answers the SHA-1 lookups and holds the duplicate rule for
// actions about a file (their key names the file, so it determines file_identifier); a partial unique index on
// active_key holds it for the others, and new file actions never touch it.
//
// SQLite cannot drop a column's UNIQUE constraint, so the table is rebuilt (the same way on both databases):
// the old table is renamed, the new one created under the old name, rows copied, the old one dropped, and the
// indexes created again under their names.
import { PostgresAdapter, sql } from 'kysely';
import type { Kysely, Migration, SqlBool } from 'kysely';

const ACTION_STATUSES = sql`('Pending', 'InProgress', 'Succeeded', 'Failed', 'TimeOut', 'Cancelled')`;

const COLUMNS = [
  'id',
  'type',
  'title',
  'requestor',
  'requestor_comment',
  'status',
  'machine_id',
  'computer_dns_name',
  'creation_date_time_utc',
  'last_update_date_time_utc',
  'cancellation_requestor',
  'cancellation_comment',
  'cancellation_date_time_utc',
  'error_h_result',
  'scope',
  'external_id',
  'request_source',
  'file_identifier',
  'file_identifier_type',
  'commands',
  'troubleshoot_info',
  'requestor_id',
  'device_result',
  'expires_at',
  'active_key',
] as const;

export const actionFileIndex: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    const text = db.getExecutor().adapter instanceof PostgresAdapter ? sql`text collate "C"` : sql`text`;

    await db.schema.alterTable('machine_actions').renameTo('machine_actions_v3').execute();
    await db.schema
      .createTable('machine_actions')
      // Named, so that it does not collide on PostgreSQL with the renamed table's machine_actions_pkey.
      .addColumn('id', text, (c) => c.notNull())
      .addPrimaryKeyConstraint('pk_machine_actions', ['id'])
      .addColumn('type', text, (c) => c.notNull())
      .addColumn('title', text)
      .addColumn('requestor', text, (c) => c.notNull())
      .addColumn('requestor_comment', text, (c) => c.notNull())
      .addColumn('status', text, (c) => c.notNull().check(sql`status in ${ACTION_STATUSES}`))
      .addColumn('machine_id', text, (c) => c.notNull().references('machines.id'))
      .addColumn('computer_dns_name', text)
      .addColumn('creation_date_time_utc', text, (c) => c.notNull())
      .addColumn('last_update_date_time_utc', text, (c) => c.notNull())
      .addColumn('cancellation_requestor', text)
      .addColumn('cancellation_comment', text)
      .addColumn('cancellation_date_time_utc', text)
      .addColumn('error_h_result', 'bigint', (c) => c.notNull())
      .addColumn('scope', text)
      .addColumn('external_id', text)
      .addColumn('request_source', text, (c) => c.notNull())
      .addColumn('file_identifier', text)
      .addColumn('file_identifier_type', text)
      .addColumn('commands', text, (c) => c.notNull())
      .addColumn('troubleshoot_info', text)
      .addColumn('requestor_id', text, (c) => c.notNull())
      .addColumn('device_result', text)
      .addColumn('expires_at', text, (c) => c.notNull())
      .addColumn('active_key', text)
      // A final action never holds the duplicate key; an active one always does.
      .addCheckConstraint(
        'ck_machine_actions_active_key',
        sql`(status in ('Pending', 'InProgress')) = (active_key is not null)`,
      )
      .execute();
    await db
      .insertInto('machine_actions')
      .columns([...COLUMNS])
      .expression(db.selectFrom('machine_actions_v3').select([...COLUMNS]))
      .execute();
    await db.schema.dropTable('machine_actions_v3').execute();

    await db.schema
      .createIndex('ix_actions_created')
      .on('machine_actions')
      .columns(['creation_date_time_utc desc', 'id'])
      .execute();
    await db.schema
      .createIndex('ix_actions_machine_status')
      .on('machine_actions')
      .columns(['machine_id', 'status', 'creation_date_time_utc'])
      .execute();
    await db.schema
      .createIndex('ix_actions_active_expiry')
      .on('machine_actions')
      .column('expires_at')
      .where(sql<SqlBool>`status in ('Pending', 'InProgress')`)
      .execute();
    // A final action's active_key is null, and nulls never collide: only active actions are held unique.
    await db.schema
      .createIndex('ux_actions_file_active_key')
      .on('machine_actions')
      .columns(['file_identifier', 'active_key'])
      .unique()
      .execute();
    await db.schema
      .createIndex('ux_actions_active_key_no_file')
      .on('machine_actions')
      .column('active_key')
      .unique()
      .where(sql<SqlBool>`file_identifier is null`)
      .execute();
  },
};
