// Enforcement on /api for delegated callers: role × device group × route. A delegated caller needs the scope AND
// the role permission AND the device's group; machines and actions outside their groups do not exist for them.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, SignJWT, type JWK } from 'jose';
import type { Machine } from '../../src/core/machines.ts';
import { nowTimestamp } from '../../src/server/clock.ts';
import { ALL_ACTION_ROLES, call } from '../helpers/testServer.ts';
import { startRbacServer, type RbacServer } from './helpers.ts';

const MDE = 'https://api.securitycenter.microsoft.com';
const SHARED_SHA1 = 'e'.repeat(40);
const SHARED_IP = '10.77.0.1';

// An external issuer (a stand-in for a real Entra tenant) whose users are mapped to roles by group and UPN.
const extTenant = randomUUID();
const extIssuer = `https://login.microsoftonline.com/${extTenant}/v2.0`;
const extGroup = randomUUID();
let extKey: KeyObject;
let extKid: string;
let tmp: string;

let s: RbacServer;
let appToken: string;
const machines: Record<'A' | 'B' | 'U', Machine> = {} as never;
const actionOn: Record<'A' | 'B' | 'U', string> = {} as never;
const tokens: Record<string, string> = {};

type Where = 'A' | 'B' | 'U';
interface Profile {
  view: Where[];
  act: Where[];
  investigate: Where[];
}
const ALL: Where[] = ['A', 'B', 'U'];
const NONE: Where[] = [];
const PROFILES: Record<string, Profile> = {
  admin: { view: ALL, act: ALL, investigate: ALL },
  readerAll: { view: ALL, act: NONE, investigate: NONE },
  readerA: { view: ['A'], act: NONE, investigate: NONE },
  responderA: { view: ['A'], act: ['A'], investigate: ['A'] },
  readerAllResponderB: { view: ALL, act: ['B'], investigate: ['B'] },
  investigator: { view: NONE, act: NONE, investigate: ALL },
  responderUngrouped: { view: ['U'], act: ['U'], investigate: ['U'] },
  noRole: { view: NONE, act: NONE, investigate: NONE },
};

async function extToken(claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ aud: MDE, iss: extIssuer, tid: extTenant, azp: randomUUID(), oid: randomUUID(), ver: '2.0', ...claims })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: extKid })
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(extKey);
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'tq-rbac-ext-'));
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  extKey = pair.privateKey;
  const pub = pair.publicKey.export({ format: 'jwk' }) as JWK;
  extKid = await calculateJwkThumbprint(pub, 'sha256');
  const jwksFile = join(tmp, 'keys.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ kty: 'RSA', use: 'sig', kid: extKid, n: pub.n, e: pub.e }] }));
  s = await startRbacServer({ externalIssuers: [{ issuer: extIssuer, tenantId: extTenant, jwksFile }] });

  await s.group('Region A', { name: ['a-*'] });
  await s.group('Region B', { name: ['b-*'] });
  for (const w of ALL) {
    machines[w] = await s.seedMachine({ computerDnsName: `${w.toLowerCase()}-1.contoso.local`, lastIpAddress: SHARED_IP });
    const placed = (await s.store.getMachine(machines[w].id))!;
    machines[w] = placed;
    await s.store.recordFileObservations(placed.id, [
      { sha1: SHARED_SHA1, sha256: null, path: '/tmp/evil', size: 1, signer: null, trusted: false, seenAt: nowTimestamp() },
    ], false);
    await s.store.recordMachineIp(placed.id, SHARED_IP, nowTimestamp());
  }
  appToken = await s.token(ALL_ACTION_ROLES);
  for (const w of ALL) {
    const r = await call(`${s.url}/api/machines/${machines[w].id}/isolate`, { method: 'POST', token: appToken, body: '{"Comment":"seed","IsolationType":"Full"}' });
    assert.equal(r.status, 201, r.text);
    actionOn[w] = r.json.id;
  }

  await s.admin.createRole({ name: 'Investigators', permissions: ['Alerts investigation'] });
  await s.user('admin@contoso.com', ['Tourniquet Administrator']);
  await s.user('readerall@contoso.com', ['Security reader']);
  await s.user('readera@contoso.com', ['Security reader'], ['Region A']);
  await s.user('respondera@contoso.com', ['Security responder'], ['Region A']);
  await s.user('mixed@contoso.com', ['Security reader']);
  await s.admin.assignRole({ assigneeKind: 'user', assignee: 'mixed@contoso.com', role: 'Security responder', deviceGroups: ['Region B'] });
  await s.user('investigator@contoso.com', ['Investigators']);
  await s.user('ungrouped@contoso.com', ['Security responder'], ['Ungrouped devices']);
  await s.user('norole@contoso.com', []);
  const upns: Record<string, string> = {
    admin: 'admin@contoso.com',
    readerAll: 'readerall@contoso.com',
    readerA: 'readera@contoso.com',
    responderA: 'respondera@contoso.com',
    readerAllResponderB: 'mixed@contoso.com',
    investigator: 'investigator@contoso.com',
    responderUngrouped: 'ungrouped@contoso.com',
    noRole: 'norole@contoso.com',
  };
  for (const [k, upn] of Object.entries(upns)) tokens[k] = await s.userToken(upn);
});

