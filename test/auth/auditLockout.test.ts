import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SecretLockout } from '../../src/server/auth/secretLockout.ts';
import type { AuditEntry } from '../../src/store/store.ts';
import { form, getToken, postForm, startAuthServer, type AuthServer } from './harness.ts';

let server: AuthServer;
let clock = Date.now();
const lockout = new SecretLockout({ now: () => clock });

before(async () => {
  server = await startAuthServer({ lockout });
});
after(async () => server.close());

const v1 = () => `${server.base}/${server.tenant.id}/oauth2/token`;
const tokenAudits = async (): Promise<AuditEntry[]> => server.store.listAudit({ top: 10_000, skip: 0, action: 'token.issue' });

async function attempt(clientId: string, secret: string): Promise<{ status: number; body: { error?: string; error_codes?: number[]; correlation_id?: string } }> {
  const res = await postForm(v1(), form({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, resource: 'https://api.securitycenter.microsoft.com' }));
  return { status: res.status, body: (await res.json()) as { error?: string; error_codes?: number[] } };
}

describe('brute-force lockout', () => {
  it('after 10 wrong secrets within 5 minutes, even the right secret is refused (without checking) for a while', async () => {
    const creds = await server.createApp({ name: 'Guessed' });
    for (let i = 0; i < 10; i++) {
      const r = await attempt(creds.clientId, `wrong-${i}`);
      assert.equal(r.status, 401);
      assert.deepEqual(r.body.error_codes, [7000215]);
    }
    // Locked: same answer as a bad secret, also for the right one.
    const t = performance.now();
    const locked = await attempt(creds.clientId, creds.secret);
    assert.equal(locked.status, 401);
    assert.equal(locked.body.error, 'invalid_client');
    assert.deepEqual(locked.body.error_codes, [7000215]);
    assert.ok(performance.now() - t < 1000);
    const rows = (await tokenAudits()).filter((a) => a.target === creds.clientId);
    assert.equal(rows.length, 11);
    assert.deepEqual((rows.at(-1)!.detail as { lockedOut?: boolean }).lockedOut, true);
    assert.ok(rows.slice(0, 10).every((r) => (r.detail as { lockedOut?: boolean }).lockedOut === undefined));

    // Other clients are unaffected.
    const other = await server.createApp({ name: 'Bystander' });
    assert.equal((await attempt(other.clientId, other.secret)).status, 200);

    // After the lock expires, the right secret works again.
    clock += 16 * 60_000;
    assert.equal((await attempt(creds.clientId, creds.secret)).status, 200);
  });

  it('failures spread over more than 5 minutes do not lock', async () => {
    const creds = await server.createApp({ name: 'Clumsy' });
    for (let i = 0; i < 9; i++) assert.equal((await attempt(creds.clientId, 'oops')).status, 401);
    clock += 6 * 60_000;
    for (let i = 0; i < 9; i++) assert.equal((await attempt(creds.clientId, 'oops')).status, 401);
    assert.equal((await attempt(creds.clientId, creds.secret)).status, 200);
  });

  it('a success resets the count', async () => {
    const creds = await server.createApp({ name: 'Recovering' });
    for (let i = 0; i < 9; i++) await attempt(creds.clientId, 'oops');
    assert.equal((await attempt(creds.clientId, creds.secret)).status, 200);
    for (let i = 0; i < 9; i++) await attempt(creds.clientId, 'oops');
    assert.equal((await attempt(creds.clientId, creds.secret)).status, 200);
  });
});

describe('audit', () => {
  it('records every issued token and every failure with who, result, status, IP, correlation id and detail', async () => {
    const creds = await server.createApp({ name: 'Audited' });
    const before = (await tokenAudits()).length;
    await getToken(server, creds);
    const bad = await attempt(creds.clientId, 'wrong');
    await postForm(
      `${server.base}/${server.tenant.id}/oauth2/v2.0/token`,
      form({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.secret, scope: 'https://graph.microsoft.com/.default' }),
    );
    await postForm(`${server.base}/nope/oauth2/token`, form({ grant_type: 'client_credentials', client_id: creds.clientId }));
    await postForm(v1(), form({ grant_type: 'client_credentials' }));
    await postForm(v1(), `pad=${'x'.repeat(100 * 1024)}`);

    const rows = (await tokenAudits()).slice(before);
    assert.equal(rows.length, 6);
    const [ok, wrong, badScope, badTenant, noClient, tooBig] = rows as [AuditEntry, AuditEntry, AuditEntry, AuditEntry, AuditEntry, AuditEntry];

    assert.equal(ok.actorType, 'app');
    assert.equal(ok.actorId, creds.clientId);
    assert.equal(ok.actorName, 'Audited');
    assert.equal(ok.target, creds.clientId);
    assert.equal(ok.result, 'success');
    assert.equal(ok.status, 200);
    assert.equal(ok.clientIp, '127.0.0.1');
    assert.match(ok.correlationId ?? '', /^[0-9a-f-]{36}$/);
    assert.deepEqual(ok.detail, { version: '1.0', grantType: 'client_credentials', audience: 'https://api.securitycenter.microsoft.com' });

    assert.equal(wrong.result, 'failure');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.correlationId, bad.body.correlation_id);
    assert.deepEqual(wrong.detail, { version: '1.0', grantType: 'client_credentials', audience: null, error: 'AADSTS7000215' });

    assert.equal(badScope.result, 'failure');
    assert.deepEqual(badScope.detail, { version: '2.0', grantType: 'client_credentials', audience: 'https://graph.microsoft.com', error: 'AADSTS500011' });

    assert.equal(badTenant.target, creds.clientId);
    assert.equal((badTenant.detail as { error: string }).error, 'AADSTS90002');

    assert.equal(noClient.target, null);
    assert.equal(noClient.actorId, '(none)');
    assert.equal((noClient.detail as { error: string }).error, 'AADSTS900144');

    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.result, 'failure');
  });

  it('never stores or logs a secret, good or bad, nor an issued token', async () => {
    const creds = await server.createApp({ name: 'Secretive' });
    const token = await getToken(server, creds);
    const wrongSecret = 'ZZZZQ~wrongwrongwrongwrongwrongwrongwro';
    await attempt(creds.clientId, wrongSecret);
    await postForm(v1(), form({ grant_type: 'client_credentials', resource: 'https://api.securitycenter.microsoft.com' }), {
      authorization: `Basic ${Buffer.from(`${creds.clientId}:${creds.secret}`).toString('base64')}`,
    });
    await fetch(`${server.base}/api/whoami`, { headers: { authorization: `Bearer ${token}` } });
    const audit = JSON.stringify(await server.store.listAudit({ top: 100_000, skip: 0 }));
    const logs = server.logs.join('');
    assert.ok(logs.length > 0, 'the server did log (level trace)');
    for (const needle of [creds.secret, encodeURIComponent(creds.secret), wrongSecret, token, token.split('.')[2]!]) {
      assert.ok(!audit.includes(needle), 'audit must not contain secrets or tokens');
      assert.ok(!logs.includes(needle), 'logs must not contain secrets or tokens');
    }
  });
});
