// Enrollment: tokens (bad, expired, revoked, used up), facts → machine fields, re-enrollment, and every bad input
// answered with a JSON error (never a 500).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { machineIdFromPublicKey } from '../../src/core/ids.ts';
import { generateDeviceKey } from '../../src/protocol/signing.ts';
import { nowTimestamp } from '../../src/server/clock.ts';
import { startHarness, type Harness } from './gatewayHarness.ts';
import { enroll, linuxFacts } from './rawDevice.ts';

async function post(url: string, body: string | Buffer, contentType = 'application/json') {
  const res = await fetch(`${url}/agent/v1/enroll`, { method: 'POST', headers: { 'content-type': contentType }, body });
  const text = await res.text();
  return { status: res.status, text, json: text ? JSON.parse(text) : null, headers: res.headers };
}

describe('enrollment', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h.close());

  it('enrolls a Linux device and maps its facts onto the machine', async () => {
    const { token } = await h.enrollToken({ group: 'finance' });
    const r = await enroll(h.url, token, linuxFacts('Web-01', { tags: ['prod', 'prod', 'web'] }));
    assert.equal(r.status, 200);
    assert.match(r.body.machineId, /^[0-9a-f]{40}$/);
    assert.equal(r.body.machineId, machineIdFromPublicKey(r.key.publicKey));
    assert.equal(r.body.protocolVersion, 1);
    const m = (await h.machine(r.body.machineId))!;
    assert.equal(m.osPlatform, 'Linux');
    assert.equal(m.onboardingStatus, 'Onboarded');
    assert.equal(m.healthStatus, 'Inactive'); // not connected yet
    assert.equal(m.computerDnsName, 'web-01');
    assert.equal(m.aadDeviceId, null);
    assert.equal(m.isAadJoined, false);
    assert.deepEqual(m.machineTags, ['prod', 'web']);
    assert.equal(m.enrollGroup, 'finance');
    assert.equal(m.rbacGroupId, 0);
    assert.equal(m.rbacGroupName, null);
    assert.equal(m.lastIpAddress, '10.9.8.7');
    assert.equal(m.agentVersion, '0.1.0');
    assert.equal(m.osProcessor, 'x64');
    assert.equal(m.devicePublicKey, r.key.publicKey);
    assert.deepEqual(m.capabilities, ['StopAndQuarantineFile', 'Isolate', 'Unisolate', 'RunAntiVirusScan']);
    assert.equal(m.simulated, false);
    const audit = h.audits.find((a) => a.action === 'device.enroll' && a.target === r.body.machineId);
    assert.equal(audit?.result, 'success');
  });

  it('keeps aadDeviceId when given and appends the domain to the DNS name', async () => {
    const { token } = await h.enrollToken();
    const aad = '0b8f3a7e-2d1c-4e5f-9a6b-7c8d9e0f1a2b';
    const r = await enroll(h.url, token, linuxFacts('db', { aadDeviceId: aad.toUpperCase(), domain: 'corp.example' }));
    const m = (await h.machine(r.body.machineId))!;
    assert.equal(m.aadDeviceId, aad);
    assert.equal(m.isAadJoined, true);
    assert.equal(m.computerDnsName, 'db.corp.example');
  });

  it('re-enrolling the same key keeps the machine id and updates its facts', async () => {
    const { token } = await h.enrollToken({ group: 'a' });
    const key = generateDeviceKey();
    const first = await enroll(h.url, token, linuxFacts('old-name'), key);
    const firstSeen = (await h.machine(first.body.machineId))!.firstSeen;
    const { token: token2 } = await h.enrollToken({ group: 'b' });
    const second = await enroll(h.url, token2, linuxFacts('new-name', { agentVersion: '0.2.0' }), key);
    assert.equal(second.status, 200);
    assert.equal(second.body.machineId, first.body.machineId);
    const m = (await h.machine(first.body.machineId))!;
    assert.equal(m.computerDnsName, 'new-name');
    assert.equal(m.agentVersion, '0.2.0');
    assert.equal(m.enrollGroup, 'b');
    assert.equal(m.firstSeen, firstSeen);
  });

  it('refuses an unknown token with 401 and audits it', async () => {
    const r = await enroll(h.url, 'not-a-real-token', linuxFacts('x'));
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'InvalidEnrollToken');
    assert.ok(h.audits.some((a) => a.action === 'device.enroll' && a.result === 'failure'));
  });

  it('refuses an expired token', async () => {
    const { token } = await h.enrollToken({ expiresInSec: -1 });
    const r = await enroll(h.url, token, linuxFacts('x'));
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'InvalidEnrollToken');
    assert.match(r.body.error.message, /expired/);
  });

  it('refuses a revoked token', async () => {
    const { token, id } = await h.enrollToken();
    assert.equal(await h.store.revokeEnrollToken(id, nowTimestamp()), true);
    const r = await enroll(h.url, token, linuxFacts('x'));
    assert.equal(r.status, 401);
    assert.match(r.body.error.message, /revoked/);
  });

  it('refuses a used-up token', async () => {
    const { token } = await h.enrollToken({ maxUses: 1 });
    assert.equal((await enroll(h.url, token, linuxFacts('one'))).status, 200);
    const r = await enroll(h.url, token, linuxFacts('two'));
    assert.equal(r.status, 401);
    assert.match(r.body.error.message, /used up/);
  });

  it('refuses an offboarded machine with 403', async () => {
    const { token } = await h.enrollToken();
    const key = generateDeviceKey();
    const first = await enroll(h.url, token, linuxFacts('gone'), key);
    await h.store.updateMachine(first.body.machineId, { offboarded: true });
    const r = await enroll(h.url, token, linuxFacts('gone'), key);
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'MachineOffboarded');
  });

  it('answers every malformed body with 400 JSON', async () => {
    const { token } = await h.enrollToken();
    const key = generateDeviceKey();
    const cases: [string, string | Buffer, string?][] = [
      ['not JSON', '{"enrollToken":'],
      ['empty', ''],
      ['a JSON array', '[]'],
      ['a JSON string', '"hello"'],
      ['missing facts', JSON.stringify({ enrollToken: token, publicKey: key.publicKey })],
      ['an extra property', JSON.stringify({ enrollToken: token, publicKey: key.publicKey, facts: linuxFacts('x'), admin: true })],
      ['bad facts', JSON.stringify({ enrollToken: token, publicKey: key.publicKey, facts: { ...linuxFacts('x'), osBuild: 'new' } })],
      ['a form body', `enrollToken=${token}`, 'application/x-www-form-urlencoded'],
      ['binary garbage', Buffer.from([0xff, 0xfe, 0x00, 0x01]), 'application/octet-stream'],
    ];
    for (const [name, body, ct] of cases) {
      const r = await post(h.url, body, ct);
      assert.equal(r.status, 400, name);
      assert.equal(r.json.error.code, 'InvalidRequest', name);
      assert.equal(typeof r.json.error.message, 'string', name);
    }
  });

  it('refuses a public key that is not Ed25519 without consuming the token', async () => {
    const { token } = await h.enrollToken({ maxUses: 1 });
    for (const publicKey of ['AAAA', 'MCowBQYDK2VwAyEA', Buffer.from('x'.repeat(44)).toString('base64')]) {
      const r = await post(h.url, JSON.stringify({ enrollToken: token, publicKey, facts: linuxFacts('x') }));
      assert.equal(r.status, 400);
      assert.equal(r.json.error.code, 'InvalidPublicKey');
    }
    assert.equal((await enroll(h.url, token, linuxFacts('x'))).status, 200);
  });

  it('refuses an oversized body with 413 JSON', async () => {
    const r = await post(h.url, JSON.stringify({ pad: 'x'.repeat(100_000) }));
    assert.equal(r.status, 413);
    assert.equal(r.json.error.code, 'RequestEntityTooLarge');
  });

  it('slows down an address after repeated failures (429 with Retry-After)', async () => {
    const local = await startHarness();
    try {
      let last = 0;
      for (let i = 0; i < 31; i++) last = (await enroll(local.url, `wrong-${i}`, linuxFacts('x'))).status;
      assert.equal(last, 429);
      const r = await post(local.url, '{}');
      assert.equal(r.status, 429);
      assert.equal(r.json.error.code, 'TooManyRequests');
      assert.ok(Number(r.headers.get('retry-after')) > 0);
    } finally {
      await local.close();
    }
  });
});