after(async () => {
  await s.close();
  rmSync(tmp, { recursive: true, force: true });
});

const expect = (allowed: Where[], hasAny: boolean, w: Where, ok: number) => (allowed.includes(w) ? ok : hasAny ? 404 : 403);

describe('device groups place the seeded machines', () => {
  it('A, B and Ungrouped devices (id 0)', () => {
    assert.equal(machines.A.rbacGroupName, 'Region A');
    assert.equal(machines.B.rbacGroupName, 'Region B');
    assert.equal(machines.U.rbacGroupId, 0);
    assert.equal(machines.U.rbacGroupName, 'Ungrouped devices');
  });
});

describe('matrix: role × device group × route', () => {
  for (const [who, p] of Object.entries(PROFILES)) {
    for (const w of ALL) {
      it(`${who} on ${w}`, async () => {
        const token = tokens[who]!;
        const m = machines[w];
        const read = await call(`${s.url}/api/machines/${m.id}`, { token });
        assert.equal(read.status, expect(p.view, p.view.length > 0, w, 200), `GET machine: ${read.text}`);
        const readByName = await call(`${s.url}/api/v1.0/machines/${m.computerDnsName.toUpperCase()}`, { token });
        assert.equal(readByName.status, read.status, 'by DNS name as by id');
        const action = await call(`${s.url}/api/machineactions/${actionOn[w]}`, { token });
        assert.equal(action.status, expect(p.view, p.view.length > 0, w, 200), `GET action: ${action.text}`);

        const sha1 = randomBytes(20).toString('hex');
        const sqf = await call(`${s.url}/api/machines/${m.id}/StopAndQuarantineFile`, { method: 'POST', token, body: JSON.stringify({ Comment: 'matrix', Sha1: sha1 }) });
        assert.equal(sqf.status, expect(p.act, p.act.length > 0, w, 201), `SQF: ${sqf.text}`);
        if (sqf.status === 201) assert.match(sqf.json.requestor, /@contoso\.com$/);
        if (sqf.status === 403) assert.match(sqf.json.error.message, p.view.length + p.investigate.length + p.act.length === 0 ? /no role assigned/ : /requires the role permission "Active remediation actions"/);

        const collect = await call(`${s.url}/api/machines/${m.id}/collectInvestigationPackage`, { method: 'POST', token, body: '{"Comment":"matrix"}' });
        assert.equal(collect.status, expect(p.investigate, p.investigate.length > 0, w, 201), `collect: ${collect.text}`);
        if (collect.status === 201) {
          const cancel = await call(`${s.url}/api/machineactions/${collect.json.id}/cancel`, { method: 'POST', token: appToken, body: '{"Comment":"cleanup"}' });
          assert.equal(cancel.status, 200);
        }
      });
    }
  }
});

describe('lists, $filter, $count, findbyip and files: only the caller’s groups exist', () => {
  for (const [who, p] of Object.entries(PROFILES)) {
    it(`${who}`, async () => {
      const token = tokens[who]!;
      const visible = p.view.map((w) => machines[w].id).sort();
      const list = await call(`${s.url}/api/machines?$count=true`, { token });
      if (p.view.length === 0) {
        assert.equal(list.status, 403, list.text);
        for (const url of [`/api/machineactions`, `/api/machines/findbyip(ip='${SHARED_IP}',timestamp=${new Date().toISOString()})`, `/api/files/${SHARED_SHA1}/machines`]) {
          assert.equal((await call(`${s.url}${url}`, { token })).status, 403, url);
        }
        return;
      }
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(list.json.value.map((m: { id: string }) => m.id).sort(), visible);
      assert.equal(list.json['@odata.count'], visible.length);

      // $filter and $count naming a machine outside the caller's groups find nothing.
      for (const w of ALL) {
        const byName = await call(`${s.url}/api/machines?$filter=computerDnsName eq '${machines[w].computerDnsName}'&$count=true`, { token });
        assert.equal(byName.json['@odata.count'], p.view.includes(w) ? 1 : 0);
        const byGroup = await call(`${s.url}/api/machines?$filter=rbacGroupId eq ${machines[w].rbacGroupId}&$count=true`, { token });
        assert.equal(byGroup.json['@odata.count'], p.view.includes(w) ? 1 : 0);
        const acts = await call(`${s.url}/api/machineactions?$filter=machineId eq '${machines[w].id}'&$count=true`, { token });
        assert.equal(acts.status, 200, acts.text);
        if (!p.view.includes(w)) {
          assert.equal(acts.json['@odata.count'], 0);
          assert.deepEqual(acts.json.value, []);
        } else {
          assert.ok(acts.json['@odata.count'] >= 1);
        }
      }
      const allActions = await call(`${s.url}/api/machineactions?$top=10000`, { token });
      const seen = new Set(allActions.json.value.map((a: { machineId: string }) => a.machineId));
      for (const w of ALL) assert.equal(seen.has(machines[w].id), p.view.includes(w), `actions of ${w}`);

      const byIp = await call(`${s.url}/api/machines/findbyip(ip='${SHARED_IP}',timestamp=${new Date().toISOString().slice(0, 19)}Z)`, { token });
      assert.equal(byIp.status, 200, byIp.text);
      assert.deepEqual(byIp.json.value.map((m: { id: string }) => m.id).sort(), visible);
      const byFile = await call(`${s.url}/api/files/${SHARED_SHA1}/machines`, { token });
      assert.deepEqual(byFile.json.value.map((m: { id: string }) => m.id).sort(), visible);
    });
  }
});

