// /tourniquet/v1 users, roles, role assignments and device groups: who may read and change them, what bad input
// gets, that every change is audited — and the same through the CLI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { call } from '../helpers/testServer.ts';
import { PASSWORD, postForm, startRbacServer, type RbacServer } from './helpers.ts';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

let s: RbacServer;
let manager: { token: string; clientId: string };
let readOnly: string;

before(async () => {
  s = await startRbacServer();
  const app = await s.app(['Tourniquet.Rbac.Manage'], 'RBAC automation');
  manager = { token: await s.token(['Tourniquet.Rbac.Manage'], 'RBAC automation 2'), clientId: app.clientId };
  readOnly = await s.token(['Tourniquet.Rbac.Read']);
});
after(() => s.close());

const api = (path: string, token: string, method = 'GET', body?: unknown) =>
  call(`${s.url}/tourniquet/v1${path}`, { method, token, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });

describe('permissions on the management API', () => {
  it('no token → 401; an app without the roles → 403 naming them', async () => {
    assert.equal((await call(`${s.url}/tourniquet/v1/users`)).status, 401);
    const other = await s.token(['Machine.Read.All']);
    const r = await api('/users', other);
    assert.equal(r.status, 403);
    assert.match(r.json.error.message, /Tourniquet\.Rbac\.Read,Tourniquet\.Rbac\.Manage/);
  });

  it('Tourniquet.Rbac.Read reads but cannot change', async () => {
    assert.equal((await api('/roles', readOnly)).status, 200);
    assert.equal((await api('/device-groups', readOnly)).status, 200);
    const r = await api('/roles', readOnly, 'POST', { name: 'x', permissions: ['View data'] });
    assert.equal(r.status, 403);
    assert.match(r.json.error.message, /Tourniquet\.Rbac\.Manage/);
    const refused = (await s.store.listAudit({ top: 1000, skip: 0, action: 'role.create' })).filter((a) => a.result === 'failure' && a.status === 403);
    assert.equal(refused.length, 1, 'a refused attempt to change access is audited');
    assert.equal(refused[0]!.actorType, 'app');
  });

  it('users need "Manage security settings" on all device groups', async () => {
    await s.group('Only A', { name: ['a-*'] });
    await s.admin.createRole({ name: 'Security admins', permissions: ['View data', 'Manage security settings'] });
    await s.user('secadmin-a@contoso.com', ['Security admins'], ['Only A']);
    await s.user('secadmin@contoso.com', ['Security admins']);
    await s.user('mgmt-reader@contoso.com', ['Security reader']);
    const scoped = await s.userToken('secadmin-a@contoso.com');
    const r1 = await api('/users', scoped);
    assert.equal(r1.status, 403);
    assert.match(r1.json.error.message, /on all device groups/);
    const reader = await s.userToken('mgmt-reader@contoso.com');
    const r2 = await api('/users', reader);
    assert.equal(r2.status, 403);
    assert.match(r2.json.error.message, /requires the role permission "Manage security settings"/);
    const full = await s.userToken('secadmin@contoso.com');
    assert.equal((await api('/users', full)).status, 200);
    const created = await api('/roles', full, 'POST', { name: 'Made by a user', permissions: ['View data'] });
    assert.equal(created.status, 201, created.text);
    const audit = await s.store.listAudit({ top: 1000, skip: 0, action: 'role.create' });
    const entry = audit.find((a) => a.target === created.json.id)!;
    assert.equal(entry.actorType, 'user');
    assert.equal(entry.actorName, 'secadmin@contoso.com');
  });

  it('the audit log, like RBAC, is for users whose role reaches all device groups', async () => {
    await s.user('admin-a@contoso.com', ['Tourniquet Administrator'], ['Only A']);
    await s.user('admin-all@contoso.com', ['Tourniquet Administrator']);
    const scoped = await call(`${s.url}/tourniquet/v1/audit`, { token: await s.userToken('admin-a@contoso.com') });
    assert.equal(scoped.status, 403);
    assert.match(scoped.json.error.message, /on all device groups/);
    const full = await call(`${s.url}/tourniquet/v1/audit?$top=5`, { token: await s.userToken('admin-all@contoso.com') });
    assert.equal(full.status, 200, full.text);
    assert.equal(full.json.value.length, 5);
  });
});

