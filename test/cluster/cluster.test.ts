// Three `tourniquet serve` processes on one PostgreSQL schema with a simulated fleet spread over them: cross-node
// dispatch, one live connection per machine, cancel racing a result, shared rate limits, shared signing keys,
// exactly-once TimeOut, and kill -9 of a node (its devices fail over; nothing is lost or run twice; devices left
// with nobody turn Inactive). TOURNIQUET_SKIP_PG=1 skips the file — nothing else does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { duplicateKey } from '../../src/core/actions.ts';
import { millisToTimestamp } from '../../src/core/time.ts';
import { createApp } from '../../src/cli/credentials.ts';
import { DeviceClient } from '../../src/protocol/deviceClient.ts';
import { generateDeviceKey, type DeviceKeyPair } from '../../src/protocol/signing.ts';
import { DEMO_SHA1, Fleet } from '../../src/simulator/index.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { action as actionFixture, machine as machineFixture } from '../store/fixtures.ts';
import { fetchToken } from '../helpers/testServer.ts';
import { http, startCluster, waitFor, type Cluster, type Node } from './clusterHarness.ts';

const SKIP = process.env.TOURNIQUET_SKIP_PG === '1';
const ROLES = 'Machine.Read.All,Machine.StopAndQuarantine,Machine.ReadWrite.All,Machine.LiveResponse';
/** Short, so a dead node is noticed within seconds (devices ping every second, nodes beat every second). */
const IDLE_SEC = 4;
const FLEET = 15;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isFinal = (a: any) => a && !['Pending', 'InProgress'].includes(a.status);

