// `tourniquet users …`, `roles …`, `device-groups …` and `apps create-public`: delegated access managed from the
// command line, through the same RbacAdmin (validation and audit) as the /tourniquet/v1 API.
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { ruleFromAssignments, RuleError } from '../core/deviceGroups.ts';
import { configFromEnv } from '../server/config.ts';
import { assignmentView, deviceGroupView, RbacAdmin, roleView } from '../server/extensions/rbacAdmin.ts';
import { openStore } from '../store/open.ts';
import type { RoleRecord, Store } from '../store/store.ts';

async function withAdmin<T>(data: string | undefined, fn: (admin: RbacAdmin, store: Store) => Promise<T>): Promise<T> {
  const env = configFromEnv();
  const store = await openStore({ databaseUrl: env.databaseUrl ?? undefined, dataDir: data ?? env.dataDir });
  try {
    const admin = new RbacAdmin({
      store,
      actor: { actorType: 'cli', actorId: process.env.USER ?? 'cli', actorName: null, clientIp: null, correlationId: null },
    });
    return await fn(admin, store);
  } finally {
    await store.close();
  }
}

const list = (v: string | undefined): string[] | undefined =>
  v === undefined
    ? undefined
    : v
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0);

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

/** The password from --password, or the first line of standard input with --password-stdin (keeps it out of `ps`). */
function passwordFrom(opts: { password?: string; passwordStdin?: boolean }): string | undefined {
  if (opts.password !== undefined && opts.passwordStdin) throw new Error('use either --password or --password-stdin');
  if (opts.passwordStdin) return readFileSync(0, 'utf8').split(/\r?\n/)[0] ?? '';
  return opts.password;
}

/** `all` or a comma-separated list of device group names or ids. */
function deviceGroupsOption(v: string | undefined): 'all' | string[] | undefined {
  if (v === undefined) return undefined;
  return v.trim().toLowerCase() === 'all' ? 'all' : list(v);
}

function print(json: boolean, value: unknown, lines: () => string[]): void {
  if (json) console.log(JSON.stringify(value));
  else for (const l of lines()) console.log(l);
}

function ruleText(rule: unknown): string {
  if (!rule || typeof rule !== 'object') return '(no rule: devices no rule matches)';
  return Object.entries(rule as Record<string, string[]>)
    .map(([k, v]) => `${k}=${v.join(',')}`)
    .join(' AND ');
}

