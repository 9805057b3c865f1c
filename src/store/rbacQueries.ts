// The RBAC tables (users, roles, role assignments, device groups, authorization codes) as queries over one
// connection or transaction. KyselyStore decides the transaction boundaries and locks; these functions only read
// and write rows, so each runs the same on SQLite and PostgreSQL.
import { sql } from 'kysely';
import type { Kysely, SqlBool } from 'kysely';
import { byRank, placeMachine, UNGROUPED_ID, type RankedGroup } from '../core/deviceGroups.ts';
import type { Machine } from '../core/machines.ts';
import type { RbacPermission } from '../core/permissions.ts';
import { isGuid } from '../core/validation.ts';
import { RbacConflictError, isForeignKeyViolation, isUniqueViolation } from './rbacErrors.ts';
import {
  assignmentFromRow,
  assignmentToRow,
  authCodeFromRow,
  authCodeToRow,
  deviceGroupFromRow,
  json,
  roleFromRow,
  roleToRow,
  userFromRow,
  userToRow,
} from './rowMapping.ts';
import type { Database, DeviceGroupsTable, RoleAssignmentsTable } from './schema.ts';
import type {
  AssigneeKind,
  AuthCodeRecord,
  AuthCodeRedemption,
  DeviceGroupPatch,
  DeviceGroupRecord,
  EffectiveRoleAssignment,
  NewDeviceGroup,
  RoleAssignmentRecord,
  RoleRecord,
  UserPatch,
  UserRecord,
} from './store.ts';

type Db = Kysely<Database>;

/** Group claim values and UPNs a single token may bring into one lookup (Entra caps `groups` at 200). */
const MAX_GROUP_CLAIMS = 256;
const UPDATE_CHUNK = 500;

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** How an assignee is stored: UPNs and GUID group ids case-folded (Entra compares them so), names as given. */
export function normalizeAssignee(kind: AssigneeKind, assignee: string): string {
  if (kind === 'upn' || kind === 'user' || isGuid(assignee)) return assignee.toLowerCase();
  return assignee;
}

// ---- users ---------------------------------------------------------------------------------------------------

export async function insertUser(db: Db, u: UserRecord): Promise<void> {
  try {
    await db.insertInto('users').values(userToRow(u)).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new RbacConflictError('duplicate', `A user with UPN ${u.upn} already exists`);
    throw err;
  }
}

export async function selectUser(db: Db, oid: string): Promise<UserRecord | null> {
  const r = await db.selectFrom('users').selectAll().where('oid', '=', oid.toLowerCase()).executeTakeFirst();
  return r ? userFromRow(r) : null;
}

export async function selectUserByUpn(db: Db, upn: string): Promise<UserRecord | null> {
  const r = await db
    .selectFrom('users')
    .selectAll()
    .where(sql<SqlBool>`lower(upn) = lower(${upn})`)
    .executeTakeFirst();
  return r ? userFromRow(r) : null;
}

export async function selectUsers(db: Db): Promise<UserRecord[]> {
  const rows = await db.selectFrom('users').selectAll().orderBy(sql`lower(upn)`).orderBy('oid').execute();
  return rows.map(userFromRow);
}

export async function patchUser(db: Db, oid: string, patch: UserPatch, at: string): Promise<UserRecord | null> {
  const set: Record<string, unknown> = { updated_at: at };
  if (patch.upn !== undefined) set.upn = patch.upn;
  if (patch.displayName !== undefined) set.display_name = patch.displayName;
  if (patch.passwordHash !== undefined) set.password_hash = patch.passwordHash;
  if (patch.enabled !== undefined) set.enabled = patch.enabled ? 1 : 0;
  if (patch.failedLogins !== undefined) set.failed_logins = patch.failedLogins;
  if (patch.lockedUntil !== undefined) set.locked_until = patch.lockedUntil;
  try {
    const r = await db.updateTable('users').set(set).where('oid', '=', oid.toLowerCase()).returningAll().executeTakeFirst();
    return r ? userFromRow(r) : null;
  } catch (err) {
    if (isUniqueViolation(err)) throw new RbacConflictError('duplicate', `A user with UPN ${String(patch.upn)} already exists`);
    throw err;
  }
}

