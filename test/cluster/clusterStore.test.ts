// The cluster part of the Store (nodes, connection ownership, reaping, the re-delivery query) on SQLite and on
// PostgreSQL (a fresh schema, dropped afterwards), plus the configuration edges: database URLs with ?schema=,
// the shared rate limiter, the simulator's server list and the device client's failover.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { duplicateKey } from '../../src/core/actions.ts';
import { millisToTimestamp } from '../../src/core/time.ts';
import { DeviceClient } from '../../src/protocol/deviceClient.ts';
import { generateDeviceKey } from '../../src/protocol/signing.ts';
import { openSharedRateLimits } from '../../src/server/cluster/sharedRateLimits.ts';
import { clusterTiming } from '../../src/server/cluster/timing.ts';
import { Fleet, runSimulate } from '../../src/simulator/index.ts';
import { openStore, parseDatabaseUrl } from '../../src/store/open.ts';
import { openPostgresStore } from '../../src/store/postgres/openPostgresStore.ts';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import type { Store } from '../../src/store/store.ts';
import { action, machine } from '../store/fixtures.ts';
import { PG_URL } from './clusterHarness.ts';

const SKIP_PG = process.env.TOURNIQUET_SKIP_PG === '1';
const run = `tq_cls_${process.pid}_${randomBytes(3).toString('hex')}`;
const schemas: string[] = [];
const dirs: string[] = [];

after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (schemas.length === 0) return;
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  for (const s of schemas) await c.query(`drop schema if exists "${s}" cascade`);
  await c.end();
});

const now = () => millisToTimestamp(Date.now());

const backends: { name: string; open(): Promise<Store> }[] = [
  {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'tq-cluster-'));
      dirs.push(dir);
      return openSqliteStore({ path: join(dir, 'db.sqlite') });
    },
  },
];
if (!SKIP_PG) {
  backends.push({
    name: 'postgres',
    async open() {
      const schema = `${run}_${schemas.length}`;
      schemas.push(schema);
      return openPostgresStore({ url: PG_URL, schema, poolSize: 4 });
    },
  });
}

