// Every mutating call and every token issued is recorded, readable through /tourniquet/v1/audit.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ALL_ACTION_ROLES, call, startTestServer } from '../helpers/testServer.ts';

describe('audit', () => {
  it('records who did what, to what, from where, with the correlation id', async () => {
    const s = await startTestServer();
    try {
      const token = await s.token(ALL_ACTION_ROLES, 'Auditor app');
      const m = await s.seedMachine();
      const bad = await call(`${s.url}/api/machines/${m.id}/StopAndQuarantineFile`, { method: 'POST', token, body: '{}' });
      const ok = await call(`${s.url}/api/machines/${m.id}/StopAndQuarantineFile`, {
        method: 'POST', token, body: JSON.stringify({ Comment: 'x', Sha1: randomBytes(20).toString('hex') }),
      });
      await call(`${s.url}/api/machineactions/${ok.json.id}/cancel`, { method: 'POST', token, body: '{"Comment":"fp"}' });
      const r = await call(`${s.url}/tourniquet/v1/audit?$top=50`, { token });
      assert.equal(r.status, 200, r.text);
      const rows = r.json.value as any[];
      const create = rows.find((e) => e.action === 'machineAction.create' && e.result === 'success');
      assert.ok(create, JSON.stringify(rows));
      assert.equal(create.target, ok.json.id);
      assert.equal(create.actorName, 'Auditor app');
      assert.equal(create.clientIp, '127.0.0.1');
      assert.match(create.correlationId, /^\|[0-9a-f]{8}-[0-9a-f]{16}\.$/);
      const failed = rows.find((e) => e.action === 'machineAction.create' && e.result === 'failure');
      assert.ok(failed);
      assert.equal(failed.correlationId, bad.json.error.target);
      assert.ok(rows.some((e) => e.action === 'machineAction.cancel' && e.result === 'success'));
      assert.ok(rows.some((e) => e.action === 'token.issue' && e.result === 'success'));
      assert.ok(!r.text.includes('clientSecret'));
      const since = await call(`${s.url}/tourniquet/v1/audit?since=2999-01-01T00:00:00Z`, { token });
      assert.deepEqual(since.json.value, []);
      const bads = await call(`${s.url}/tourniquet/v1/audit?$top=abc`, { token });
      assert.equal(bads.status, 400);
    } finally {
      await s.close();
    }
  });

  it('is permission-checked', async () => {
    const s = await startTestServer();
    try {
      const token = await s.token(['Machine.Read.All']);
      const r = await call(`${s.url}/tourniquet/v1/audit`, { token });
      assert.equal(r.status, 403);
      assert.match(r.json.error.message, /Tourniquet\.Audit\.Read/);
      assert.equal((await call(`${s.url}/tourniquet/v1/audit`)).status, 401);
    } finally {
      await s.close();
    }
  });
});
