// grant_type=password on the v1 and v2 token endpoints: delegated tokens for local users, Entra's errors, lockout.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { hashSecret, newClientSecret } from '../../src/server/auth/secrets.ts';
import { nowTimestamp } from '../../src/server/clock.ts';
import { call } from '../helpers/testServer.ts';
import { decodeJwt, entraError, PASSWORD, postForm, startRbacServer, type RbacServer } from './helpers.ts';

const MDE = 'https://api.securitycenter.microsoft.com';

let s: RbacServer;
let alice: { oid: string; upn: string };

before(async () => {
  // Long enough that a slow host's scrypt calls cannot outlast the lock between the requests that expect it.
  s = await startRbacServer({ userLockout: { maxFailures: 3, lockSeconds: 4 } });
  alice = await s.user('alice@contoso.com', ['Security responder']);
});
after(() => s.close());

const v1 = (over: Record<string, string> = {}) => ({
  grant_type: 'password',
  client_id: s.publicClientId,
  username: 'alice@contoso.com',
  password: PASSWORD,
  resource: MDE,
  ...over,
});
const v2 = (over: Record<string, string> = {}) => {
  const { resource: _r, ...rest } = v1();
  return { ...rest, scope: `${MDE}/.default`, ...over };
};

describe('password grant: tokens', () => {
  it('v1: a user token with scp from the roles, upn, unique_name, name, oid, tid, appid', async () => {
    const res = await postForm(s.tokenEndpoint('1.0'), v1());
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = JSON.parse(text);
    assert.deepEqual(Object.keys(body), ['token_type', 'scope', 'expires_in', 'ext_expires_in', 'access_token']);
    const c = decodeJwt(body.access_token);
    assert.equal(c.ver, '1.0');
    assert.equal(c.iss, `https://sts.windows.net/${s.tenantId}/`);
    assert.equal(c.aud, MDE);
    assert.equal(c.tid, s.tenantId);
    assert.equal(c.oid, alice.oid);
    assert.equal(c.upn, 'alice@contoso.com');
    assert.equal(c.unique_name, 'alice@contoso.com');
    assert.equal(c.name, 'alice');
    assert.equal(c.appid, s.publicClientId);
    assert.equal(c.appidacr, '0', 'public client: no client authentication');
    assert.equal(c.idtyp, 'user');
    assert.equal(c.roles, undefined);
    const scp = String(c.scp).split(' ');
    for (const want of ['Machine.Read', 'Machine.StopAndQuarantine', 'Machine.Isolate', 'Machine.CollectForensics']) assert.ok(scp.includes(want), want);
    assert.ok(!scp.includes('Tourniquet.Rbac.Manage'), 'a responder does not manage RBAC');
    assert.equal(body.scope, c.scp);
  });

  it('v2: azp, preferred_username; explicit scopes narrow scp; .default gives all', async () => {
    const res = await postForm(s.tokenEndpoint('2.0'), v2({ scope: `${MDE}/Machine.Read ${MDE}/Machine.Isolate openid` }));
    assert.equal(res.status, 200);
    const c = decodeJwt(((await res.json()) as { access_token: string }).access_token);
    assert.equal(c.ver, '2.0');
    assert.equal(c.iss, `https://login.microsoftonline.com/${s.tenantId}/v2.0`);
    assert.equal(c.azp, s.publicClientId);
    assert.equal(c.preferred_username, 'alice@contoso.com');
    assert.equal(c.scp, 'Machine.Read Machine.Isolate');
  });

  it('a scope the roles do not grant is refused like missing consent (AADSTS65001)', async () => {
    await entraError(await postForm(s.tokenEndpoint('2.0'), v2({ scope: `${MDE}/Tourniquet.Rbac.Manage` })), 400, 'invalid_grant', 65001);
  });

  it('the token works on /api and requestor is the UPN', async () => {
    const token = await s.userToken('alice@contoso.com');
    const m = await s.seedMachine();
    const r = await call(`${s.url}/api/machines/${m.id}/isolate`, { method: 'POST', token, body: '{"Comment":"c","IsolationType":"Full"}' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.requestor, 'alice@contoso.com');
  });

  it('upn matching is case-insensitive', async () => {
    assert.equal((await postForm(s.tokenEndpoint('1.0'), v1({ username: 'ALICE@Contoso.com' }))).status, 200);
  });

  it('a confidential client must authenticate; then its appidacr is 1', async () => {
    const clientId = randomUUID();
    const secret = newClientSecret();
    await s.store.createApp({
      clientId,
      tenantId: s.tenantId,
      name: 'Native tool',
      secretHash: await hashSecret(secret),
      roles: [],
      createdAt: nowTimestamp(),
      disabled: false,
    });
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ client_id: clientId })), 401, 'invalid_client', 7000218);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ client_id: clientId, client_secret: 'wrong' })), 401, 'invalid_client', 7000215);
    const ok = await postForm(s.tokenEndpoint('1.0'), v1({ client_id: clientId, client_secret: secret }));
    assert.equal(ok.status, 200);
    assert.equal(decodeJwt(((await ok.json()) as { access_token: string }).access_token).appidacr, '1');
  });

  it('the token endpoint audits the user behind a delegated token', async () => {
    await s.userToken('alice@contoso.com');
    const rows = await s.store.listAudit({ top: 1000, skip: 0, action: 'token.issue' });
    const mine = rows.filter((r) => r.actorType === 'user' && r.actorId === alice.oid && r.result === 'success');
    assert.ok(mine.length > 0);
    assert.equal(mine.at(-1)!.actorName, 'alice@contoso.com');
    assert.equal((mine.at(-1)!.detail as { clientId: string }).clientId, s.publicClientId);
  });
});