describe('cancel, getPackageUri and messages', () => {
  it('a responder limited to A cancels A’s actions, gets 404 for B’s; a reader gets 403 naming the role permission', async () => {
    const mk = async (w: Where) => {
      const r = await call(`${s.url}/api/machines/${machines[w].id}/StopAndQuarantineFile`, {
        method: 'POST',
        token: appToken,
        body: JSON.stringify({ Comment: 'to cancel', Sha1: randomBytes(20).toString('hex') }),
      });
      return r.json.id as string;
    };
    const onA = await mk('A');
    const onB = await mk('B');
    const cancelB = await call(`${s.url}/api/machineactions/${onB}/cancel`, { method: 'POST', token: tokens.responderA, body: '{"Comment":"x"}' });
    assert.equal(cancelB.status, 404);
    assert.match(cancelB.json.error.message, new RegExp(`Machine action ${onB} was not found`));
    const byReader = await call(`${s.url}/api/machineactions/${onA}/cancel`, { method: 'POST', token: tokens.readerAll, body: '{"Comment":"x"}' });
    assert.equal(byReader.status, 403);
    assert.match(byReader.json.error.message, /requires the role permission "Active remediation actions"/);
    const cancelA = await call(`${s.url}/api/machineactions/${onA}/cancel`, { method: 'POST', token: tokens.responderA, body: '{"Comment":"x"}' });
    assert.equal(cancelA.status, 200);
    assert.equal(cancelA.json.cancellationRequestor, 'respondera@contoso.com');
    assert.equal((await call(`${s.url}/api/machineactions/${onB}`, { token: appToken })).json.status, 'Pending', 'B untouched');
  });

  it('getPackageUri needs Alerts investigation and the device group', async () => {
    assert.equal((await call(`${s.url}/api/machineactions/${actionOn.B}/getPackageUri`, { token: tokens.responderA })).status, 404);
    assert.equal((await call(`${s.url}/api/machineactions/${actionOn.A}/getPackageUri`, { token: tokens.responderA })).status, 400, 'visible, but not a collection');
    const reader = await call(`${s.url}/api/machineactions/${actionOn.A}/getPackageUri`, { token: tokens.readerAll });
    assert.equal(reader.status, 403);
    assert.match(reader.json.error.message, /"Alerts investigation"/);
  });

  it('a read-only analyst gets 403 on StopAndQuarantineFile naming "Active remediation actions"', async () => {
    const r = await call(`${s.url}/api/machines/${machines.A.id}/StopAndQuarantineFile`, {
      method: 'POST',
      token: tokens.readerAll,
      body: JSON.stringify({ Comment: 'x', Sha1: 'a'.repeat(40) }),
    });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'Forbidden');
    assert.equal(
      r.json.error.message,
      'Missing role permission. API requires the role permission "Active remediation actions", user\'s role permissions: View data.',
    );
    assert.match(r.headers.get('content-type')!, /^application\/json; charset=utf-8/);
  });

  it('the role suffices but the token lacks the scope → 403 naming the scope', async () => {
    const narrow = await s.userToken('respondera@contoso.com', undefined, { scope: `${MDE}/Machine.Read` });
    const r = await call(`${s.url}/api/machines/${machines.A.id}/StopAndQuarantineFile`, {
      method: 'POST',
      token: narrow,
      body: JSON.stringify({ Comment: 'x', Sha1: 'b'.repeat(40) }),
    });
    assert.equal(r.status, 403);
    assert.match(r.json.error.message, /^Missing delegated scopes\. API required scopes: Machine\.StopAndQuarantine, delegated scopes: Machine\.Read\.$/);
    assert.equal((await call(`${s.url}/api/machines/${machines.A.id}`, { token: narrow })).status, 200);
  });

  it('a user with no role gets 403 everywhere, the audit log and RBAC management included', async () => {
    for (const url of ['/api/machines', '/api/machineactions', '/api/alerts', '/tourniquet/v1/audit', '/tourniquet/v1/users', '/tourniquet/v1/device-groups']) {
      const r = await call(`${s.url}${url}`, { token: tokens.noRole });
      assert.equal(r.status, 403, `${url}: ${r.text}`);
      assert.match(r.json.error.message, /no role assigned/);
    }
  });

  it('role changes through the API apply at once to existing tokens (no re-sign-in)', async () => {
    const u = await s.user('promoted@contoso.com', ['Security reader'], ['Region A']);
    const token = await s.userToken(u.upn);
    assert.equal((await call(`${s.url}/api/machines/${machines.B.id}`, { token })).status, 404);
    const manager = await s.token(['Tourniquet.Rbac.Manage']);
    const assigned = await call(`${s.url}/tourniquet/v1/role-assignments`, {
      method: 'POST',
      token: manager,
      body: JSON.stringify({ assigneeKind: 'user', assignee: u.upn, role: 'Security reader', deviceGroups: ['Region A', 'Region B'] }),
    });
    assert.equal(assigned.status, 201, assigned.text);
    assert.equal((await call(`${s.url}/api/machines/${machines.B.id}`, { token })).status, 200);
    const disabled = await call(`${s.url}/tourniquet/v1/users/${u.oid}`, { method: 'PATCH', token: manager, body: '{"enabled":false}' });
    assert.equal(disabled.status, 200, disabled.text);
    assert.equal((await call(`${s.url}/api/machines/${machines.B.id}`, { token })).status, 401, 'a disabled account’s token stops');
  });
});

