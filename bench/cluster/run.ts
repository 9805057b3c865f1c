// Cluster benchmark (issue 5), loopback only, bounded: three `tourniquet serve` nodes on one PostgreSQL schema
// against one node on SQLite, in the same run. Measures POST StopAndQuarantineFile throughput (autocannon spread
// over the nodes), dispatch latency POST → device for a device on the same node as the POST and on another node
// (p50/p99; target: cross-node p99 within 2× of same-node), and the devices held. Prints one JSON document.
//
//   node --import tsx bench/cluster/run.ts [--quick] [--devices 3000] [--samples 200] [--seconds 10]
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createApp, createEnrollToken } from '../../src/cli/credentials.ts';
import { nowTimestamp } from '../../src/server/clock.ts';
import { DEMO_SHA1 } from '../../src/simulator/index.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { load, runBenchMain, startChild, type Child, type LoadResult } from '../lib.ts';
import { SimIpc } from '../simIpc.ts';
import { fetchToken } from '../../test/helpers/testServer.ts';
import { machine } from '../../test/store/fixtures.ts';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick') || process.env.BENCH_QUICK === '1';
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const DEVICES = opt('--devices', QUICK ? 300 : 3000);
const SAMPLES = opt('--samples', QUICK ? 60 : 200);
const SECONDS = opt('--seconds', Number(process.env.BENCH_SECONDS ?? (QUICK ? 5 : 10)));
const CONNECTIONS = 48;
const PG_URL = process.env.TOURNIQUET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tourniquet.js');
const DEADLINE_MS = opt('--deadline-sec', QUICK ? 240 : 900) * 1000;

const log = (msg: string) => process.stderr.write(`[cluster-bench] ${msg}\n`);
const now = () => performance.timeOrigin + performance.now();
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentiles(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN);
  return { n: s.length, p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), max: round(s[s.length - 1] ?? NaN) };
}

const children: ChildProcess[] = [];

const SERVER_ENV = {
  TOURNIQUET_LOG_LEVEL: 'error',
  TOURNIQUET_RATE_PER_MINUTE: '100000000',
  TOURNIQUET_RATE_PER_HOUR: '1000000000',
};

async function startNode(extraArgs: string[], env: Record<string, string>): Promise<Child> {
  const c = await startChild([BIN, 'serve', '--port', '0', ...extraArgs], { ...SERVER_ENV, ...env });
  children.push(c.child);
  return c;
}

class Sim extends SimIpc {
  constructor() {
    super(join(import.meta.dirname, 'simProcess.ts'));
    children.push(this.child);
  }
}

interface Deployment {
  name: string;
  nodes: Child[];
  token: string;
  enrollToken: string;
  /** A machine with no device, the target of the throughput run (unique SHA-1s, so no duplicates). */
  target: string;
}

async function prepare(store: Store): Promise<{ creds: Awaited<ReturnType<typeof createApp>>; enrollToken: string; target: string }> {
  const creds = await createApp(store, 'cluster-bench', ['Machine.StopAndQuarantine', 'Machine.Read.All']);
  const enrollToken = (await createEnrollToken(store, { group: 'bench', ttlSec: 3600 })).token;
  const m = machine({ computerDnsName: `bench-${randomBytes(4).toString('hex')}`, lastSeen: nowTimestamp(), capabilities: [] });
  await store.upsertMachine(m);
  return { creds, enrollToken, target: m.id };
}

/** autocannon against every node at once, the connections split evenly; rps summed, latency of the worst node. */
async function postThroughput(d: Deployment): Promise<Record<string, unknown>> {
  const per = Math.max(1, Math.floor(CONNECTIONS / d.nodes.length));
  const results: LoadResult[] = await Promise.all(
    d.nodes.map((n) =>
      load({
        url: `${n.url}/api/machines/${d.target}/StopAndQuarantineFile`,
        method: 'POST',
        duration: SECONDS,
        connections: per,
        headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
        requests: [
          {
            setupRequest: (req) => ({ ...req, body: JSON.stringify({ Comment: 'bench', Sha1: randomBytes(20).toString('hex') }) }),
          },
        ],
      }),
    ),
  );
  return {
    connections: per * d.nodes.length,
    seconds: SECONDS,
    rps: results.reduce((s, r) => s + r.rps, 0),
    p50: Math.max(...results.map((r) => r.p50)),
    p99: Math.max(...results.map((r) => r.p99)),
    non2xx: results.reduce((s, r) => s + r.non2xx, 0),
    errors: results.reduce((s, r) => s + r.errors, 0),
    perNode: results.map((r) => ({ rps: r.rps, p99: r.p99 })),
  };
}

/** Sequential POSTs, each to a distinct device; `via` picks the node that takes the POST. */
async function dispatch(d: Deployment, sim: Sim, placement: { machineId: string; server: string }[], via: (deviceNode: number) => number) {
  const xs: number[] = [];
  const step = Math.max(1, Math.floor(placement.length / SAMPLES));
  for (let i = 0; i < SAMPLES; i++) {
    const p = placement[(i * step) % placement.length]!;
    const deviceNode = d.nodes.findIndex((n) => n.url === p.server);
    const node = d.nodes[via(deviceNode)]!;
    const sent = now();
    const res = await fetch(`${node.url}/api/machines/${p.machineId}/StopAndQuarantineFile`, {
      method: 'POST',
      headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ Comment: `dispatch ${i}`, Sha1: DEMO_SHA1 }),
    });
    const body = (await res.json()) as { id?: string };
    if (res.status !== 201 || !body.id) throw new Error(`POST answered ${res.status} ${JSON.stringify(body)}`);
    let at: number | undefined;
    for (let tries = 0; at === undefined && tries < 5000; tries++) {
      at = (await sim.call({ cmd: 'receipts', actionIds: [body.id] })).receipts[body.id];
      if (at === undefined) await pause(1);
    }
    if (at === undefined) throw new Error(`device never got ${body.id}`);
    xs.push(at - sent);
    await pause(5); // the instant device finishes before its next action
  }
  return percentiles(xs);
}

