// The first schema, written once with Kysely's schema builder for SQLite and PostgreSQL alike.
import { PostgresAdapter, sql } from 'kysely';
import type { Kysely, Migration, SqlBool } from 'kysely';

const ACTION_STATUSES = sql`('Pending', 'InProgress', 'Succeeded', 'Failed', 'TimeOut', 'Cancelled')`;

export const initial: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    // PostgreSQL sorts text by the database collation, which may not be byte order; timestamps and ids must
    // sort as bytes (that is what makes the fixed-width timestamp order the time order), as SQLite does.
    const text = db.getExecutor().adapter instanceof PostgresAdapter ? sql`text collate "C"` : sql`text`;

    await db.schema
      .createTable('tenant')
      .addColumn('id', text, (c) => c.primaryKey())
      .addColumn('singleton', 'integer', (c) => c.notNull().unique().check(sql`singleton = 1`))
      .addColumn('name', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('apps')
      .addColumn('client_id', text, (c) => c.primaryKey())
      .addColumn('tenant_id', text, (c) => c.notNull())
      .addColumn('name', text, (c) => c.notNull())
      .addColumn('secret_hash', text, (c) => c.notNull())
      .addColumn('roles', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('disabled', 'integer', (c) => c.notNull().check(sql`disabled in (0, 1)`))
      .execute();

    await db.schema
      .createTable('signing_keys')
      .addColumn('kid', text, (c) => c.primaryKey())
      .addColumn('alg', text, (c) => c.notNull())
      .addColumn('public_jwk', text, (c) => c.notNull())
      .addColumn('private_pem', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('status', text, (c) => c.notNull().check(sql`status in ('active', 'retired')`))
      .addColumn('retired_at', text)
      .execute();
    // At most one active key: two nodes starting together cannot both create one.
    await db.schema
      .createIndex('ux_signing_keys_one_active')
      .on('signing_keys')
      .column('status')
      .unique()
      .where(sql<SqlBool>`status = 'active'`)
      .execute();

    await db.schema
      .createTable('enroll_tokens')
      .addColumn('id', text, (c) => c.primaryKey())
      .addColumn('token_hash', text, (c) => c.notNull().unique())
      .addColumn('group_name', text)
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('expires_at', text, (c) => c.notNull())
      .addColumn('revoked_at', text)
      .addColumn('max_uses', 'integer', (c) => c.check(sql`max_uses is null or max_uses >= 0`))
      .addColumn('uses', 'integer', (c) => c.notNull().check(sql`uses >= 0`))
      .execute();

    await db.schema
      .createTable('machines')
      .addColumn('id', text, (c) => c.primaryKey())
      .addColumn('merged_into_machine_id', text)
      .addColumn('is_potential_duplication', 'integer', (c) => c.notNull())
      .addColumn('is_excluded', 'integer', (c) => c.notNull())
      .addColumn('exclusion_reason', text)
      .addColumn('computer_dns_name', text, (c) => c.notNull())
      .addColumn('first_seen', text, (c) => c.notNull())
      .addColumn('last_seen', text, (c) => c.notNull())
      .addColumn('os_platform', text, (c) => c.notNull())
      .addColumn('os_version', text)
      .addColumn('os_processor', text)
      .addColumn('version', text)
      .addColumn('last_ip_address', text)
      .addColumn('last_external_ip_address', text)
      .addColumn('agent_version', text)
      .addColumn('os_build', 'bigint')
      .addColumn('health_status', text, (c) => c.notNull())
      .addColumn('device_value', text)
      .addColumn('rbac_group_id', 'bigint', (c) => c.notNull())
      .addColumn('rbac_group_name', text)
      .addColumn('risk_score', text)
      .addColumn('exposure_level', text)
      .addColumn('is_aad_joined', 'integer', (c) => c.notNull())
      .addColumn('aad_device_id', text)
      .addColumn('machine_tags', text, (c) => c.notNull())
      .addColumn('defender_av_status', text)
      .addColumn('onboarding_status', text, (c) => c.notNull())
      .addColumn('os_architecture', text)
      .addColumn('managed_by', text)
      .addColumn('managed_by_status', text)
      .addColumn('ip_addresses', text, (c) => c.notNull())
      .addColumn('vm_metadata', text)
      .addColumn('device_public_key', text)
      .addColumn('protection_running', 'integer', (c) => c.notNull())
      .addColumn('capabilities', text, (c) => c.notNull())
      .addColumn('enroll_group', text)
      .addColumn('domain', text)
      .addColumn('offboarded', 'integer', (c) => c.notNull())
      .addColumn('simulated', 'integer', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ix_machines_dns').on('machines').expression(sql`lower(computer_dns_name)`).execute();
    await db.schema.createIndex('ix_machines_aad').on('machines').expression(sql`lower(aad_device_id)`).execute();
    await db.schema.createIndex('ix_machines_last_seen').on('machines').columns(['last_seen desc', 'id']).execute();
    await db.schema.createIndex('ix_machines_rbac_group').on('machines').column('rbac_group_id').execute();

    await db.schema
      .createTable('machine_tags')
      .addColumn('machine_id', text, (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('tag', text, (c) => c.notNull())
      .addPrimaryKeyConstraint('pk_machine_tags', ['machine_id', 'tag'])
      .execute();
    await db.schema.createIndex('ix_machine_tags_tag').on('machine_tags').columns(['tag', 'machine_id']).execute();

    await db.schema
      .createTable('machine_ips')
      .addColumn('machine_id', text, (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('ip', text, (c) => c.notNull())
      .addColumn('first_seen', text, (c) => c.notNull())
      .addColumn('last_seen', text, (c) => c.notNull())
      .addPrimaryKeyConstraint('pk_machine_ips', ['machine_id', 'ip', 'first_seen'])
      .execute();
    await db.schema.createIndex('ix_machine_ips_ip_time').on('machine_ips').columns(['ip', 'last_seen']).execute();

    await db.schema
      .createTable('machine_actions')
      .addColumn('id', text, (c) => c.primaryKey())
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
      .addColumn('active_key', text, (c) => c.unique())
      // A final action never holds the duplicate key; an active one always does.
      .addCheckConstraint(
        'ck_machine_actions_active_key',
        sql`(status in ('Pending', 'InProgress')) = (active_key is not null)`,
      )
      .execute();
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
    await db.schema.createIndex('ix_actions_file').on('machine_actions').column('file_identifier').execute();

    await db.schema
      .createTable('file_observations')
      .addColumn('machine_id', text, (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('sha1', text, (c) => c.notNull())
      .addColumn('path', text, (c) => c.notNull())
      .addColumn('sha256', text)
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('signer', text)
      .addColumn('trusted', 'integer', (c) => c.notNull())
      .addColumn('seen_at', text, (c) => c.notNull())
      .addPrimaryKeyConstraint('pk_file_observations', ['machine_id', 'sha1', 'path'])
      .execute();
    await db.schema.createIndex('ix_observations_sha1').on('file_observations').columns(['sha1', 'machine_id']).execute();

    await db.schema
      .createTable('file_inventories')
      .addColumn('machine_id', text, (c) => c.primaryKey().references('machines.id').onDelete('cascade'))
      .addColumn('completed_at', text, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('vault_items')
      .addColumn('machine_id', text, (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('item_id', text, (c) => c.notNull())
      .addColumn('action_id', text)
      .addColumn('sha1', text, (c) => c.notNull())
      .addColumn('sha256', text)
      .addColumn('original_path', text, (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('quarantined_at', text, (c) => c.notNull())
      .addColumn('state', text, (c) => c.notNull().check(sql`state in ('quarantined', 'restored', 'purged')`))
      .addColumn('detail', text, (c) => c.notNull())
      .addPrimaryKeyConstraint('pk_vault_items', ['machine_id', 'item_id'])
      .execute();

    await db.schema
      .createTable('audit_log')
      .addColumn('id', 'bigint', (c) => c.primaryKey())
      .addColumn('at', text, (c) => c.notNull())
      .addColumn('actor_type', text, (c) => c.notNull())
      .addColumn('actor_id', text, (c) => c.notNull())
      .addColumn('actor_name', text)
      .addColumn('action', text, (c) => c.notNull())
      .addColumn('target', text)
      .addColumn('result', text, (c) => c.notNull())
      .addColumn('status', 'integer')
      .addColumn('client_ip', text)
      .addColumn('correlation_id', text)
      .addColumn('detail', text, (c) => c.notNull())
      .addColumn('prev_hash', text, (c) => c.notNull())
      .addColumn('hash', text, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ix_audit_at').on('audit_log').column('at').execute();
    await db.schema.createIndex('ix_audit_action').on('audit_log').columns(['action', 'id']).execute();
  },
};
