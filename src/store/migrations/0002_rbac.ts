// Delegated access (issue 6): users, roles, role assignments, device groups, authorization codes, and what the
// apps table needs for public clients. Built-in roles and the "Ungrouped devices" group are rows, so role
// assignments can reference them with foreign keys like any other.
import { PostgresAdapter, sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { UNGROUPED_ID, UNGROUPED_NAME } from '../../core/deviceGroups.ts';
import { BUILT_IN_ROLES } from '../../core/rbac.ts';

/** Written as a literal: the migration must seed the same instant on every database it runs on. */
const SEEDED_AT = '2026-01-01T00:00:00.0000000Z';

export const rbac: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    const text = db.getExecutor().adapter instanceof PostgresAdapter ? sql`text collate "C"` : sql`text`;

    // Public clients (native apps, the web console) hold no secret; they name the redirect URIs codes may go to.
    await db.schema
      .alterTable('apps')
      .addColumn('public_client', 'integer', (c) => c.notNull().defaultTo(0).check(sql`public_client in (0, 1)`))
      .execute();
    await db.schema
      .alterTable('apps')
      .addColumn('redirect_uris', text, (c) => c.notNull().defaultTo('[]'))
      .execute();

    await db.schema
      .createTable('users')
      .addColumn('oid', text, (c) => c.primaryKey())
      .addColumn('upn', text, (c) => c.notNull())
      .addColumn('display_name', text, (c) => c.notNull())
      .addColumn('password_hash', text, (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull().check(sql`enabled in (0, 1)`))
      .addColumn('failed_logins', 'integer', (c) => c.notNull().check(sql`failed_logins >= 0`))
      .addColumn('locked_until', text)
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('updated_at', text, (c) => c.notNull())
      .execute();
    // UPNs compare case-insensitively, as Entra compares them.
    await db.schema.createIndex('ux_users_upn').on('users').expression(sql`lower(upn)`).unique().execute();

    await db.schema
      .createTable('rbac_roles')
      .addColumn('id', text, (c) => c.primaryKey())
      .addColumn('name', text, (c) => c.notNull())
      .addColumn('description', text, (c) => c.notNull())
      .addColumn('permissions', text, (c) => c.notNull())
      .addColumn('built_in', 'integer', (c) => c.notNull().check(sql`built_in in (0, 1)`))
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('updated_at', text, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ux_rbac_roles_name').on('rbac_roles').expression(sql`lower(name)`).unique().execute();
    for (const r of BUILT_IN_ROLES) {
      await db
        .insertInto('rbac_roles')
        .values({
          id: r.id,
          name: r.name,
          description: r.description,
          permissions: JSON.stringify(r.permissions),
          built_in: 1,
          created_at: SEEDED_AT,
          updated_at: SEEDED_AT,
        })
        .execute();
    }

    await db.schema
      .createTable('device_groups')
      .addColumn('id', 'bigint', (c) => c.primaryKey())
      .addColumn('name', text, (c) => c.notNull())
      .addColumn('description', text, (c) => c.notNull())
      // NULL only for the built-in Ungrouped devices, which is always tried last.
      .addColumn('rank', 'integer')
      .addColumn('rule', text)
      .addColumn('built_in', 'integer', (c) => c.notNull().check(sql`built_in in (0, 1)`))
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('updated_at', text, (c) => c.notNull())
      .addCheckConstraint('ck_device_groups_builtin_shape', sql`(built_in = 1) = (rank is null and rule is null)`)
      .execute();
    await db.schema.createIndex('ux_device_groups_name').on('device_groups').expression(sql`lower(name)`).unique().execute();
    await db
      .insertInto('device_groups')
      .values({
        id: UNGROUPED_ID,
        name: UNGROUPED_NAME,
        description: 'Devices no device group rule matches.',
        rank: null,
        rule: null,
        built_in: 1,
        created_at: SEEDED_AT,
        updated_at: SEEDED_AT,
      })
      .execute();

    // Device group ids are never reused: a deleted group's id must not silently grant access to a new group.
    await db.schema
      .createTable('id_counters')
      .addColumn('name', text, (c) => c.primaryKey())
      .addColumn('value', 'bigint', (c) => c.notNull())
      .execute();
    await db.insertInto('id_counters').values({ name: 'device_group', value: 0 }).execute();

    await db.schema
      .createTable('role_assignments')
      .addColumn('id', text, (c) => c.primaryKey())
      // 'user': a local user's oid; 'group': a `groups` claim value of an external token; 'upn': an external UPN.
      .addColumn('assignee_kind', text, (c) => c.notNull().check(sql`assignee_kind in ('user', 'group', 'upn')`))
      .addColumn('assignee', text, (c) => c.notNull())
      .addColumn('role_id', text, (c) => c.notNull().references('rbac_roles.id'))
      .addColumn('all_groups', 'integer', (c) => c.notNull().check(sql`all_groups in (0, 1)`))
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('updated_at', text, (c) => c.notNull())
      .addUniqueConstraint('ux_role_assignments_assignee_role', ['assignee_kind', 'assignee', 'role_id'])
      .execute();
    await db.schema.createIndex('ix_role_assignments_role').on('role_assignments').column('role_id').execute();

    await db.schema
      .createTable('role_assignment_groups')
      .addColumn('assignment_id', text, (c) => c.notNull().references('role_assignments.id').onDelete('cascade'))
      .addColumn('group_id', 'bigint', (c) => c.notNull().references('device_groups.id').onDelete('cascade'))
      .addPrimaryKeyConstraint('pk_role_assignment_groups', ['assignment_id', 'group_id'])
      .execute();
    await db.schema.createIndex('ix_role_assignment_groups_group').on('role_assignment_groups').column('group_id').execute();

    await db.schema
      .createTable('auth_codes')
      .addColumn('code_hash', text, (c) => c.primaryKey())
      .addColumn('client_id', text, (c) => c.notNull())
      .addColumn('redirect_uri', text, (c) => c.notNull())
      .addColumn('code_challenge', text, (c) => c.notNull())
      .addColumn('user_oid', text, (c) => c.notNull())
      .addColumn('audience', text, (c) => c.notNull())
      .addColumn('scopes', text, (c) => c.notNull())
      .addColumn('created_at', text, (c) => c.notNull())
      .addColumn('expires_at', text, (c) => c.notNull())
      .addColumn('used_at', text)
      .execute();
    await db.schema.createIndex('ix_auth_codes_expiry').on('auth_codes').column('expires_at').execute();
  },
};