describe('external identities mapped by groups claim and UPN', () => {
  before(async () => {
    await s.admin.assignRole({ assigneeKind: 'group', assignee: extGroup.toUpperCase(), role: 'Security responder', deviceGroups: ['Region A'] });
    await s.admin.assignRole({ assigneeKind: 'upn', assignee: 'Reader@Fabrikam.com', role: 'Security reader' });
  });

  it('a group member acts on A only; requestor is its UPN', async () => {
    const token = await extToken({ scp: 'Machine.Read Machine.StopAndQuarantine', upn: 'dana@fabrikam.com', name: 'Dana', groups: [randomUUID(), extGroup] });
    const ok = await call(`${s.url}/api/machines/${machines.A.id}/StopAndQuarantineFile`, { method: 'POST', token, body: JSON.stringify({ Comment: 'x', Sha1: randomBytes(20).toString('hex') }) });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.requestor, 'dana@fabrikam.com');
    const b = await call(`${s.url}/api/machines/${machines.B.id}/StopAndQuarantineFile`, { method: 'POST', token, body: JSON.stringify({ Comment: 'x', Sha1: randomBytes(20).toString('hex') }) });
    assert.equal(b.status, 404);
  });

  it('a mapped UPN reads everything and may not remediate; an unmapped identity has no role', async () => {
    const reader = await extToken({ scp: 'Machine.Read Machine.StopAndQuarantine', upn: 'reader@fabrikam.com', groups: [] });
    const list = await call(`${s.url}/api/machines?$count=true`, { token: reader });
    assert.equal(list.json['@odata.count'], 3);
    const act = await call(`${s.url}/api/machines/${machines.A.id}/StopAndQuarantineFile`, { method: 'POST', token: reader, body: JSON.stringify({ Comment: 'x', Sha1: 'c'.repeat(40) }) });
    assert.equal(act.status, 403);
    assert.match(act.json.error.message, /"Active remediation actions"/);
    const stranger = await extToken({ scp: 'Machine.Read', upn: 'eve@fabrikam.com', groups: [randomUUID()] });
    const r = await call(`${s.url}/api/machines`, { token: stranger });
    assert.equal(r.status, 403);
    assert.match(r.json.error.message, /no role assigned/);
  });

  it('an external token still needs the scope: Entra scp decides what the app may do', async () => {
    const token = await extToken({ scp: 'Machine.Read', upn: 'dana@fabrikam.com', groups: [extGroup] });
    const r = await call(`${s.url}/api/machines/${machines.A.id}/isolate`, { method: 'POST', token, body: '{"Comment":"x"}' });
    assert.equal(r.status, 403);
    assert.match(r.json.error.message, /Missing delegated scopes.*Machine\.Isolate/);
  });
});
