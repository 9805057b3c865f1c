// Throttling per (application, tenant, API): 429 TooManyRequests with Retry-After in whole seconds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, startTestServer } from '../helpers/testServer.ts';

describe('rate limits', () => {
  it('refuses the call past the per-minute quota, per app and per API', async () => {
    const s = await startTestServer({ rateLimit: { perMinute: 3, perHour: 1000 } });
    try {
      const a = await s.token(['Machine.Read.All']);
      const b = await s.token(['Machine.Read.All']);
      for (let i = 0; i < 3; i++) assert.equal((await call(`${s.url}/api/machines`, { token: a })).status, 200);
      const r = await call(`${s.url}/api/machines`, { token: a });
      assert.equal(r.status, 429);
      assert.equal(r.json.error.code, 'TooManyRequests');
      assert.match(r.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
      assert.ok(Number(r.headers.get('retry-after')) <= 60);
      // another app, and another API of the same app, have their own counters
      assert.equal((await call(`${s.url}/api/machines`, { token: b })).status, 200);
      assert.equal((await call(`${s.url}/api/machineactions`, { token: a })).status, 200);
    } finally {
      await s.close();
    }
  });

  it('counts the hour separately, and a refused call does not use quota', async () => {
    const s = await startTestServer({ rateLimit: { perMinute: 100, perHour: 2 } });
    try {
      const a = await s.token(['Machine.Read.All']);
      assert.equal((await call(`${s.url}/api/machines`, { token: a })).status, 200);
      assert.equal((await call(`${s.url}/api/machines`, { token: a })).status, 200);
      const r = await call(`${s.url}/api/machines`, { token: a });
      assert.equal(r.status, 429);
      assert.ok(Number(r.headers.get('retry-after')) > 60);
      // the refused calls were refunded to the minute counter: a fresh API still works
      assert.equal((await call(`${s.url}/api/machineactions`, { token: a })).status, 200);
    } finally {
      await s.close();
    }
  });
});