for (const b of backends) {
  describe(`cluster store (${b.name})`, () => {
    it('registers nodes, refreshes their heartbeat, and tells when a row had gone missing', async () => {
      const s = await b.open();
      try {
        const n = { nodeId: 'node-a:1:abc', startedAt: now(), heartbeatMs: 1000, detail: { pid: 1 } };
        assert.equal(await s.heartbeatNode(n), 'registered');
        assert.equal(await s.heartbeatNode({ ...n, heartbeatMs: 2000 }), 'refreshed');
        assert.deepEqual(await s.listNodes(), [{ ...n, heartbeatMs: 2000 }]);
        await s.removeNode(n.nodeId);
        assert.equal(await s.heartbeatNode(n), 'registered');
      } finally {
        await s.close();
      }
    });

    it('claims and releases connections: only the holder releases, and releasing marks Inactive', async () => {
      const s = await b.open();
      try {
        const m = machine({ healthStatus: 'Active' });
        await s.upsertMachine(m);
        assert.deepEqual(await s.claimConnection(m.id, 'a', now()), { previousNode: null });
        assert.deepEqual(await s.claimConnection(m.id, 'b', now()), { previousNode: 'a' });
        assert.equal(await s.connectionOwner(m.id), 'b');
        // A's late close does nothing: the device lives on B.
        assert.equal(await s.releaseConnection(m.id, 'a', now()), false);
        assert.equal((await s.getMachine(m.id))!.healthStatus, 'Active');
        const at = now();
        assert.equal(await s.releaseConnection(m.id, 'b', at), true);
        const after = (await s.getMachine(m.id))!;
        assert.equal(after.healthStatus, 'Inactive');
        assert.equal(after.lastSeen, at);
        assert.equal(await s.connectionOwner(m.id), null);
        assert.equal(await s.releaseConnection(m.id, 'b', now()), false);
      } finally {
        await s.close();
      }
    });

    it('reaps only nodes whose heartbeat is old, with their devices, leaving moved devices alone', async () => {
      const s = await b.open();
      try {
        const [m1, m2, m3] = [machine({ healthStatus: 'Active' }), machine({ healthStatus: 'Active' }), machine({ healthStatus: 'Active' })];
        for (const m of [m1!, m2!, m3!]) await s.upsertMachine(m);
        await s.heartbeatNode({ nodeId: 'dead', startedAt: now(), heartbeatMs: 1000, detail: null });
        await s.heartbeatNode({ nodeId: 'alive', startedAt: now(), heartbeatMs: 10_000, detail: null });
        await s.claimConnection(m1!.id, 'dead', now());
        await s.claimConnection(m2!.id, 'dead', now());
        await s.claimConnection(m2!.id, 'alive', now()); // moved before the reap
        await s.claimConnection(m3!.id, 'alive', now());
        const r = await s.reapDeadNodes(5000, now());
        assert.deepEqual(r, { nodes: ['dead'], machines: [m1!.id] });
        assert.equal((await s.getMachine(m1!.id))!.healthStatus, 'Inactive');
        assert.equal((await s.getMachine(m2!.id))!.healthStatus, 'Active');
        assert.equal((await s.getMachine(m3!.id))!.healthStatus, 'Active');
        assert.deepEqual((await s.listNodes()).map((n) => n.nodeId), ['alive']);
        assert.deepEqual(await s.reapDeadNodes(5000, now()), { nodes: [], machines: [] });
      } finally {
        await s.close();
      }
    });

    it('finds Pending, unexpired, old-enough actions of the devices a node holds', async () => {
      const s = await b.open();
      try {
        const mine = machine();
        const other = machine();
        await s.upsertMachine(mine);
        await s.upsertMachine(other);
        await s.claimConnection(mine.id, 'me', now());
        await s.claimConnection(other.id, 'them', now());
        const t = Date.now();
        const old = action(mine, { creationDateTimeUtc: millisToTimestamp(t - 60_000), expiresAt: millisToTimestamp(t + 3600_000) });
        const fresh = action(mine, { creationDateTimeUtc: millisToTimestamp(t), expiresAt: millisToTimestamp(t + 3600_000) });
        const expired = action(mine, { creationDateTimeUtc: millisToTimestamp(t - 60_000), expiresAt: millisToTimestamp(t - 1000) });
        const acked = action(mine, { creationDateTimeUtc: millisToTimestamp(t - 60_000), expiresAt: millisToTimestamp(t + 3600_000) });
        const theirs = action(other, { creationDateTimeUtc: millisToTimestamp(t - 60_000), expiresAt: millisToTimestamp(t + 3600_000) });
        for (const a of [old, fresh, expired, acked, theirs]) {
          await s.createAction(a, duplicateKey(a.machineId, a.type, a.relatedFileInfo!.fileIdentifier));
        }
        await s.transitionAction(acked.id, { kind: 'deviceAck' }, now());
        const due = await s.undeliveredActions('me', millisToTimestamp(t - 10_000), millisToTimestamp(t), 100);
        assert.deepEqual(due.map((a) => a.id), [old.id]);
      } finally {
        await s.close();
      }
    });

    it('refuses malformed node ids, machine ids, times and limits', async () => {
      const s = await b.open();
      try {
        const ok = { nodeId: 'n1', startedAt: now(), heartbeatMs: 1, detail: null };
        for (const nodeId of ['', ' x', 'a b', 'x'.repeat(101), 'a;drop', '-leading', 'é']) {
          await assert.rejects(s.heartbeatNode({ ...ok, nodeId }), TypeError, JSON.stringify(nodeId));
          await assert.rejects(s.claimConnection(machine().id, nodeId, now()), TypeError);
        }
        await assert.rejects(s.heartbeatNode({ ...ok, heartbeatMs: -1 }), TypeError);
        await assert.rejects(s.heartbeatNode({ ...ok, heartbeatMs: 1.5 }), TypeError);
        await assert.rejects(s.heartbeatNode({ ...ok, startedAt: '2026-01-01' }), TypeError);
        await assert.rejects(s.claimConnection('not-a-machine', 'n1', now()), TypeError);
        await assert.rejects(s.releaseConnection(machine().id, 'n1', 'yesterday'), TypeError);
        await assert.rejects(s.connectionOwner('x'), TypeError);
        await assert.rejects(s.reapDeadNodes(Number.NaN, now()), TypeError);
        await assert.rejects(s.undeliveredActions('n1', now(), now(), 0), TypeError);
        await assert.rejects(s.undeliveredActions('n1', 'soon', now(), 10), TypeError);
      } finally {
        await s.close();
      }
    });
  });
}