export function registerRbacCommands(program: Command): void {
  // ---- users ------------------------------------------------------------------------------------------------
  const users = program.command('users').description('Local user accounts (delegated access, password sign-in)');
  users
    .command('create')
    .description('Create a user; roles apply to all device groups unless --device-groups is given')
    .requiredOption('--upn <upn>', 'user principal name, e.g. alice@contoso.com')
    .option('--password <password>', 'initial password (at least 12 characters)')
    .option('--password-stdin', 'read the password from the first line of standard input')
    .option('--display-name <name>', 'display name (the token `name` claim)')
    .option('--roles <roles>', 'comma-separated role names or ids, e.g. "Security responder"')
    .option('--device-groups <groups>', 'comma-separated device group names or ids the roles apply to (default: all)')
    .option('--disabled', 'create the account disabled')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const password = passwordFrom(opts);
      const created = await withAdmin(opts.data, async (admin) => {
        const r = await admin.createUser({
          upn: opts.upn,
          password,
          ...(opts.displayName !== undefined ? { displayName: opts.displayName } : {}),
          ...(opts.disabled ? { enabled: false } : {}),
          ...(opts.roles !== undefined ? { roles: list(opts.roles) } : {}),
          ...(opts.deviceGroups !== undefined ? { deviceGroups: deviceGroupsOption(opts.deviceGroups) } : {}),
        });
        const roles = new Map((await admin.listRoles()).map((x) => [x.id, x]));
        return { ...r.user, roleAssignments: r.assignments.map((a) => assignmentView(a, roles)) };
      });
      print(opts.json, created, () => [
        `oid:         ${created.oid}`,
        `upn:         ${created.upn}`,
        `displayName: ${created.displayName}`,
        `enabled:     ${created.enabled}`,
        ...created.roleAssignments.map(
          (a) => `role:        ${a.roleName} on ${a.allDeviceGroups ? 'all device groups' : `device groups ${a.deviceGroupIds.join(',')}`}`,
        ),
      ]);
    });
  users
    .command('list')
    .description('List users (never their passwords)')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const rows = await withAdmin(opts.data, (admin) => admin.listUsers());
      print(opts.json, rows, () =>
        rows.map((u) => `${u.oid}  ${u.upn}  ${u.displayName}${u.enabled ? '' : '  (disabled)'}${u.lockedUntil ? `  (locked until ${u.lockedUntil})` : ''}`),
      );
    });
  users
    .command('update <user>')
    .description('Change a user (by UPN or oid): display name, password, enabled, lock')
    .option('--display-name <name>', 'new display name')
    .option('--password <password>', 'new password')
    .option('--password-stdin', 'read the new password from the first line of standard input')
    .option('--enable', 'enable the account')
    .option('--disable', 'disable the account (its tokens stop working within seconds)')
    .option('--unlock', 'clear a lockout')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (user: string, opts) => {
      if (opts.enable && opts.disable) throw new Error('use either --enable or --disable');
      const password = passwordFrom(opts);
      const updated = await withAdmin(opts.data, (admin) =>
        admin.updateUser(user, {
          ...(opts.displayName !== undefined ? { displayName: opts.displayName } : {}),
          ...(password !== undefined ? { password } : {}),
          ...(opts.enable ? { enabled: true } : {}),
          ...(opts.disable ? { enabled: false } : {}),
          ...(opts.unlock ? { unlock: true } : {}),
        }),
      );
      if (!updated) throw new Error(`no user ${user}`);
      print(opts.json, updated, () => [`updated ${updated.upn} (${updated.oid})`]);
    });
  users
    .command('delete <user>')
    .description('Delete a user (by UPN or oid) and its role assignments')
    .option('--data <dir>', 'data directory')
    .action(async (user: string, opts) => {
      if (!(await withAdmin(opts.data, (admin) => admin.deleteUser(user)))) throw new Error(`no user ${user}`);
      console.log(`deleted ${user}`);
    });

  // ---- roles ------------------------------------------------------------------------------------------------
  const roles = program.command('roles').description('Roles (sets of RBAC permissions) and role assignments');
  roles
    .command('create')
    .description('Create a custom role')
    .requiredOption('--name <name>', 'role name')
    .requiredOption(
      '--permissions <permissions>',
      'comma-separated: View data, Alerts investigation, Active remediation actions, Manage security settings, Manage portal system settings',
    )
    .option('--description <text>', 'what the role is for')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const role = await withAdmin(opts.data, (admin) =>
        admin.createRole({ name: opts.name, permissions: list(opts.permissions), ...(opts.description ? { description: opts.description } : {}) }),
      );
      print(opts.json, roleView(role), () => [`${role.id}  ${role.name}  ${role.permissions.join(', ')}`]);
    });
  roles
    .command('list')
    .description('List built-in and custom roles')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const rows = await withAdmin(opts.data, (admin) => admin.listRoles());
      print(opts.json, rows.map(roleView), () => rows.map((r) => `${r.id}  ${r.name}${r.builtIn ? ' (built-in)' : ''}  ${r.permissions.join(', ')}`));
    });
  roles
    .command('update <role>')
    .description('Change a custom role (by name or id)')
    .option('--name <name>', 'new name')
    .option('--permissions <permissions>', 'new comma-separated permissions')
    .option('--description <text>', 'new description')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (roleName: string, opts) => {
      const role = await withAdmin(opts.data, (admin) =>
        admin.updateRole(roleName, {
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          ...(opts.permissions !== undefined ? { permissions: list(opts.permissions) } : {}),
          ...(opts.description !== undefined ? { description: opts.description } : {}),
        }),
      );
      if (!role) throw new Error(`no role ${roleName}`);
      print(opts.json, roleView(role), () => [`${role.id}  ${role.name}  ${role.permissions.join(', ')}`]);
    });
  roles
    .command('delete <role>')
    .description('Delete a custom role (by name or id) that is no longer assigned')
    .option('--data <dir>', 'data directory')
    .action(async (roleName: string, opts) => {
      if (!(await withAdmin(opts.data, (admin) => admin.deleteRole(roleName)))) throw new Error(`no role ${roleName}`);
      console.log(`deleted ${roleName}`);
    });
  roles
    .command('assign')
    .description('Assign a role to a local user, an external group (groups claim) or an external UPN')
    .requiredOption('--role <role>', 'role name or id')
    .option('--user <user>', 'local user (UPN or oid)')
    .option('--group <value>', 'external group: a `groups` claim value (e.g. an Entra group object id)')
    .option('--external-upn <upn>', 'external user by UPN')
    .option('--device-groups <groups>', "comma-separated device group names or ids, or 'all' (default)")
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const targets = [opts.user && 'user', opts.group && 'group', opts.externalUpn && 'upn'].filter(Boolean);
      if (targets.length !== 1) throw new Error('name exactly one of --user, --group, --external-upn');
      const kind = targets[0] as 'user' | 'group' | 'upn';
      const assignee = kind === 'user' ? opts.user : kind === 'group' ? opts.group : opts.externalUpn;
      const view = await withAdmin(opts.data, async (admin) => {
        const a = await admin.assignRole({
          assigneeKind: kind,
          assignee,
          role: opts.role,
          ...(opts.deviceGroups !== undefined ? { deviceGroups: deviceGroupsOption(opts.deviceGroups) } : {}),
        });
        return assignmentView(a, new Map((await admin.listRoles()).map((r) => [r.id, r])));
      });
      print(opts.json, view, () => [
        `${view.id}  ${view.assigneeKind}:${view.assignee}  ${view.roleName}  ${view.allDeviceGroups ? 'all device groups' : `device groups ${view.deviceGroupIds.join(',')}`}`,
      ]);
    });
  roles
    .command('assignments')
    .description('List role assignments')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const rows = await withAdmin(opts.data, async (admin) => {
        const byId = new Map<string, RoleRecord>((await admin.listRoles()).map((r) => [r.id, r]));
        return (await admin.listAssignments()).map((a) => assignmentView(a, byId));
      });
      print(opts.json, rows, () =>
        rows.map(
          (a) => `${a.id}  ${a.assigneeKind}:${a.assignee}  ${a.roleName}  ${a.allDeviceGroups ? 'all device groups' : `device groups ${a.deviceGroupIds.join(',')}`}`,
        ),
      );
    });
  roles
    .command('unassign <assignmentId>')
    .description('Remove a role assignment by its id')
    .option('--data <dir>', 'data directory')
    .action(async (id: string, opts) => {
      if (!(await withAdmin(opts.data, (admin) => admin.unassign(id)))) throw new Error(`no role assignment ${id}`);
      console.log(`removed ${id}`);
    });

  // ---- device groups ----------------------------------------------------------------------------------------
  const groups = program.command('device-groups').description('Device groups: ranked rules placing machines');
  const ruleOf = (rules: string[] | undefined) => {
    try {
      return rules === undefined ? undefined : ruleFromAssignments(rules);
    } catch (err) {
      if (err instanceof RuleError) throw new Error(err.message);
      throw err;
    }
  };
  groups
    .command('create')
    .description('Create a device group; every machine is re-placed by the rules at once')
    .requiredOption('--name <name>', 'group name')
    .option('--rank <n>', 'position (1 = tried first; default: last)', positiveInt)
    .requiredOption(
      '--rule <criterion=patterns>',
      'repeatable, all must match: name=web-*, domain=contoso.local, os=Linux, tag=prod, enroll-group=… (comma = any of)',
      collect,
    )
    .option('--description <text>', 'what the group is for')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const rule = ruleOf(opts.rule);
      const r = await withAdmin(opts.data, (admin) =>
        admin.createDeviceGroup({
          name: opts.name,
          rule,
          ...(opts.rank !== undefined ? { rank: opts.rank } : {}),
          ...(opts.description !== undefined ? { description: opts.description } : {}),
        }),
      );
      print(opts.json, { ...deviceGroupView(r.group), machinesMoved: r.moved }, () => [
        `${r.group.id}  ${r.group.name}  rank ${r.group.rank}  ${ruleText(r.group.rule)}  (${r.moved} machine(s) moved)`,
      ]);
    });
  groups
    .command('list')
    .description('List device groups in rank order (Ungrouped devices last)')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const rows = await withAdmin(opts.data, (admin) => admin.listDeviceGroups());
      print(opts.json, rows.map(deviceGroupView), () => rows.map((g) => `${g.id}  ${g.name}  rank ${g.rank}  ${ruleText(g.rule)}`));
    });
  groups
    .command('update <group>')
    .description('Change a device group (by name or id); machines are re-placed')
    .option('--name <name>', 'new name')
    .option('--rank <n>', 'new position', positiveInt)
    .option('--rule <criterion=patterns>', 'replaces the whole rule; repeatable', collect)
    .option('--description <text>', 'new description')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (group: string, opts) => {
      const rule = ruleOf(opts.rule);
      const r = await withAdmin(opts.data, (admin) =>
        admin.updateDeviceGroup(group, {
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          ...(opts.rank !== undefined ? { rank: opts.rank } : {}),
          ...(rule !== undefined ? { rule } : {}),
          ...(opts.description !== undefined ? { description: opts.description } : {}),
        }),
      );
      if (!r) throw new Error(`no device group ${group}`);
      print(opts.json, { ...deviceGroupView(r.group), machinesMoved: r.moved }, () => [
        `${r.group.id}  ${r.group.name}  rank ${r.group.rank}  ${ruleText(r.group.rule)}  (${r.moved} machine(s) moved)`,
      ]);
    });
  groups
    .command('delete <group>')
    .description('Delete a device group (by name or id); its machines are re-placed')
    .option('--data <dir>', 'data directory')
    .action(async (group: string, opts) => {
      const r = await withAdmin(opts.data, (admin) => admin.deleteDeviceGroup(group));
      if (!r) throw new Error(`no device group ${group}`);
      console.log(`deleted ${group} (${r.moved} machine(s) moved)`);
    });

  // ---- public client apps -----------------------------------------------------------------------------------
  const apps = program.commands.find((c) => c.name() === 'apps') ?? program.command('apps').description('Applications');
  apps
    .command('create-public')
    .description('Register a public client (no secret) for the password and authorization-code grants')
    .requiredOption('--name <name>', 'display name (shown on the sign-in page)')
    .option('--redirect-uri <uri>', 'repeatable: where authorization codes may be sent (https, or http on loopback)', collect)
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const created = await withAdmin(opts.data, (admin) => admin.createPublicClient({ name: opts.name, redirectUris: opts.redirectUri ?? [] }));
      print(opts.json, created, () => [
        `tenantId:     ${created.tenantId}`,
        `clientId:     ${created.clientId}`,
        `redirectUris: ${created.redirectUris.join(' ') || '(none: password grant only)'}`,
      ]);
    });
}
