// The simulator admin API (status, devices, journal, faults, reset, seed; authorization and bad input) and
// runSimulate, which prints exactly `N devices online`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { DEMO_SHA1, Fleet, registerSimulatorAdmin, runSimulate } from '../../src/simulator/index.ts';
import { call, startTestServer, type TestServer } from '../helpers/testServer.ts';

describe('simulator admin API', () => {
  let server: TestServer;
  let fleet: Fleet;
  let admin: FastifyInstance;
  let base: string;
  let allowed = true;

  before(async () => {
    server = await startTestServer();
    fleet = new Fleet({ server: server.url, enrollToken: await server.enrollToken(), seed: 5, profile: 'instant' });
    await fleet.start(4);
    admin = Fastify();
    registerSimulatorAdmin(admin, fleet, { authorize: () => allowed });
    await admin.listen({ host: '127.0.0.1', port: 0 });
    const addr = admin.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/admin/simulator`;
  });
  after(async () => {
    await admin.close();
    await fleet.stop();
    await server.close();
  });

  const post = (path: string, body?: unknown, raw?: string) =>
    call(`${base}${path}`, { method: 'POST', ...(body !== undefined || raw !== undefined ? { body: raw ?? JSON.stringify(body) } : {}) });

  it('reports status and devices', async () => {
    const s = await call(`${base}/status`);
    assert.equal(s.status, 200);
    assert.equal(s.json.devices, 4);
    assert.equal(s.json.online, 4);
    assert.equal(s.json.seed, '5');
    assert.equal(s.json.profile, 'instant');
    const d = await call(`${base}/devices`);
    assert.equal(d.json.length, 4);
    assert.match(d.json[0].machineId, /^[0-9a-f]{40}$/);
  });

  it('shows the journal of what a device received and answered', async () => {
    const dev = fleet.devices()[0]!;
    const token = await server.token(['Machine.StopAndQuarantine', 'Machine.Read.All']);
    const r = await call(`${server.url}/api/machines/${dev.machineId}/StopAndQuarantineFile`, {
      method: 'POST',
      token,
      body: JSON.stringify({ Comment: 'journal', Sha1: DEMO_SHA1 }),
    });
    assert.equal(r.status, 201);
    const events = async () => (await call(`${base}/journal/${dev.machineId}`)).json.entries.map((e: any) => e.event);
    const until = Date.now() + 5000;
    while (!(await events()).includes('result')) {
      assert.ok(Date.now() < until, 'no result in the journal');
      await new Promise((res) => setTimeout(res, 25));
    }
    const j = (await call(`${base}/journal/${dev.hostname}`)).json;
    assert.equal(j.machineId, dev.machineId);
    assert.deepEqual(
      j.entries.filter((e: any) => e.actionId === r.json.id).map((e: any) => e.event),
      ['received', 'ack', 'result'],
    );
    assert.equal((await call(`${base}/journal/${'0'.repeat(40)}`)).status, 404);
  });

  it('injects and clears faults', async () => {
    const dev = fleet.devices()[1]!;
    const r = await post('/faults', { device: dev.machineId, kind: 'fail-next' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.affected, [dev.machineId]);
    const frac = await post('/faults', { fraction: 0.5, kind: 'latency', latencyMs: 10 });
    assert.equal(frac.json.affected.length, 2);
    assert.ok((await call(`${base}/status`)).json.faulted >= 2);
    assert.equal((await call(`${base}/faults`, { method: 'DELETE' })).json.cleared, true);
    assert.equal((await call(`${base}/status`)).json.faulted, 0);
  });

  it('refuses bad fault requests with 400/404 JSON', async () => {
    const cases: [unknown, number][] = [
      [{ kind: 'meteor', device: 0 }, 400],
      [{ kind: 'offline' }, 400], // neither device nor fraction
      [{ kind: 'offline', device: 0, fraction: 0.5 }, 400],
      [{ kind: 'offline', fraction: 0 }, 400],
      [{ kind: 'offline', fraction: 2 }, 400],
      [{ kind: 'offline', device: 0, durationMs: -1 }, 400],
      [{ kind: 'offline', device: 0, extra: true }, 400],
      [{ kind: 'offline', device: 'no-such-host' }, 404],
    ];
    for (const [body, status] of cases) {
      const r = await post('/faults', body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal(typeof r.json.error.code, 'string');
    }
    const broken = await post('/faults', undefined, '{"kind":');
    assert.equal(broken.status, 400);
    const big = await post('/faults', undefined, JSON.stringify({ kind: 'offline', device: 'x'.repeat(20_000) }));
    assert.equal(big.status, 413);
  });

  it('resets and reseeds the fleet', async () => {
    assert.equal((await post('/reset')).status, 200);
    const before = fleet.summaries().map((d) => d.hostname);
    const bad = await post('/seed', { seed: '' });
    assert.equal(bad.status, 400);
    const r = await post('/seed', { seed: 'other' });
    assert.equal(r.status, 200);
    assert.equal(r.json.seed, 'other');
    assert.equal(r.json.online, 4);
    assert.notDeepEqual(
      fleet.summaries().map((d) => d.hostname),
      before,
    );
  });

  it('answers 401 when not authorized', async () => {
    allowed = false;
    try {
      const r = await call(`${base}/status`);
      assert.equal(r.status, 401);
      assert.equal(r.json.error.code, 'Unauthorized');
      assert.equal((await post('/reset')).status, 401);
    } finally {
      allowed = true;
    }
  });

  it('answers 503 while a fleet getter has no fleet yet', async () => {
    const app = Fastify();
    registerSimulatorAdmin(app, () => null, { authorize: () => true });
    const r = await app.inject({ method: 'GET', url: '/admin/simulator/status' });
    assert.equal(r.statusCode, 503);
    await app.close();
  });
});

describe('runSimulate', () => {
  it('prints exactly "N devices online" once all are enrolled and connected, and serves the admin API', async () => {
    const server = await startTestServer();
    const lines: string[] = [];
    const sim = await runSimulate({
      server: server.url,
      enrollToken: await server.enrollToken(),
      devices: 3,
      seed: 9,
      profile: 'instant',
      adminPort: 0,
      print: (l) => lines.push(l),
    });
    try {
      assert.equal(lines[0], '3 devices online');
      assert.equal(server.built.gateway.connectedCount(), 3);
      assert.ok(sim.adminUrl);
      assert.equal((await call(`${sim.adminUrl}/status`)).json.online, 3);
    } finally {
      await sim.stop();
      await server.close();
    }
  });

  it('fails clearly on a refused token, a bad URL, a bad size or an unknown profile', async () => {
    const server = await startTestServer();
    try {
      await assert.rejects(
        runSimulate({ server: server.url, enrollToken: 'wrong', devices: 2, print: () => {} }),
        /enrollment of .* failed: 401 InvalidEnrollToken/,
      );
      assert.equal(server.built.gateway.connectedCount(), 0);
      await assert.rejects(runSimulate({ server: 'not a url', enrollToken: 't', print: () => {} }), /--server/);
      await assert.rejects(runSimulate({ server: 'ftp://x', enrollToken: 't', print: () => {} }), /http/);
      await assert.rejects(runSimulate({ server: server.url, enrollToken: 't', devices: 0, print: () => {} }), /--devices/);
      await assert.rejects(
        runSimulate({ server: server.url, enrollToken: 't', profile: 'turbo', print: () => {} }),
        /unknown simulator profile/,
      );
    } finally {
      await server.close();
    }
  });
});