async function measure(d: Deployment, db: pg.Client | null): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { nodes: d.nodes.length };
  const sim = new Sim();
  await sim.ready;
  log(`${d.name}: ${DEVICES} devices`);
  const started = await sim.call({ cmd: 'start', servers: d.nodes.map((n) => n.url), token: d.enrollToken, n: DEVICES, seed: d.name });
  await pause(500);
  const placement = (await sim.call({ cmd: 'placement' })).placement as { machineId: string; server: string; online: boolean }[];
  const held: Record<string, number> = {};
  for (const p of placement) if (p.online) held[p.server] = (held[p.server] ?? 0) + 1;
  out.devices = {
    enrollAndConnectMs: round(started.ms),
    online: placement.filter((p) => p.online).length,
    perNode: d.nodes.map((n) => held[n.url] ?? 0),
    ...(db ? { connectionRows: Number((await db.query('select count(*) as n from device_connections')).rows[0].n) } : {}),
  };
  log(`${d.name}: dispatch latency`);
  out.dispatchSameNodeMs = await dispatch(d, sim, placement, (k) => k);
  if (d.nodes.length > 1) {
    out.dispatchCrossNodeMs = await dispatch(d, sim, placement, (k) => (k + 1) % d.nodes.length);
    const same = out.dispatchSameNodeMs as { p99: number };
    const cross = out.dispatchCrossNodeMs as { p99: number };
    out.crossOverSameP99 = round(cross.p99 / same.p99);
  }
  log(`${d.name}: POST throughput`);
  out.postStopAndQuarantine = await postThroughput(d);
  await sim.call({ cmd: 'stop' }).catch(() => undefined);
  return out;
}

async function main(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {
    benchmark: 'cluster',
    quick: QUICK,
    host: { cpus: cpus().length, node: process.version },
    setup: `loopback; ${DEVICES} instant-profile devices in one simulator process; autocannon ${CONNECTIONS} connections for ${SECONDS} s`,
  };

  // One node on SQLite.
  const dataDir = mkdtempSync(join(tmpdir(), 'tq-cluster-bench-'));
  try {
    const store = await openStore({ dataDir });
    const prep = await prepare(store);
    await store.close();
    const node = await startNode(['--data', dataDir], {});
    const d: Deployment = { name: 'sqlite-1', nodes: [node], token: await fetchToken(node.url, prep.creds), enrollToken: prep.enrollToken, target: prep.target };
    out.sqliteOneNode = await measure(d, null);
    log(JSON.stringify(out.sqliteOneNode));
    await node.stop();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }

  // Three nodes on PostgreSQL, one fresh schema, dropped at the end.
  const schema = `tq_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    const store = await openStore({ dataDir: '/nonexistent', databaseUrl: url });
    const prep = await prepare(store);
    await store.close();
    const env = { TOURNIQUET_DATABASE_URL: url };
    const first = await startNode([], env);
    const nodes = [first, ...(await Promise.all([startNode([], env), startNode([], env)]))];
    await admin.query(`set search_path = ${schema}`);
    const d: Deployment = { name: 'postgres-3', nodes, token: await fetchToken(first.url, prep.creds), enrollToken: prep.enrollToken, target: prep.target };
    out.postgresThreeNodes = await measure(d, admin);
    log(JSON.stringify(out.postgresThreeNodes));
    const size = await admin.query(`select pg_size_pretty(sum(pg_total_relation_size(c.oid))) as size, sum(pg_total_relation_size(c.oid)) as bytes
      from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind = 'r'`, [schema]);
    const actions = Number((await admin.query('select count(*) as n from machine_actions')).rows[0].n);
    out.postgresSchema = { actions, size: size.rows[0].size, bytesPerAction: actions ? Math.round(Number(size.rows[0].bytes) / actions) : null };
    await Promise.all(nodes.map((n) => n.stop()));
  } finally {
    await admin.query(`drop schema if exists "${schema}" cascade`).catch(() => undefined);
    await admin.end();
  }
  const sq = out.sqliteOneNode as { postStopAndQuarantine: { rps: number } };
  const pgr = out.postgresThreeNodes as { postStopAndQuarantine: { rps: number }; crossOverSameP99: number };
  out.summary = {
    postRpsSqliteOneNode: sq.postStopAndQuarantine.rps,
    postRpsPostgresThreeNodes: pgr.postStopAndQuarantine.rps,
    crossNodeP99OverSameNodeP99: pgr.crossOverSameP99,
    target: 'cross-node dispatch p99 ≤ 2× same-node p99',
    met: pgr.crossOverSameP99 <= 2,
  };
  return out;
}

runBenchMain('cluster', main, { children, deadlineMs: DEADLINE_MS, log });
