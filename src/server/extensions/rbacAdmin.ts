// Managing delegated access — users, roles, role assignments, device groups, public client apps — with the same
// validation and the same audit records whether the change comes through the REST API or the CLI. Input is
// untrusted JSON-ish values; every refusal is an RbacInputError (or the store's RbacConflictError) naming why.
import { parseRule, RuleError, type DeviceGroupRule } from '../../core/deviceGroups.ts';
import { newGuid } from '../../core/ids.ts';
import type { RbacPermission } from '../../core/permissions.ts';
import { displayNameProblem, MAX_DESCRIPTION_LENGTH, parsePermissions } from '../../core/rbac.ts';
import { toWireTimestamp, timestampToMillis } from '../../core/time.ts';
import { isGuid } from '../../core/validation.ts';
import { RbacConflictError } from '../../store/rbacErrors.ts';
import type {
  AssigneeKind,
  DeviceGroupPatch,
  DeviceGroupRecord,
  NewAuditEntry,
  RoleAssignmentRecord,
  RoleRecord,
  Store,
  UserPatch,
  UserRecord,
} from '../../store/store.ts';
import { parseRedirectUris } from '../auth/redirectUris.ts';
import { hashSecret } from '../auth/secrets.ts';
import { nowTimestamp } from '../clock.ts';

export class RbacInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RbacInputError';
  }
}

/** Who is making the change, for the audit record. */
export type AdminActor = Pick<NewAuditEntry, 'actorType' | 'actorId' | 'actorName' | 'clientIp' | 'correlationId'>;

export interface AdminDeps {
  store: Store;
  actor: AdminActor;
  /** Called after every successful change (the API uses it to drop this node's cached role lookups). */
  onChange?: () => void;
}

export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 256;
const MAX_UPN_LENGTH = 256;
const UPN = /^[^\s@]+@[^\s@]+$/;
const MAX_ASSIGNEE_LENGTH = 256;

// ---- views (what the API returns and the CLI prints; never hashes) ---------------------------------------------

export interface UserView {
  oid: string;
  upn: string;
  displayName: string;
  enabled: boolean;
  lockedUntil: string | null;
  createdAt: string;
  updatedAt: string;
}

export function userView(u: UserRecord, nowMs = Date.now()): UserView {
  const locked = u.lockedUntil !== null && timestampToMillis(u.lockedUntil) > nowMs;
  return {
    oid: u.oid,
    upn: u.upn,
    displayName: u.displayName,
    enabled: u.enabled,
    lockedUntil: locked ? toWireTimestamp(u.lockedUntil!) : null,
    createdAt: toWireTimestamp(u.createdAt),
    updatedAt: toWireTimestamp(u.updatedAt),
  };
}

export function roleView(r: RoleRecord) {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    permissions: r.permissions,
    builtIn: r.builtIn,
    createdAt: toWireTimestamp(r.createdAt),
    updatedAt: toWireTimestamp(r.updatedAt),
  };
}

export function assignmentView(a: RoleAssignmentRecord, roles: ReadonlyMap<string, RoleRecord>) {
  return {
    id: a.id,
    assigneeKind: a.assigneeKind,
    assignee: a.assignee,
    roleId: a.roleId,
    roleName: roles.get(a.roleId)?.name ?? null,
    allDeviceGroups: a.allGroups,
    deviceGroupIds: a.deviceGroupIds,
    createdAt: toWireTimestamp(a.createdAt),
    updatedAt: toWireTimestamp(a.updatedAt),
  };
}

export function deviceGroupView(g: DeviceGroupRecord) {
  return {
    id: g.id,
    name: g.name,
    description: g.description,
    rank: g.rank,
    rule: g.rule,
    builtIn: g.builtIn,
    createdAt: toWireTimestamp(g.createdAt),
    updatedAt: toWireTimestamp(g.updatedAt),
  };
}

// ---- input rules --------------------------------------------------------------------------------------------

function fail(message: string): never {
  throw new RbacInputError(message);
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(`${key} must be a string`);
  if (v.includes('\u0000')) fail(`${key} must not contain NUL characters`);
  return v;
}

function optionalBoolean(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(`${key} must be true or false`);
  return v;
}