if (SKIP) {
  it('cluster tests skipped: TOURNIQUET_SKIP_PG=1', { skip: true }, () => undefined);
} else {
  describe('three nodes on one PostgreSQL schema', () => {
    let cluster: Cluster;
    let A: Node, B: Node, C: Node;
    let nodes: Node[];
    let store: Store;
    let creds: { tenantId: string; clientId: string; clientSecret: string };
    let tokenA: string;
    let enrollToken: string;
    let fleet: Fleet;
    const extraClients: DeviceClient[] = [];
    /** pid → node id, from cluster_nodes. */
    const nodeIdOf = new Map<Node, string>();

    const post = (node: Node, machineId: string, comment: string, tok = tokenA) =>
      http(`${node.url}/api/machines/${machineId}/StopAndQuarantineFile`, {
        method: 'POST',
        token: tok,
        body: { Comment: comment, Sha1: DEMO_SHA1 },
      });
    /** The action as a node serves it, without @odata.context (which names the node's own URL). */
    const get = async (node: Node, id: string) => {
      const { '@odata.context': _context, ...a } = (await http(`${node.url}/api/machineactions/${id}`, { token: tokenA })).json ?? {};
      return a as any;
    };
    const untilFinal = (node: Node, id: string, timeoutMs = 10_000) =>
      waitFor(`action ${id} final`, async () => {
        const a = await get(node, id);
        return isFinal(a) ? a : null;
      }, timeoutMs);
    const ownerOf = async (machineId: string) =>
      (await cluster.sql<{ node_id: string }>('select node_id from device_connections where machine_id = $1', [machineId]))[0]?.node_id ?? null;
    const count = async (text: string, values?: unknown[]) => Number((await cluster.sql<{ n: string }>(text, values))[0]!.n);
    const machineOn = (node: Node, id: string) => http(`${node.url}/api/machines/${id}`, { token: tokenA });

    before(async () => {
      cluster = await startCluster({
        TOURNIQUET_DEVICE_IDLE_TIMEOUT_SEC: String(IDLE_SEC),
        TOURNIQUET_RATE_PER_MINUTE: '100000',
        TOURNIQUET_RATE_PER_HOUR: '1000000',
      });
      // The first node creates the schema, the tenant and the signing key; the others join it.
      A = await cluster.startNode('A');
      [B, C] = await Promise.all([cluster.startNode('B'), cluster.startNode('C')]);
      nodes = [A, B, C];
      // The CLI against the same database (TOURNIQUET_DATABASE_URL with ?schema=), as an operator would.
      creds = JSON.parse(cluster.cli(['apps', 'create', '--name', 'cluster-test', '--roles', ROLES, '--json']));
      enrollToken = JSON.parse(cluster.cli(['enroll-token', 'create', '--json'])).token;
      tokenA = await fetchToken(A.url, creds);
      store = await openStore({ dataDir: '/nonexistent', databaseUrl: cluster.databaseUrl });
      const rows = await cluster.sql<{ node_id: string; detail: string }>('select node_id, detail from cluster_nodes');
      for (const n of nodes) {
        const row = rows.find((r) => JSON.parse(r.detail).pid === n.child.pid);
        assert.ok(row, `node ${n.name} registered in cluster_nodes`);
        nodeIdOf.set(n, row.node_id);
      }
      fleet = new Fleet({
        server: A.url,
        servers: nodes.map((n) => n.url),
        enrollToken,
        seed: 'cluster',
        profile: 'instant',
        reconnect: { initialDelayMs: 300, maxDelayMs: 2000 },
      });
      await fleet.start(FLEET);
    });

    after(async () => {
      await Promise.all(extraClients.map((c) => c.close()));
      await fleet?.stop();
      await store?.close();
      await cluster?.close();
    });

    it('spreads the fleet over the nodes, one connection row per device, owned by the node it is on', async () => {
      for (const d of fleet.devices()) {
        const node = nodes[d.spec.index % 3]!;
        assert.equal(d.client.server, node.url);
        assert.equal(await ownerOf(d.machineId!), nodeIdOf.get(node));
      }
      assert.equal(await count('select count(*) as n from device_connections'), FLEET);
    });

    it('a token minted by one node is accepted by every other (shared signing keys)', async () => {
      for (const minter of nodes) {
        const t = await fetchToken(minter.url, creds);
        for (const n of nodes) assert.equal((await http(`${n.url}/api/machines?$top=1`, { token: t })).status, 200, `${minter.name} → ${n.name}`);
      }
      assert.equal(await count(`select count(*) as n from signing_keys where status = 'active'`), 1);
    });

    it('dispatches across nodes within milliseconds: POST on any node reaches a device on any node', async () => {
      const latencies: { same: boolean; ms: number }[] = [];
      for (let i = 0; i < 6; i++) {
        const d = fleet.devices()[i]!;
        const via = nodes[Math.floor(i / 2) % 3]!;
        const got = new Promise<number>((resolve) => d.client.once('action', () => resolve(performance.now())));
        const r = await post(via, d.machineId!, `dispatch ${i}`);
        const t201 = performance.now();
        assert.equal(r.status, 201, JSON.stringify(r.json));
        const ms = (await got) - t201;
        latencies.push({ same: via === nodes[i % 3], ms });
        const done = await untilFinal(nodes[(i + 1) % 3]!, r.json.id);
        assert.equal(done.status, 'Succeeded');
      }
      for (const l of latencies) assert.ok(l.ms < 1000, `device got the action ${l.ms.toFixed(1)} ms after 201`);
      assert.ok(latencies.some((l) => !l.same), 'some deliveries crossed nodes');
    });

    it('keeps one live connection per machine cluster-wide: connecting on B closes the connection on A', async () => {
      const key: DeviceKeyPair = generateDeviceKey();
      const facts = Fleet.plan('cluster-solo', 1, 'instant')[0]!.facts;
      const mk = (server: string, machineId: string | null) => {
        const c = new DeviceClient({
          server,
          key,
          agentVersion: facts.agentVersion,
          machineId,
          onAction: async () => ({ outcome: 'Succeeded', errorHResult: 0, reason: null, detail: { processes: [], files: [], durationMs: 0 } }),
        });
        extraClients.push(c);
        return c;
      };
      const first = mk(A.url, null);
      const { machineId } = await first.enroll(enrollToken, facts);
      const online = (c: DeviceClient) => new Promise<void>((r) => c.once('online', () => r()));
      let p = online(first);
      first.start();
      await p;
      await waitFor('owner A', async () => (await ownerOf(machineId)) === nodeIdOf.get(A));
      const replaced = new Promise<void>((r) => first.once('replaced', () => r()));
      const second = mk(B.url, machineId);
      p = online(second);
      second.start();
      await p;
      await replaced; // A closed its connection because B claimed the machine
      assert.equal(await ownerOf(machineId), nodeIdOf.get(B));
      // A's connection closing must not have marked the machine Inactive: it is Active on B.
      await sleep(300);
      for (const n of nodes) assert.equal((await machineOn(n, machineId)).json.healthStatus, 'Active', n.name);
      await second.close();
      await waitFor('Inactive after the device left B', async () => (await machineOn(C, machineId)).json.healthStatus === 'Inactive');
      assert.equal(await ownerOf(machineId), null);
    });

    it('cancel racing a result resolves the same on every node', async () => {
      const racers = [1, 4, 7, 10, 13].map((i) => fleet.devices()[i]!);
      const outcomes = await Promise.all(
        racers.map(async (d, k) => {
          const delay = 250;
          const r = await post(nodes[k % 3]!, d.machineId!, `race [sim:delay=${delay}]`);
          assert.equal(r.status, 201, JSON.stringify(r.json));
          await sleep(delay - 40 + k * 20); // around the moment the result arrives
          const cancel = await http(`${nodes[(k + 1) % 3]!.url}/api/machineactions/${r.json.id}/cancel`, {
            method: 'POST',
            token: tokenA,
            body: { Comment: 'race' },
          });
          return { id: r.json.id as string, cancelStatus: cancel.status };
        }),
      );
      for (const o of outcomes) {
        await untilFinal(A, o.id);
        const views = await Promise.all(nodes.map((n) => get(n, o.id)));
        assert.deepEqual(views[1], views[0]);
        assert.deepEqual(views[2], views[0]);
        if (o.cancelStatus === 200) assert.equal(views[0].status, 'Cancelled');
        else {
          assert.equal(o.cancelStatus, 400);
          assert.equal(views[0].status, 'Succeeded');
        }
      }
    });

    it('rate limits hold across nodes: requests alternated between nodes share one quota, 429 with Retry-After', async () => {
      // getPackageUri allows 2 calls a minute per app: two nodes take one each, the third refuses.
      const app = await createApp(store, 'cluster-rate', ['Machine.Read.All', 'Machine.CollectForensics']);
      const t = await fetchToken(B.url, app);
      const any = (await http(`${A.url}/api/machineactions?$top=1`, { token: tokenA })).json.value[0].id as string;
      const at = (n: Node) => http(`${n.url}/api/machineactions/${any}/GetPackageUri`, { token: t });
      assert.notEqual((await at(A)).status, 429);
      assert.notEqual((await at(B)).status, 429);
      for (const n of [C, A, B]) {
        const r = await at(n);
        assert.equal(r.status, 429, n.name);
        assert.equal(r.json.error.code, 'TooManyRequests');
        assert.match(r.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
        assert.ok(Number(r.headers.get('retry-after')) <= 60);
      }
      const rows = await cluster.sql<{ key: string }>(`select key from rate_limits where key like 'rl_getPackageUri_m:%'`);
      assert.ok(rows.some((r) => r.key.endsWith(app.clientId)), 'the counter lives in the shared table');
      // Another app still has its own quota on every node.
      const t2 = await fetchToken(C.url, await createApp(store, 'cluster-rate-2', ['Machine.Read.All', 'Machine.CollectForensics']));
      assert.notEqual((await http(`${C.url}/api/machineactions/${any}/GetPackageUri`, { token: t2 })).status, 429);
    });

    it('moves each due action to TimeOut exactly once with three nodes expiring', async () => {
      // A trigger counts every change to TimeOut, whichever node (and whichever code path) makes it.
      await cluster.sql('create table timeout_log (action_id text not null)');
      await cluster.sql(`create function log_timeout() returns trigger language plpgsql as $$
        begin insert into timeout_log (action_id) values (new.id); return new; end $$`);
      await cluster.sql(`create trigger trg_log_timeout after update on machine_actions for each row
        when (new.status = 'TimeOut' and old.status is distinct from 'TimeOut') execute function log_timeout()`);
      const ids: string[] = [];
      const expiresAt = millisToTimestamp(Date.now() + 1500);
      for (let i = 0; i < 40; i++) {
        const m = machineFixture();
        await store.upsertMachine(m);
        for (let j = 0; j < 5; j++) {
          const a = actionFixture(m, { expiresAt });
          await store.createAction(a, duplicateKey(m.id, a.type, a.relatedFileInfo!.fileIdentifier));
          ids.push(a.id);
        }
      }
      // And one on a connected device that never answers: the device hears the cancel.
      const silent = fleet.devices()[3]!;
      const cancelled = new Promise<string>((r) => silent.client.on('cancel', (id) => r(id)));
      const never = actionFixture({ id: silent.machineId!, computerDnsName: silent.hostname }, {
        expiresAt,
        requestorComment: '[sim:never]',
        relatedFileInfo: { fileIdentifier: DEMO_SHA1, fileIdentifierType: 'Sha1' },
      });
      await store.createAction(never, duplicateKey(never.machineId, never.type, DEMO_SHA1));
      await store.publish({ channel: 'action', machineId: never.machineId, actionId: never.id });
      ids.push(never.id);

      await waitFor('every action TimeOut', async () => {
        return (await count(`select count(*) as n from machine_actions where id = any($1) and status = 'TimeOut'`, [ids])) === ids.length;
      }, 15_000);
      await sleep(1200); // a late second expiry would show up now
      const log = await cluster.sql<{ action_id: string; n: string }>(
        'select action_id, count(*) as n from timeout_log group by action_id',
      );
      assert.equal(log.length, ids.length);
      assert.ok(log.every((r) => Number(r.n) === 1), 'each action timed out exactly once');
      assert.equal(await cancelled, never.id);
      const views = await Promise.all(nodes.map((n) => get(n, never.id)));
      assert.equal(views[0].status, 'TimeOut');
      assert.deepEqual(views[1], views[0]);
      assert.deepEqual(views[2], views[0]);
    });

    it('kill -9 of a node: its devices fail over, nothing is lost or run twice, and orphans turn Inactive', async () => {
      // A device that knows only C: nobody can take it over when C dies.
      const key = generateDeviceKey();
      const facts = Fleet.plan('cluster-orphan', 1, 'instant')[0]!.facts;
      const orphan = new DeviceClient({
        server: C.url,
        key,
        agentVersion: facts.agentVersion,
        reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
        onAction: async () => null,
      });
      extraClients.push(orphan);
      const { machineId: orphanId } = await orphan.enroll(enrollToken, facts);
      await new Promise<void>((r) => {
        orphan.once('online', () => r());
        orphan.start();
      });

      const onC = fleet.devices().filter((d) => d.spec.index % 3 === 2);
      const inflight = onC.slice(0, 3);
      const later = onC.slice(3);
      const created: { id: string; device: (typeof onC)[number] }[] = [];
      for (const d of inflight) {
        const r = await post(A, d.machineId!, 'failover [sim:delay=1500]');
        assert.equal(r.status, 201);
        created.push({ id: r.json.id, device: d });
      }
      for (const c of created) await waitFor('InProgress', async () => (await get(B, c.id)).status === 'InProgress');

      await C.kill9();
      // Created while their node is dead and before they are back: delivered when they reconnect elsewhere.
      for (const d of later) {
        const r = await post(B, d.machineId!, 'after the kill');
        assert.equal(r.status, 201);
        created.push({ id: r.json.id, device: d });
      }

      for (const c of created) {
        const a = await untilFinal(A, c.id, 15_000);
        assert.equal(a.status, 'Succeeded', `${c.id}: ${JSON.stringify(a)}`);
        assert.deepEqual(await get(B, c.id), a);
        const journal = c.device.journal.entries().filter((e) => e.actionId === c.id);
        assert.equal(journal.filter((e) => e.event === 'received').length, 1, 'received once');
        assert.equal(journal.filter((e) => e.event === 'result').length, 1, 'executed once');
      }
      const alive = new Set([nodeIdOf.get(A), nodeIdOf.get(B)]);
      for (const d of onC) {
        assert.ok(d.online, `${d.hostname} back online`);
        assert.notEqual(d.client.server, C.url);
        assert.ok(alive.has((await ownerOf(d.machineId!)) ?? ''), 'held by a live node');
        assert.equal((await machineOn(A, d.machineId!)).json.healthStatus, 'Active');
      }
      // The dead node is reaped within about the idle timeout; the device only it held turns Inactive.
      await waitFor('C reaped', async () => (await cluster.sql('select 1 from cluster_nodes where node_id = $1', [nodeIdOf.get(C)])).length === 0, (IDLE_SEC + 4) * 1000);
      await waitFor('orphan Inactive', async () => (await machineOn(B, orphanId)).json.healthStatus === 'Inactive', 3000);
      assert.equal(await ownerOf(orphanId), null);
      // The fleet on A and B is untouched.
      for (const d of fleet.devices().filter((x) => x.spec.index % 3 !== 2)) {
        assert.equal((await machineOn(A, d.machineId!)).json.healthStatus, 'Active');
      }
    });
  });
}