describe('password grant: errors as Entra answers them', () => {
  it('missing parameters → AADSTS900144', async () => {
    for (const [name, params] of [
      ['username', v1({ username: '' })],
      ['password', v1({ password: '' })],
      ['resource', v1({ resource: '' })],
      ['client_id', v1({ client_id: '' })],
    ] as const) {
      const body = await entraError(await postForm(s.tokenEndpoint('1.0'), params), 400, 'invalid_request', 900144);
      assert.match(body.error_description, new RegExp(`'${name}'`));
    }
    await entraError(await postForm(s.tokenEndpoint('2.0'), v2({ scope: '' })), 400, 'invalid_request', 900144);
  });

  it('wrong password and unknown user are the same AADSTS50126', async () => {
    const wrong = await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ password: 'nope-nope-nope' })), 400, 'invalid_grant', 50126);
    assert.match(wrong.error_description, /invalid username or password/);
    await entraError(await postForm(s.tokenEndpoint('2.0'), v2({ username: 'nobody@contoso.com' })), 400, 'invalid_grant', 50126);
    // The failure is counted, so alice starts her next test clean only after a success.
    assert.equal((await postForm(s.tokenEndpoint('1.0'), v1())).status, 200);
  });

  it('a disabled account → AADSTS50057, but only for someone who knows the password', async () => {
    const u = await s.user('disabled@contoso.com', ['Security reader']);
    const token = await s.userToken(u.upn);
    await s.admin.updateUser(u.oid, { enabled: false });
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn })), 400, 'invalid_grant', 50057);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn, password: 'wrong-password' })), 400, 'invalid_grant', 50126);
    // Tokens issued before the account was disabled stop working (this node at once, others within seconds).
    const r = await call(`${s.url}/api/machines`, { token });
    assert.equal(r.status, 401, r.text);
  });

  it('client problems: unknown client 700016, public client with a secret 700025, unknown tenant 90002, bad scope 70011', async () => {
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ client_id: randomUUID() })), 400, 'unauthorized_client', 700016);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ client_secret: 'x' })), 401, 'invalid_client', 700025);
    await entraError(
      await postForm(`${s.url}/${randomUUID()}/oauth2/token`, v1()),
      400,
      'invalid_request',
      90002,
    );
    await entraError(await postForm(s.tokenEndpoint('2.0'), v2({ scope: 'openid profile' })), 400, 'invalid_scope', 70011);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ resource: 'https://graph.microsoft.com' })), 400, 'invalid_resource', 500011);
  });

  it('an over-long user name or password is just wrong', async () => {
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: `${'a'.repeat(300)}@contoso.com` })), 400, 'invalid_grant', 50126);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ password: 'x'.repeat(2000) })), 400, 'invalid_grant', 50126);
  });
});

describe('password grant: lockout', () => {
  it('locks after N wrong passwords (AADSTS50053, audited), refuses even the right one, and unlocks after the lock time', async () => {
    const u = await s.user('locky@contoso.com', ['Security reader']);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn, password: 'wrong-1' })), 400, 'invalid_grant', 50126);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn, password: 'wrong-2' })), 400, 'invalid_grant', 50126);
    const locking = await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn, password: 'wrong-3' })), 400, 'invalid_grant', 50053);
    assert.match(locking.error_description, /account is locked/);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn })), 400, 'invalid_grant', 50053);
    const audit = await s.store.listAudit({ top: 100, skip: 0, action: 'user.lockout' });
    const entry = audit.find((a) => a.target === u.oid);
    assert.ok(entry, 'the lock is audited');
    assert.equal(entry.actorName, u.upn);
    const lockedUntil = (await s.admin.listUsers()).find((x) => x.oid === u.oid)?.lockedUntil;
    assert.ok(lockedUntil, 'users list shows the lock');
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(lockedUntil) - Date.now()) + 100));
    assert.equal((await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn }))).status, 200, 'lock expired');
  });

  it('a success resets the count; an administrator can unlock', async () => {
    const u = await s.user('resets@contoso.com', ['Security reader']);
    for (let i = 0; i < 2; i++) await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn, password: 'bad' })), 400, 'invalid_grant', 50126);
    assert.equal((await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn }))).status, 200);
    for (let i = 0; i < 2; i++) await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn, password: 'bad' })), 400, 'invalid_grant', 50126);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn, password: 'bad' })), 400, 'invalid_grant', 50053);
    await s.admin.updateUser(u.upn, { unlock: true });
    assert.equal((await postForm(s.tokenEndpoint('1.0'), v1({ username: u.upn }))).status, 200);
  });

  it('unknown names lock the same way, so lockout does not reveal which accounts exist', async () => {
    const ghost = 'ghost@contoso.com';
    for (let i = 0; i < 2; i++) await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: ghost })), 400, 'invalid_grant', 50126);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: ghost })), 400, 'invalid_grant', 50053);
    await entraError(await postForm(s.tokenEndpoint('1.0'), v1({ username: ghost })), 400, 'invalid_grant', 50053);
  });
});