function checkUpn(upn: unknown): string {
  if (typeof upn !== 'string' || upn.length === 0) fail('upn is required');
  if (upn.length > MAX_UPN_LENGTH || !UPN.test(upn) || /[\u0000-\u001f\u007f,]/.test(upn)) {
    fail(`upn must look like name@domain (at most ${MAX_UPN_LENGTH} characters, no spaces or commas)`);
  }
  return upn;
}

function checkPassword(password: unknown, upn: string): string {
  if (typeof password !== 'string' || password.length === 0) fail('password is required');
  if (password.length < MIN_PASSWORD_LENGTH) fail(`password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_PASSWORD_LENGTH) fail(`password must be at most ${MAX_PASSWORD_LENGTH} characters`);
  if (password.toLowerCase() === upn.toLowerCase()) fail('password must not be the user name');
  return password;
}

function checkName(name: unknown, what: string): string {
  const problem = displayNameProblem(name, what);
  if (problem) fail(problem);
  return name as string;
}

function checkDescription(d: unknown): string {
  if (d === undefined) return '';
  if (typeof d !== 'string') fail('description must be a string');
  if (d.length > MAX_DESCRIPTION_LENGTH || /[\u0000]/.test(d)) fail(`description must be at most ${MAX_DESCRIPTION_LENGTH} characters`);
  return d;
}

function checkPermissions(p: unknown): RbacPermission[] {
  const parsed = parsePermissions(p);
  if (typeof parsed === 'string') fail(parsed);
  return parsed;
}

function checkRule(rule: unknown): DeviceGroupRule {
  try {
    return parseRule(rule);
  } catch (err) {
    if (err instanceof RuleError) fail(err.message);
    throw err;
  }
}

function checkRank(rank: unknown): number | null {
  if (rank === undefined || rank === null) return null;
  if (typeof rank !== 'number' || !Number.isSafeInteger(rank) || rank < 1) fail('rank must be a positive integer');
  return rank;
}

const ASSIGNEE_KINDS: readonly AssigneeKind[] = ['user', 'group', 'upn'];

// ---- the service ----------------------------------------------------------------------------------------------

export class RbacAdmin {
  constructor(private readonly deps: AdminDeps) {}

  private get store(): Store {
    return this.deps.store;
  }

  private async audit(action: string, target: string | null, detail: unknown): Promise<void> {
    await this.store.appendAudit({
      ...this.deps.actor,
      at: nowTimestamp(),
      action,
      target,
      result: 'success',
      status: null,
      detail,
    });
  }

  private changed(): void {
    this.deps.onChange?.();
  }

  // users

  async listUsers(): Promise<UserView[]> {
    return (await this.store.listUsers()).map((u) => userView(u));
  }

  /** A user by oid or UPN. */
  async findUser(idOrUpn: string): Promise<UserRecord | null> {
    return isGuid(idOrUpn) ? this.store.getUser(idOrUpn) : this.store.findUserByUpn(idOrUpn);
  }

  async createUser(body: Record<string, unknown>): Promise<{ user: UserView; assignments: RoleAssignmentRecord[] }> {
    for (const key of Object.keys(body)) {
      if (!['upn', 'password', 'displayName', 'enabled', 'roles', 'deviceGroups'].includes(key)) fail(`unknown property ${key}`);
    }
    const upn = checkUpn(body.upn);
    const password = checkPassword(body.password, upn);
    const displayName = body.displayName === undefined ? upn.split('@')[0]! : checkName(body.displayName, 'displayName');
    const enabled = optionalBoolean(body, 'enabled') ?? true;
    const grants = body.roles === undefined ? [] : await this.parseGrants(body.roles, body.deviceGroups);
    if (await this.store.findUserByUpn(upn)) throw new RbacConflictError('duplicate', `A user with UPN ${upn} already exists`);
    const at = nowTimestamp();
    const user: UserRecord = {
      oid: newGuid(),
      upn,
      displayName,
      passwordHash: await hashSecret(password),
      enabled,
      failedLogins: 0,
      lockedUntil: null,
      createdAt: at,
      updatedAt: at,
    };
    await this.store.createUser(user);
    await this.audit('user.create', user.oid, { upn, displayName, enabled });
    const assignments: RoleAssignmentRecord[] = [];
    for (const g of grants) assignments.push(await this.putAssignment('user', user.oid, g.role, g.deviceGroups));
    this.changed();
    return { user: userView(user), assignments };
  }

  async updateUser(oid: string, body: Record<string, unknown>): Promise<UserView | null> {
    for (const key of Object.keys(body)) {
      if (!['upn', 'displayName', 'enabled', 'password', 'unlock'].includes(key)) fail(`unknown property ${key}`);
    }
    const current = await this.findUser(oid);
    if (!current) return null;
    const patch: UserPatch = {};
    const changes: Record<string, unknown> = {};
    if (body.upn !== undefined) patch.upn = changes.upn = checkUpn(body.upn);
    if (body.displayName !== undefined) patch.displayName = changes.displayName = checkName(body.displayName, 'displayName');
    const enabled = optionalBoolean(body, 'enabled');
    if (enabled !== undefined) patch.enabled = changes.enabled = enabled;
    if (body.password !== undefined) {
      patch.passwordHash = await hashSecret(checkPassword(body.password, patch.upn ?? current.upn));
      changes.password = 'changed';
    }
    if (optionalBoolean(body, 'unlock') === true) {
      patch.failedLogins = 0;
      patch.lockedUntil = null;
      changes.unlocked = true;
    }
    const updated = await this.store.updateUser(current.oid, patch, nowTimestamp());
    if (!updated) return null;
    await this.audit('user.update', current.oid, { upn: updated.upn, changes });
    this.changed();
    return userView(updated);
  }

  async deleteUser(oid: string): Promise<boolean> {
    const current = await this.findUser(oid);
    if (!current || !(await this.store.deleteUser(current.oid))) return false;
    await this.audit('user.delete', current.oid, { upn: current.upn });
    this.changed();
    return true;
  }

  // roles

  listRoles(): Promise<RoleRecord[]> {
    return this.store.listRoles();
  }

  /** A role by id or (case-insensitive) name. */
  async findRole(idOrName: string): Promise<RoleRecord | null> {
    if (isGuid(idOrName)) return this.store.getRole(idOrName);
    return this.store.findRoleByName(idOrName);
  }

  async createRole(body: Record<string, unknown>): Promise<RoleRecord> {
    const name = checkName(body.name, 'name');
    if (isGuid(name)) fail('a role name must not be a GUID');
    const description = checkDescription(body.description);
    const permissions = checkPermissions(body.permissions);
    for (const key of Object.keys(body)) if (!['name', 'description', 'permissions'].includes(key)) fail(`unknown property ${key}`);
    const at = nowTimestamp();
    const role: RoleRecord = { id: newGuid(), name, description, permissions, builtIn: false, createdAt: at, updatedAt: at };
    await this.store.createRole(role);
    await this.audit('role.create', role.id, { name, permissions });
    this.changed();
    return role;
  }

  async updateRole(idOrName: string, body: Record<string, unknown>): Promise<RoleRecord | null> {
    const current = await this.findRole(idOrName);
    if (!current) return null;
    const patch: Partial<Pick<RoleRecord, 'name' | 'description' | 'permissions'>> = {};
    if (body.name !== undefined) {
      patch.name = checkName(body.name, 'name');
      if (isGuid(patch.name)) fail('a role name must not be a GUID');
    }
    if (body.description !== undefined) patch.description = checkDescription(body.description);
    if (body.permissions !== undefined) patch.permissions = checkPermissions(body.permissions);
    for (const key of Object.keys(body)) if (!['name', 'description', 'permissions'].includes(key)) fail(`unknown property ${key}`);
    const updated = await this.store.updateRole(current.id, patch, nowTimestamp());
    if (!updated) return null;
    await this.audit('role.update', current.id, { name: updated.name, changes: patch });
    this.changed();
    return updated;
  }

  async deleteRole(idOrName: string): Promise<boolean> {
    const current = await this.findRole(idOrName);
    if (!current || !(await this.store.deleteRole(current.id))) return false;
    await this.audit('role.delete', current.id, { name: current.name });
    this.changed();
    return true;
  }

  // role assignments

  listAssignments(filter: { assigneeKind?: AssigneeKind; assignee?: string; roleId?: string } = {}): Promise<RoleAssignmentRecord[]> {
    return this.store.listRoleAssignments(filter);
  }

  /** `{assigneeKind, assignee, role, deviceGroups}`; assignee of kind 'user' may be an oid or a UPN. */
  async assignRole(body: Record<string, unknown>): Promise<RoleAssignmentRecord> {
    const kind = body.assigneeKind;
    if (typeof kind !== 'string' || !ASSIGNEE_KINDS.includes(kind as AssigneeKind)) fail(`assigneeKind must be one of ${ASSIGNEE_KINDS.join(', ')}`);
    const assigneeKind = kind as AssigneeKind;
    let assignee = body.assignee;
    if (typeof assignee !== 'string' || assignee.length === 0 || assignee.length > MAX_ASSIGNEE_LENGTH || /[\u0000-\u001f\u007f]/.test(assignee)) {
      fail(`assignee must be a non-empty string of at most ${MAX_ASSIGNEE_LENGTH} characters`);
    }
    if (assigneeKind === 'user') {
      const user = await this.findUser(assignee);
      if (!user) fail(`no user ${assignee}`);
      assignee = user.oid;
    }
    if (assigneeKind === 'upn') assignee = checkUpn(assignee);
    for (const key of Object.keys(body)) {
      if (!['assigneeKind', 'assignee', 'role', 'roleId', 'deviceGroups'].includes(key)) fail(`unknown property ${key}`);
    }
    const [grant] = await this.parseGrants([body.role ?? body.roleId], body.deviceGroups);
    const a = await this.putAssignment(assigneeKind, assignee as string, grant!.role, grant!.deviceGroups);
    this.changed();
    return a;
  }

  async getAssignment(id: string): Promise<RoleAssignmentRecord | null> {
    return isGuid(id) ? this.store.getRoleAssignment(id) : null;
  }

  async unassign(id: string): Promise<boolean> {
    if (!isGuid(id)) return false;
    const current = await this.store.getRoleAssignment(id);
    if (!current || !(await this.store.deleteRoleAssignment(id))) return false;
    await this.audit('roleAssignment.delete', current.id, {
      assigneeKind: current.assigneeKind,
      assignee: current.assignee,
      roleId: current.roleId,
    });
    this.changed();
    return true;
  }

  private async putAssignment(kind: AssigneeKind, assignee: string, role: RoleRecord, groups: 'all' | number[]): Promise<RoleAssignmentRecord> {
    const at = nowTimestamp();
    const a = await this.store.upsertRoleAssignment({
      id: newGuid(),
      assigneeKind: kind,
      assignee,
      roleId: role.id,
      allGroups: groups === 'all',
      deviceGroupIds: groups === 'all' ? [] : groups,
      createdAt: at,
      updatedAt: at,
    });
    await this.audit('roleAssignment.upsert', a.id, {
      assigneeKind: kind,
      assignee: a.assignee,
      roleId: role.id,
      roleName: role.name,
      deviceGroups: groups,
    });
    return a;
  }

  /** Roles (ids or names) and the device groups they apply to ('all' or ids/names; absent = all). */
  private async parseGrants(roles: unknown, deviceGroups: unknown): Promise<{ role: RoleRecord; deviceGroups: 'all' | number[] }[]> {
    const list = typeof roles === 'string' ? [roles] : roles;
    if (!Array.isArray(list)) fail('roles must be a list of role names or ids');
    const groups = await this.parseDeviceGroups(deviceGroups);
    const out: { role: RoleRecord; deviceGroups: 'all' | number[] }[] = [];
    for (const r of list) {
      if (typeof r !== 'string' || r.length === 0) fail('a role must be a role name or id');
      const role = await this.findRole(r);
      if (!role) fail(`no role ${r}`);
      out.push({ role, deviceGroups: groups });
    }
    return out;
  }

  private async parseDeviceGroups(input: unknown): Promise<'all' | number[]> {
    if (input === undefined || input === null || input === 'all') return 'all';
    if (!Array.isArray(input)) fail("deviceGroups must be 'all' or a list of device group ids or names");
    const known = await this.store.listDeviceGroups();
    const ids: number[] = [];
    for (const g of input) {
      const hit =
        typeof g === 'number'
          ? known.find((k) => k.id === g)
          : typeof g === 'string'
            ? known.find((k) => k.name.toLowerCase() === g.toLowerCase() || String(k.id) === g)
            : undefined;
      if (!hit) fail(`no device group ${String(g)}`);
      if (!ids.includes(hit.id)) ids.push(hit.id);
    }
    return ids;
  }

  // device groups

  listDeviceGroups(): Promise<DeviceGroupRecord[]> {
    return this.store.listDeviceGroups();
  }

  /** A device group by id (number or digits) or (case-insensitive) name. */
  async findDeviceGroup(idOrName: string | number): Promise<DeviceGroupRecord | null> {
    if (typeof idOrName === 'number' || /^\d{1,15}$/.test(idOrName)) return this.store.getDeviceGroup(Number(idOrName));
    const all = await this.store.listDeviceGroups();
    return all.find((g) => g.name.toLowerCase() === idOrName.toLowerCase()) ?? null;
  }

  async createDeviceGroup(body: Record<string, unknown>): Promise<{ group: DeviceGroupRecord; moved: number }> {
    const name = checkName(body.name, 'name');
    if (/^\d+$/.test(name)) fail('a device group name must not be a number');
    const description = checkDescription(body.description);
    const rank = checkRank(body.rank);
    const rule = checkRule(body.rule);
    for (const key of Object.keys(body)) if (!['name', 'description', 'rank', 'rule'].includes(key)) fail(`unknown property ${key}`);
    const result = await this.store.createDeviceGroup({ name, description, rank, rule }, nowTimestamp());
    await this.audit('deviceGroup.create', String(result.group.id), { name, rank: result.group.rank, rule, machinesMoved: result.moved });
    this.changed();
    return result;
  }

  async updateDeviceGroup(idOrName: string, body: Record<string, unknown>): Promise<{ group: DeviceGroupRecord; moved: number } | null> {
    const current = await this.findDeviceGroup(idOrName);
    if (!current) return null;
    const patch: DeviceGroupPatch = {};
    if (body.name !== undefined) {
      patch.name = checkName(body.name, 'name');
      if (/^\d+$/.test(patch.name)) fail('a device group name must not be a number');
    }
    if (body.description !== undefined) patch.description = checkDescription(body.description);
    if (body.rank !== undefined) {
      const rank = checkRank(body.rank);
      if (rank === null) fail('rank must be a positive integer');
      patch.rank = rank;
    }
    if (body.rule !== undefined) patch.rule = checkRule(body.rule);
    for (const key of Object.keys(body)) if (!['name', 'description', 'rank', 'rule'].includes(key)) fail(`unknown property ${key}`);
    const result = await this.store.updateDeviceGroup(current.id, patch, nowTimestamp());
    if (!result) return null;
    await this.audit('deviceGroup.update', String(current.id), { name: result.group.name, changes: patch, machinesMoved: result.moved });
    this.changed();
    return result;
  }

  async deleteDeviceGroup(idOrName: string): Promise<{ moved: number } | null> {
    const current = await this.findDeviceGroup(idOrName);
    if (!current) return null;
    const result = await this.store.deleteDeviceGroup(current.id);
    if (!result) return null;
    await this.audit('deviceGroup.delete', String(current.id), { name: current.name, machinesMoved: result.moved });
    this.changed();
    return result;
  }

  // public client apps

  /** Registers a public client (no secret) that may use the password and authorization-code grants. */
  async createPublicClient(body: { name: unknown; redirectUris: unknown }): Promise<{ tenantId: string; clientId: string; name: string; redirectUris: string[] }> {
    const name = body.name;
    if (typeof name !== 'string' || name.trim().length === 0 || name.length > 256 || /[\u0000-\u001f\u007f]/.test(name)) {
      fail('name must be a non-empty string of at most 256 characters');
    }
    const redirectUris = parseRedirectUris(body.redirectUris ?? []);
    if (typeof redirectUris === 'string') fail(redirectUris);
    const tenant = await this.store.getOrCreateTenant(() => ({ id: newGuid(), name: 'Tourniquet', createdAt: nowTimestamp() }));
    const clientId = newGuid();
    await this.store.createApp({
      clientId,
      tenantId: tenant.id,
      name,
      // No secret: the empty hash never verifies, so the client-credentials grant stays closed to it.
      secretHash: '',
      roles: [],
      createdAt: nowTimestamp(),
      disabled: false,
      publicClient: true,
      redirectUris,
    });
    await this.audit('app.createPublic', clientId, { name, redirectUris });
    return { tenantId: tenant.id, clientId, name, redirectUris };
  }
}