describe('managing through the API', () => {
  it('users: create with roles, read, update, unlock, delete — never a password hash; every change audited', async () => {
    const created = await api('/users', manager.token, 'POST', {
      upn: 'erin@contoso.com',
      displayName: 'Erin',
      password: PASSWORD,
      roles: ['Security responder'],
      deviceGroups: 'all',
    });
    assert.equal(created.status, 201, created.text);
    assert.ok(!/password|hash|scrypt/i.test(created.text), created.text);
    assert.equal(created.json.roleAssignments[0].roleName, 'Security responder');
    assert.equal(created.json.roleAssignments[0].allDeviceGroups, true);
    const oid = created.json.oid;
    const got = await api(`/users/${oid}`, manager.token);
    assert.equal(got.json.upn, 'erin@contoso.com');
    const byUpn = await api('/users/ERIN@contoso.com', manager.token);
    assert.equal(byUpn.json.oid, oid);
    const listed = await api('/users', manager.token);
    assert.ok(!/scrypt/.test(listed.text));

    const updated = await api(`/users/${oid}`, manager.token, 'PATCH', { displayName: 'Erin E.', password: 'Another-long-password-1', unlock: true });
    assert.equal(updated.status, 200, updated.text);
    assert.equal(updated.json.displayName, 'Erin E.');
    const old = await postForm(s.tokenEndpoint('1.0'), { grant_type: 'password', client_id: s.publicClientId, username: 'erin@contoso.com', password: PASSWORD, resource: 'https://api.securitycenter.microsoft.com' });
    assert.equal(old.status, 400, 'the old password no longer works');
    assert.ok(await s.userToken('erin@contoso.com', 'Another-long-password-1'));

    assert.equal((await api(`/users/${oid}`, manager.token, 'DELETE')).status, 204);
    assert.equal((await api(`/users/${oid}`, manager.token)).status, 404);
    assert.equal((await api(`/users/${oid}`, manager.token, 'DELETE')).status, 404);
    assert.deepEqual(await s.store.listRoleAssignments({ assigneeKind: 'user', assignee: oid }), [], 'assignments went with the user');

    const audit = await s.store.listAudit({ top: 1000, skip: 0 });
    const mine = audit.filter((a) => a.result === 'success' && (a.target === oid || (a.detail as { assignee?: string } | null)?.assignee === oid));
    assert.deepEqual(
      mine.map((a) => a.action),
      ['user.create', 'roleAssignment.upsert', 'user.update', 'user.delete'],
    );
    for (const a of mine) {
      assert.equal(a.actorType, 'app');
      assert.equal(a.result, 'success');
      assert.ok(!JSON.stringify(a.detail).includes(PASSWORD), 'no password in the audit log');
    }
    assert.equal((mine[2]!.detail as { changes: { password: string } }).changes.password, 'changed');
  });

  it('roles: custom roles are created, changed and deleted; built-ins are fixed; an assigned role cannot go', async () => {
    const roles = await api('/roles', manager.token);
    assert.deepEqual(
      roles.json.value.filter((r: { builtIn: boolean }) => r.builtIn).map((r: { name: string }) => r.name),
      ['Security reader', 'Security responder', 'Tourniquet Administrator'],
    );
    const created = await api('/roles', manager.token, 'POST', { name: 'Tier 2', description: 'Escalations', permissions: ['View data', 'Active remediation actions'] });
    assert.equal(created.status, 201, created.text);
    const id = created.json.id;
    const patched = await api(`/roles/${id}`, manager.token, 'PATCH', { permissions: ['View data'] });
    assert.deepEqual(patched.json.permissions, ['View data']);
    assert.equal((await api('/roles/tier 2', manager.token)).json.id, id, 'by name');
    const builtIn = roles.json.value.find((r: { name: string }) => r.name === 'Security reader');
    for (const [method, body] of [['PATCH', { name: 'Renamed' }], ['DELETE', undefined]] as const) {
      const r = await api(`/roles/${builtIn.id}`, manager.token, method, body);
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error.message, /built-in/);
    }
    const assigned = await api('/role-assignments', manager.token, 'POST', { assigneeKind: 'group', assignee: 'soc-tier2', role: 'Tier 2' });
    assert.equal(assigned.status, 201, assigned.text);
    const inUse = await api(`/roles/${id}`, manager.token, 'DELETE');
    assert.equal(inUse.status, 400);
    assert.match(inUse.json.error.message, /assigned/);
    assert.equal((await api(`/role-assignments/${assigned.json.id}`, manager.token, 'DELETE')).status, 204);
    assert.equal((await api(`/roles/${id}`, manager.token, 'DELETE')).status, 204);
    const failures = (await s.store.listAudit({ top: 1000, skip: 0, action: 'role.delete' })).filter((a) => a.result === 'failure');
    assert.ok(failures.length >= 2, 'refused changes are audited as failures');
  });

  it('role assignments: upsert per (assignee, role), device groups by name or id, filters', async () => {
    const g = await s.group('Assignable', { tags: ['x'] });
    const first = await api('/role-assignments', manager.token, 'POST', { assigneeKind: 'upn', assignee: 'Ext@Fabrikam.com', role: 'Security reader', deviceGroups: ['Assignable'] });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.json.assignee, 'ext@fabrikam.com');
    assert.deepEqual(first.json.deviceGroupIds, [g]);
    const again = await api('/role-assignments', manager.token, 'POST', { assigneeKind: 'upn', assignee: 'ext@fabrikam.com', role: 'Security reader', deviceGroups: [0, g] });
    assert.equal(again.json.id, first.json.id, 'same assignment, replaced');
    assert.deepEqual(again.json.deviceGroupIds, [0, g]);
    const filtered = await api('/role-assignments?assigneeKind=upn&assignee=EXT@fabrikam.com', manager.token);
    assert.deepEqual(filtered.json.value.map((a: { id: string }) => a.id), [first.json.id]);
    assert.equal((await api(`/role-assignments/${first.json.id}`, manager.token)).json.roleName, 'Security reader');
  });

  it('bad input gets 400 and a reason, and nothing changes', async () => {
    const before = (await s.store.listAudit({ top: 100000, skip: 0 })).filter((a) => a.result === 'success').length;
    const cases: [string, string, unknown, RegExp][] = [
      ['/users', 'POST', 'not json', /Request body is incorrect/],
      ['/users', 'POST', [], /Request body is incorrect/],
      ['/users', 'POST', { password: PASSWORD }, /upn is required/],
      ['/users', 'POST', { upn: 'no-at-sign', password: PASSWORD }, /upn must look like/],
      ['/users', 'POST', { upn: 'a@b.c', password: 'short' }, /at least 12/],
      ['/users', 'POST', { upn: 'longname@contoso.com', password: 'LONGNAME@contoso.com' }, /must not be the user name/],
      ['/users', 'POST', { upn: 'a@b.c', password: PASSWORD, roles: ['No such role'] }, /no role No such role/],
      ['/users', 'POST', { upn: 'a@b.c', password: PASSWORD, roles: ['Security reader'], deviceGroups: ['nowhere'] }, /no device group nowhere/],
      ['/users', 'POST', { upn: 'a@b.c', password: PASSWORD, enabled: 'yes' }, /enabled must be true or false/],
      ['/users', 'POST', { upn: 'a@b.c', password: PASSWORD, displayName: 'a,b' }, /commas/],
      ['/users', 'POST', { upn: 'a@b.c', password: PASSWORD, isAdmin: true }, /unknown property isAdmin/],
      ['/roles', 'POST', { name: 'R', permissions: ['Root'] }, /unknown permission/],
      ['/roles', 'POST', { name: 'R', permissions: [] }, /non-empty/],
      ['/roles', 'POST', { name: '', permissions: ['View data'] }, /non-empty/],
      ['/roles', 'POST', { name: 'Security Reader', permissions: ['View data'] }, /already exists/],
      ['/roles', 'POST', { name: 'R', permissions: ['View data'], extra: 1 }, /unknown property extra/],
      ['/role-assignments', 'POST', { assigneeKind: 'robot', assignee: 'x', role: 'Security reader' }, /assigneeKind must be/],
      ['/role-assignments', 'POST', { assigneeKind: 'user', assignee: 'nobody@contoso.com', role: 'Security reader' }, /no user/],
      ['/role-assignments', 'POST', { assigneeKind: 'group', assignee: '', role: 'Security reader' }, /assignee must be/],
      ['/role-assignments', 'POST', { assigneeKind: 'group', assignee: 'g', role: 'Security reader', deviceGroups: 'some' }, /deviceGroups must be/],
      ['/device-groups', 'POST', { name: 'G', rule: {} }, /at least one criterion/],
      ['/device-groups', 'POST', { name: 'G', rule: { colour: ['red'] } }, /unknown rule criterion/],
      ['/device-groups', 'POST', { name: 'G', rule: { name: ['x'] }, rank: 0 }, /rank must be a positive integer/],
      ['/device-groups', 'POST', { name: '42', rule: { name: ['x'] } }, /must not be a number/],
      ['/device-groups', 'POST', { name: 'ungrouped DEVICES', rule: { name: ['x'] } }, /already exists/],
    ];
    for (const [path, method, body, message] of cases) {
      const r = await api(path, manager.token, method, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.json.error.message, message, `${path} ${JSON.stringify(body)}`);
    }
    assert.equal((await api('/users', manager.token, 'POST', { upn: 'dup@contoso.com', password: PASSWORD })).status, 201);
    const dup = await api('/users', manager.token, 'POST', { upn: 'DUP@contoso.com', password: PASSWORD });
    assert.equal(dup.status, 400);
    assert.match(dup.json.error.message, /already exists/);
    assert.equal((await api('/role-assignments?assigneeKind=robot', manager.token)).status, 400);
    for (const path of ['/users/00000000-0000-0000-0000-000000000000', '/roles/nope', '/role-assignments/nope', '/device-groups/999999', '/device-groups/nope']) {
      assert.equal((await api(path, manager.token)).status, 404, path);
      assert.equal((await api(path, manager.token, 'DELETE')).status, 404, path);
    }
    const after = (await s.store.listAudit({ top: 100000, skip: 0 })).filter((a) => a.result === 'success').length;
    assert.equal(after - before, 1, 'only the one good user was created');
  });
});