describe('cluster configuration', () => {
  it('parses ?schema= off a PostgreSQL URL and refuses bad ones', () => {
    assert.deepEqual(parseDatabaseUrl('postgres://u@h:5432/db'), { url: 'postgres://u@h:5432/db' });
    const p = parseDatabaseUrl('postgresql://u:p%40ss@h/db?schema=tq_prod&sslmode=require');
    assert.equal(p.schema, 'tq_prod');
    assert.equal(new URL(p.url).searchParams.get('sslmode'), 'require');
    assert.equal(new URL(p.url).searchParams.has('schema'), false);
    assert.equal(new URL(p.url).password, 'p%40ss');
    assert.throws(() => parseDatabaseUrl('mysql://h/db'), TypeError);
    assert.throws(() => parseDatabaseUrl('postgres://h/db?schema=a&schema=b'), TypeError);
  });

  it('refuses unsafe schema names in the URL before connecting', async () => {
    for (const schema of ['Prod', 'a-b', 'x;drop schema public', '1x', '']) {
      await assert.rejects(openStore({ dataDir: '/nonexistent', databaseUrl: `${PG_URL}?schema=${encodeURIComponent(schema)}` }), TypeError, schema);
      await assert.rejects(openSharedRateLimits({ url: PG_URL, schema }), TypeError, schema);
    }
  });

  it('the shared rate limiter refuses to start where the migrations have not run', { skip: SKIP_PG }, async () => {
    const schema = `${run}_empty`;
    schemas.push(schema);
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`create schema ${schema}`);
    await c.end();
    await assert.rejects(openSharedRateLimits({ url: PG_URL, schema }), /rate_limits/);
  });

  it('derives node timing from the device idle timeout', () => {
    assert.deepEqual(clusterTiming(90), { deadAfterMs: 90_000, heartbeatMs: 22_500, redeliverMs: 30_000 });
    const small = clusterTiming(0);
    assert.ok(small.deadAfterMs >= 2000 && small.heartbeatMs >= 500 && small.redeliverMs >= 1000);
  });

  it('the simulator spreads devices over a server list and refuses bad entries', async () => {
    for (const server of ['', ',', 'http://ok:1,not a url', 'http://ok:1,ftp://x', Array(65).fill('http://127.0.0.1:1').join(',')]) {
      await assert.rejects(runSimulate({ server, enrollToken: 'x', devices: 1, print: () => undefined }), Error, server.slice(0, 40));
    }
    const fleet = new Fleet({ server: 'http://a:1', servers: ['http://a:1', 'http://b:2', 'http://c:3'], enrollToken: 't' });
    assert.equal(fleet.size, 0); // nothing built until start(); placement is checked in cluster.test.ts
  });

  it('a device client enrolls through the next server when the first cannot be reached', async () => {
    let hits = 0;
    const srv = createServer((req, res) => {
      hits++;
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'InvalidEnrollToken', message: 'enroll token is not valid' } }));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      const client = new DeviceClient({
        server: 'http://127.0.0.1:1', // nothing listens on port 1
        servers: [`http://127.0.0.1:${port}`],
        key: generateDeviceKey(),
        agentVersion: '1.0.0',
        onAction: async () => null,
      });
      const facts = Fleet.plan('failover', 1, 'instant')[0]!.facts;
      await assert.rejects(client.enroll('nope', facts), (e: Error & { status?: number }) => e.status === 401);
      assert.equal(hits, 1);
      assert.equal(client.server, `http://127.0.0.1:${port}`);
      const lonely = new DeviceClient({ server: 'http://127.0.0.1:1', key: generateDeviceKey(), agentVersion: '1', onAction: async () => null });
      await assert.rejects(lonely.enroll('nope', facts)); // every server unreachable: the network error
    } finally {
      srv.close();
    }
  });
});