export async function removeUser(db: Db, oid: string): Promise<boolean> {
  const key = oid.toLowerCase();
  await db.deleteFrom('role_assignments').where('assignee_kind', '=', 'user').where('assignee', '=', key).execute();
  const r = await db.deleteFrom('users').where('oid', '=', key).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Counts a failure; the row is locked by the UPDATE, so the lock decision below sees every concurrent failure. */
export async function countLoginFailure(db: Db, oid: string, maxFailures: number, lockUntil: string): Promise<UserRecord | null> {
  const counted = await db
    .updateTable('users')
    .set((eb) => ({ failed_logins: eb('failed_logins', '+', 1) }))
    .where('oid', '=', oid.toLowerCase())
    .returningAll()
    .executeTakeFirst();
  if (!counted) return null;
  if (Number(counted.failed_logins) < maxFailures) return userFromRow(counted);
  const locked = await db
    .updateTable('users')
    .set({ failed_logins: 0, locked_until: lockUntil })
    .where('oid', '=', counted.oid)
    .returningAll()
    .executeTakeFirstOrThrow();
  return userFromRow(locked);
}

export async function clearLoginFailures(db: Db, oid: string): Promise<void> {
  await db
    .updateTable('users')
    .set({ failed_logins: 0, locked_until: null })
    .where('oid', '=', oid.toLowerCase())
    // Most sign-ins follow no failure: skip the write (and its fsync) then.
    .where((eb) => eb.or([eb('failed_logins', '>', 0), eb('locked_until', 'is not', null)]))
    .execute();
}

// ---- roles ---------------------------------------------------------------------------------------------------

export async function selectRoles(db: Db): Promise<RoleRecord[]> {
  const rows = await db.selectFrom('rbac_roles').selectAll().orderBy('built_in', 'desc').orderBy(sql`lower(name)`).execute();
  return rows.map(roleFromRow);
}

export async function selectRole(db: Db, id: string): Promise<RoleRecord | null> {
  const r = await db.selectFrom('rbac_roles').selectAll().where('id', '=', id.toLowerCase()).executeTakeFirst();
  return r ? roleFromRow(r) : null;
}

export async function selectRoleByName(db: Db, name: string): Promise<RoleRecord | null> {
  const r = await db
    .selectFrom('rbac_roles')
    .selectAll()
    .where(sql<SqlBool>`lower(name) = lower(${name})`)
    .executeTakeFirst();
  return r ? roleFromRow(r) : null;
}

export async function insertRole(db: Db, r: RoleRecord): Promise<void> {
  try {
    await db.insertInto('rbac_roles').values(roleToRow(r)).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new RbacConflictError('duplicate', `A role named ${r.name} already exists`);
    throw err;
  }
}

export async function patchRole(
  db: Db,
  id: string,
  patch: Partial<Pick<RoleRecord, 'name' | 'description' | 'permissions'>>,
  at: string,
): Promise<RoleRecord | null> {
  const current = await selectRole(db, id);
  if (!current) return null;
  if (current.builtIn) throw new RbacConflictError('builtIn', `The built-in role ${current.name} cannot be changed`);
  const set: Record<string, unknown> = { updated_at: at };
  if (patch.name !== undefined) set.name = patch.name;
  if (patch.description !== undefined) set.description = patch.description;
  if (patch.permissions !== undefined) set.permissions = json(patch.permissions);
  try {
    const r = await db.updateTable('rbac_roles').set(set).where('id', '=', current.id).returningAll().executeTakeFirstOrThrow();
    return roleFromRow(r);
  } catch (err) {
    if (isUniqueViolation(err)) throw new RbacConflictError('duplicate', `A role named ${String(patch.name)} already exists`);
    throw err;
  }
}

export async function removeRole(db: Db, id: string): Promise<boolean> {
  const current = await selectRole(db, id);
  if (!current) return false;
  if (current.builtIn) throw new RbacConflictError('builtIn', `The built-in role ${current.name} cannot be deleted`);
  const used = await db
    .selectFrom('role_assignments')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('role_id', '=', current.id)
    .executeTakeFirstOrThrow();
  if (Number(used.n) > 0) {
    throw new RbacConflictError('inUse', `The role ${current.name} is assigned ${Number(used.n)} time(s); remove the assignments first`);
  }
  await db.deleteFrom('rbac_roles').where('id', '=', current.id).execute();
  return true;
}

// ---- role assignments ----------------------------------------------------------------------------------------

async function groupsOf(db: Db, assignmentIds: readonly string[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const part of chunk(assignmentIds, UPDATE_CHUNK)) {
    if (part.length === 0) continue;
    const rows = await db
      .selectFrom('role_assignment_groups')
      .select(['assignment_id', 'group_id'])
      .where('assignment_id', 'in', part)
      .execute();
    for (const r of rows) {
      const list = out.get(r.assignment_id) ?? [];
      list.push(Number(r.group_id));
      out.set(r.assignment_id, list);
    }
  }
  return out;
}

async function withGroups(db: Db, rows: RoleAssignmentsTable[]): Promise<RoleAssignmentRecord[]> {
  const groups = await groupsOf(db, rows.map((r) => r.id));
  return rows.map((r) => assignmentFromRow(r, groups.get(r.id) ?? []));
}

export async function upsertAssignment(db: Db, a: RoleAssignmentRecord): Promise<RoleAssignmentRecord> {
  const assignee = normalizeAssignee(a.assigneeKind, a.assignee);
  const roleId = a.roleId.toLowerCase();
  if (!(await selectRole(db, roleId))) throw new RbacConflictError('missingReference', `No role with id ${a.roleId}`);
  if (a.assigneeKind === 'user' && !(await selectUser(db, assignee))) {
    throw new RbacConflictError('missingReference', `No user with oid ${a.assignee}`);
  }
  const groupIds = a.allGroups ? [] : [...new Set(a.deviceGroupIds)];
  if (groupIds.length > 0) {
    const found = await db.selectFrom('device_groups').select('id').where('id', 'in', groupIds).execute();
    const known = new Set(found.map((g) => Number(g.id)));
    const missing = groupIds.filter((g) => !known.has(g));
    if (missing.length > 0) throw new RbacConflictError('missingReference', `No device group with id ${missing.join(', ')}`);
  }
  const existing = await db
    .selectFrom('role_assignments')
    .selectAll()
    .where('assignee_kind', '=', a.assigneeKind)
    .where('assignee', '=', assignee)
    .where('role_id', '=', roleId)
    .executeTakeFirst();
  let row: RoleAssignmentsTable;
  if (existing) {
    row = await db
      .updateTable('role_assignments')
      .set({ all_groups: a.allGroups ? 1 : 0, updated_at: a.updatedAt })
      .where('id', '=', existing.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await db.deleteFrom('role_assignment_groups').where('assignment_id', '=', existing.id).execute();
  } else {
    row = assignmentToRow({ ...a, assignee, roleId });
    try {
      await db.insertInto('role_assignments').values(row).execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new RbacConflictError('duplicate', 'That role is already assigned to that assignee');
      throw err;
    }
  }
  for (const part of chunk(groupIds, UPDATE_CHUNK)) {
    try {
      await db
        .insertInto('role_assignment_groups')
        .values(part.map((group_id) => ({ assignment_id: row.id, group_id })))
        .execute();
    } catch (err) {
      // A group deleted by another node between the check above and here.
      if (isForeignKeyViolation(err)) throw new RbacConflictError('missingReference', 'A device group of the assignment no longer exists');
      throw err;
    }
  }
  return assignmentFromRow(row, groupIds);
}

export async function selectAssignments(
  db: Db,
  filter: { assigneeKind?: AssigneeKind; assignee?: string; roleId?: string } = {},
): Promise<RoleAssignmentRecord[]> {
  let q = db.selectFrom('role_assignments').selectAll();
  if (filter.assigneeKind !== undefined) q = q.where('assignee_kind', '=', filter.assigneeKind);
  if (filter.assignee !== undefined) {
    q = q.where('assignee', '=', normalizeAssignee(filter.assigneeKind ?? 'group', filter.assignee));
  }
  if (filter.roleId !== undefined) q = q.where('role_id', '=', filter.roleId.toLowerCase());
  const rows = await q.orderBy('created_at').orderBy('id').execute();
  return withGroups(db, rows);
}

export async function selectAssignment(db: Db, id: string): Promise<RoleAssignmentRecord | null> {
  const r = await db.selectFrom('role_assignments').selectAll().where('id', '=', id.toLowerCase()).executeTakeFirst();
  return r ? ((await withGroups(db, [r]))[0] ?? null) : null;
}

export async function removeAssignment(db: Db, id: string): Promise<boolean> {
  const r = await db.deleteFrom('role_assignments').where('id', '=', id.toLowerCase()).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function effectiveAssignments(
  db: Db,
  who: { userOid?: string; groups?: readonly string[]; upn?: string },
): Promise<EffectiveRoleAssignment[]> {
  const groups = [...new Set((who.groups ?? []).slice(0, MAX_GROUP_CLAIMS).map((g) => normalizeAssignee('group', g)))];
  if (!who.userOid && groups.length === 0 && !who.upn) return [];
  const rows = await db
    .selectFrom('role_assignments as ra')
    .innerJoin('rbac_roles as r', 'r.id', 'ra.role_id')
    .selectAll('ra')
    .select(['r.name as role_name', 'r.permissions as role_permissions'])
    .where((eb) => {
      const anyOf = [];
      if (who.userOid) anyOf.push(eb.and([eb('ra.assignee_kind', '=', 'user'), eb('ra.assignee', '=', who.userOid.toLowerCase())]));
      if (groups.length > 0) anyOf.push(eb.and([eb('ra.assignee_kind', '=', 'group'), eb('ra.assignee', 'in', groups)]));
      if (who.upn) anyOf.push(eb.and([eb('ra.assignee_kind', '=', 'upn'), eb('ra.assignee', '=', who.upn.toLowerCase())]));
      return eb.or(anyOf);
    })
    .orderBy('ra.created_at')
    .orderBy('ra.id')
    .execute();
  const groupMap = await groupsOf(db, rows.map((r) => r.id));
  return rows.map((r) => {
    const { role_name, role_permissions, ...assignment } = r;
    return {
      ...assignmentFromRow(assignment, groupMap.get(r.id) ?? []),
      roleName: role_name,
      permissions: JSON.parse(role_permissions) as RbacPermission[],
    };
  });
}

// ---- device groups and machine placement ---------------------------------------------------------------------

/** The ranked rule groups (the built-in Ungrouped devices is the fallback, not a rule). */
export async function rankedGroups(db: Db): Promise<RankedGroup[]> {
  const rows = await db.selectFrom('device_groups').selectAll().where('built_in', '=', 0).execute();
  return rows.map((r) => toRanked(r)).sort(byRank);
}

function toRanked(r: DeviceGroupsTable): RankedGroup {
  return { id: Number(r.id), name: r.name, rank: Number(r.rank), rule: JSON.parse(r.rule ?? '{}') as RankedGroup['rule'] };
}

/** The machine as the rules place it; while no rule group exists, as its writer gave it. */
export function placed(m: Machine, groups: readonly RankedGroup[]): Machine {
  if (groups.length === 0) return m;
  return { ...m, ...placeMachine(groups, m) };
}

/** Re-places every machine by `groups` (none: back to "no group", 0 / null); returns how many changed. */
export async function regroupAll(db: Db, groups: readonly RankedGroup[]): Promise<number> {
  const rows = await db
    .selectFrom('machines')
    .select(['id', 'computer_dns_name', 'domain', 'os_platform', 'machine_tags', 'enroll_group', 'rbac_group_id', 'rbac_group_name'])
    .execute();
  const moves = new Map<string, { id: number; name: string | null; machines: string[] }>();
  for (const r of rows) {
    const target =
      groups.length === 0
        ? { rbacGroupId: UNGROUPED_ID, rbacGroupName: null }
        : placeMachine(groups, {
            computerDnsName: r.computer_dns_name,
            domain: r.domain,
            osPlatform: r.os_platform,
            machineTags: JSON.parse(r.machine_tags) as string[],
            enrollGroup: r.enroll_group,
          });
    if (Number(r.rbac_group_id) === target.rbacGroupId && r.rbac_group_name === target.rbacGroupName) continue;
    const key = `${target.rbacGroupId}\n${target.rbacGroupName ?? ''}`;
    const move = moves.get(key) ?? { id: target.rbacGroupId, name: target.rbacGroupName, machines: [] };
    move.machines.push(r.id);
    moves.set(key, move);
  }
  let moved = 0;
  for (const move of moves.values()) {
    for (const part of chunk(move.machines, UPDATE_CHUNK)) {
      await db.updateTable('machines').set({ rbac_group_id: move.id, rbac_group_name: move.name }).where('id', 'in', part).execute();
      moved += part.length;
    }
  }
  return moved;
}

export async function selectDeviceGroups(db: Db): Promise<DeviceGroupRecord[]> {
  const rows = await db.selectFrom('device_groups').selectAll().execute();
  const custom = rows.filter((r) => r.built_in === 0).length;
  return rows
    .map((r) => deviceGroupFromRow(r, custom + 1))
    .sort((a, b) => a.rank - b.rank || a.id - b.id);
}

export async function selectDeviceGroup(db: Db, id: number): Promise<DeviceGroupRecord | null> {
  return (await selectDeviceGroups(db)).find((g) => g.id === id) ?? null;
}

async function nextDeviceGroupId(db: Db): Promise<number> {
  const r = await db
    .updateTable('id_counters')
    .set((eb) => ({ value: eb('value', '+', 1) }))
    .where('name', '=', 'device_group')
    .returning('value')
    .executeTakeFirstOrThrow();
  return Number(r.value);
}

async function assertNameFree(db: Db, name: string, exceptId: number | null): Promise<void> {
  const clash = await db
    .selectFrom('device_groups')
    .select('id')
    .where(sql<SqlBool>`lower(name) = lower(${name})`)
    .executeTakeFirst();
  if (clash && Number(clash.id) !== exceptId) throw new RbacConflictError('duplicate', `A device group named ${name} already exists`);
}

/** Writes ranks 1..n in the given order, touching only rows whose rank changes. */
async function writeRanks(db: Db, ordered: readonly RankedGroup[], before: ReadonlyMap<number, number>, at: string): Promise<void> {
  for (let i = 0; i < ordered.length; i++) {
    const g = ordered[i]!;
    if (before.get(g.id) === i + 1) continue;
    await db.updateTable('device_groups').set({ rank: i + 1, updated_at: at }).where('id', '=', g.id).execute();
  }
}

/** `rank` (1-based) clamped into the list; null = last. */
function insertAt<T>(list: readonly T[], item: T, rank: number | null): T[] {
  const out = [...list];
  const index = rank === null ? out.length : Math.min(Math.max(rank - 1, 0), out.length);
  out.splice(index, 0, item);
  return out;
}

export async function insertDeviceGroup(db: Db, g: NewDeviceGroup, at: string): Promise<{ group: DeviceGroupRecord; moved: number }> {
  await assertNameFree(db, g.name, null);
  const current = await rankedGroups(db);
  const before = new Map(current.map((x) => [x.id, x.rank]));
  const id = await nextDeviceGroupId(db);
  const fresh: RankedGroup = { id, name: g.name, rank: 0, rule: g.rule };
  const ordered = insertAt(current, fresh, g.rank);
  const rank = ordered.indexOf(fresh) + 1;
  try {
    await db
      .insertInto('device_groups')
      .values({ id, name: g.name, description: g.description, rank, rule: json(g.rule), built_in: 0, created_at: at, updated_at: at })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new RbacConflictError('duplicate', `A device group named ${g.name} already exists`);
    throw err;
  }
  before.set(id, rank);
  await writeRanks(db, ordered, before, at);
  const final = ordered.map((x, i) => ({ ...x, rank: i + 1 }));
  const moved = await regroupAll(db, final);
  return { group: (await selectDeviceGroup(db, id))!, moved };
}

export async function patchDeviceGroup(
  db: Db,
  id: number,
  patch: DeviceGroupPatch,
  at: string,
): Promise<{ group: DeviceGroupRecord; moved: number } | null> {
  const existing = await db.selectFrom('device_groups').selectAll().where('id', '=', id).executeTakeFirst();
  if (!existing) return null;
  if (existing.built_in === 1) throw new RbacConflictError('builtIn', `${existing.name} is built in and cannot be changed`);
  if (patch.name !== undefined) await assertNameFree(db, patch.name, id);
  const set: Record<string, unknown> = { updated_at: at };
  if (patch.name !== undefined) set.name = patch.name;
  if (patch.description !== undefined) set.description = patch.description;
  if (patch.rule !== undefined) set.rule = json(patch.rule);
  try {
    await db.updateTable('device_groups').set(set).where('id', '=', id).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new RbacConflictError('duplicate', `A device group named ${String(patch.name)} already exists`);
    throw err;
  }
  const current = await rankedGroups(db);
  const before = new Map(current.map((x) => [x.id, x.rank]));
  let ordered = current;
  if (patch.rank !== undefined) {
    const self = current.find((x) => x.id === id)!;
    ordered = insertAt(
      current.filter((x) => x.id !== id),
      self,
      patch.rank,
    );
  }
  await writeRanks(db, ordered, before, at);
  const moved = await regroupAll(db, ordered.map((x, i) => ({ ...x, rank: i + 1 })));
  return { group: (await selectDeviceGroup(db, id))!, moved };
}

export async function removeDeviceGroup(db: Db, id: number, at: string): Promise<{ moved: number } | null> {
  const existing = await db.selectFrom('device_groups').selectAll().where('id', '=', id).executeTakeFirst();
  if (!existing) return null;
  if (existing.built_in === 1) throw new RbacConflictError('builtIn', `${existing.name} is built in and cannot be deleted`);
  await db.deleteFrom('device_groups').where('id', '=', id).execute();
  const remaining = await rankedGroups(db);
  await writeRanks(db, remaining, new Map(remaining.map((x) => [x.id, x.rank])), at);
  const moved = await regroupAll(db, remaining.map((x, i) => ({ ...x, rank: i + 1 })));
  return { moved };
}

// ---- authorization codes -------------------------------------------------------------------------------------

export async function insertAuthCode(db: Db, c: AuthCodeRecord): Promise<void> {
  // Expired codes are worthless; clearing them here keeps the table at about ten minutes of sign-ins.
  await db.deleteFrom('auth_codes').where('expires_at', '<', c.createdAt).execute();
  await db.insertInto('auth_codes').values(authCodeToRow(c)).execute();
}

export async function redeemCode(db: Db, codeHash: string, now: string): Promise<AuthCodeRedemption> {
  // One statement decides and consumes: two racing redemptions cannot both succeed.
  const won = await db
    .updateTable('auth_codes')
    .set({ used_at: now })
    .where('code_hash', '=', codeHash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .returningAll()
    .executeTakeFirst();
  if (won) return { outcome: 'redeemed', code: authCodeFromRow(won) };
  const row = await db.selectFrom('auth_codes').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
  if (!row) return { outcome: 'unknown' };
  return { outcome: row.used_at !== null ? 'alreadyUsed' : 'expired', code: authCodeFromRow(row) };
}