describe('the CLI', () => {
  const cli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', MAIN, ...args, '--data', s.dataDir], { env: { ...process.env, TOURNIQUET_DATABASE_URL: '' } });
    return stdout;
  };

  it('manages users, roles, device groups and public clients, audited as the CLI', async () => {
    // Independent commands run side by side (separate processes on one SQLite file, as operators would).
    const [groupOut, roleOut, clientOut] = await Promise.all([
      cli('device-groups', 'create', '--name', 'CLI web', '--rule', 'name=cliweb-*', '--rule', 'os=Linux', '--json'),
      cli('roles', 'create', '--name', 'CLI responders', '--permissions', 'View data,Active remediation actions', '--json'),
      cli('apps', 'create-public', '--name', 'CLI console', '--redirect-uri', 'https://console.example.org/cb', '--json'),
    ]);
    const group = JSON.parse(groupOut);
    assert.deepEqual(group.rule, { name: ['cliweb-*'], osPlatform: ['Linux'] });
    assert.deepEqual(JSON.parse(roleOut).permissions, ['View data', 'Active remediation actions']);
    assert.deepEqual(JSON.parse(clientOut).redirectUris, ['https://console.example.org/cb']);
    const user = JSON.parse(
      await cli('users', 'create', '--upn', 'frank@contoso.com', '--password', PASSWORD, '--roles', 'CLI responders', '--device-groups', 'CLI web', '--json'),
    );
    assert.equal(user.upn, 'frank@contoso.com');
    assert.deepEqual(user.roleAssignments[0].deviceGroupIds, [group.id]);
    const [usersOut, groups] = await Promise.all([cli('users', 'list', '--json'), cli('device-groups', 'list')]);
    assert.ok(JSON.parse(usersOut).some((u: { oid: string }) => u.oid === user.oid));
    assert.match(groups, /CLI web/);
    assert.match(groups, /0 {2}Ungrouped devices/);
    // The server sees what the CLI wrote: frank signs in.
    assert.ok(await s.userToken('frank@contoso.com'));
    const audit = await s.store.listAudit({ top: 100000, skip: 0 });
    const cliChanges = audit.filter((a) => a.actorType === 'cli').map((a) => a.action);
    for (const action of ['deviceGroup.create', 'role.create', 'user.create', 'roleAssignment.upsert', 'app.createPublic']) assert.ok(cliChanges.includes(action), action);
  });

  it('refuses bad input with a message and exit code 1', async () => {
    const bad = [
      ['users', 'create', '--upn', 'x@contoso.com', '--password', 'short'],
      ['device-groups', 'create', '--name', 'Bad', '--rule', 'colour=red'],
      ['apps', 'create-public', '--name', 'Bad', '--redirect-uri', 'http://evil.example/cb'],
    ];
    await Promise.all(
      bad.map((args) =>
        assert.rejects(cli(...args), (err: { code?: number; stderr?: string }) => {
          assert.equal(err.code, 1, args.join(' '));
          assert.match(err.stderr ?? '', /^tourniquet: /m);
          return true;
        }),
      ),
    );
  });
});
