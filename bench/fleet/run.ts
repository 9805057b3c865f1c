// Fleet benchmark: a real server process (`tourniquet serve`) and simulator processes, loopback only.
// Measures dispatch latency (POST → device has it) with 1k and 10k connected devices, POST → Succeeded visible
// through GET, RSS per connected device for the server and for the simulator, one SHA-1 stopped on 10k devices
// with 10k POSTs, and the largest fleet one server holds. Prints one JSON document on stdout.
//
//   node --import tsx bench/fleet/run.ts [--quick] [--max 20000] [--samples 300]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createApp, createEnrollToken } from '../../src/cli/credentials.ts';
import { processCpuSeconds, runBenchMain } from '../lib.ts';
import { SimIpc } from '../simIpc.ts';
import { DEMO_SHA1 } from '../../src/simulator/index.ts';
import { openStore } from '../../src/store/open.ts';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const QUICK = flag('--quick');
const SMALL = QUICK ? 200 : 1000;
const LARGE = QUICK ? 1000 : 10_000;
const MAX = QUICK ? 0 : opt('--max', 20_000);
const SAMPLES = opt('--samples', QUICK ? 100 : 300);
const DEADLINE_MS = opt('--deadline-sec', QUICK ? 300 : 1500) * 1000;
/** Connections one process may hold: the file-descriptor limit minus headroom for everything else. */
const PER_SIM_PROCESS = 9_990;

const now = () => performance.timeOrigin + performance.now();
const log = (msg: string) => process.stderr.write(`[fleet-bench] ${msg}\n`);
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const mb = (bytes: number) => round(bytes / 1024 / 1024, 1);

function percentiles(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN);
  return { n: s.length, p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), max: round(s[s.length - 1] ?? NaN) };
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU seconds (user + system) a process has used so far; this bench needs them (Linux's /proc). */
function cpuSeconds(pid: number): number {
  const seconds = processCpuSeconds(pid);
  if (seconds === null) throw new Error(`cannot read the CPU time of process ${pid} from /proc`);
  return seconds;
}

/** Runs `fn` and reports how much CPU the server and the simulators spent meanwhile. */
async function withCpu<T extends object>(serverPid: number, sims: Sim[], fn: () => Promise<T>): Promise<T & { cpuSeconds: { server: number; simulator: number } }> {
  const s0 = cpuSeconds(serverPid);
  const m0 = sims.reduce((a, x) => a + cpuSeconds(x.child.pid!), 0);
  const r = await fn();
  return {
    ...r,
    cpuSeconds: {
      server: round(cpuSeconds(serverPid) - s0),
      simulator: round(sims.reduce((a, x) => a + cpuSeconds(x.child.pid!), 0) - m0),
    },
  };
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function fdLimit(pid: number | 'self' = 'self'): number | null {
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// ── processes ─────────────────────────────────────────────────────────────────────────────────────────────────

const children: ChildProcess[] = [];

async function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const prof = process.env.FLEET_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FLEET_BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, 'bin/tourniquet.js', 'serve', '--port', '0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      TOURNIQUET_LOG_LEVEL: 'error',
      TOURNIQUET_RATE_PER_MINUTE: '100000000',
      TOURNIQUET_RATE_PER_HOUR: '100000000',
    },
  });
  children.push(child);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 30_000);
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^listening on (http:\/\/\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { child, url };
}

class Sim extends SimIpc {
  machineIds: string[] = [];

  constructor() {
    super(join(import.meta.dirname, 'simProcess.ts'), ['--expose-gc']);
    children.push(this.child);
  }

  async start(server: string, token: string, n: number, seed: string, connectTimeoutMs?: number): Promise<number> {
    const r = await this.call({ cmd: 'start', server, token, n, seed, connectTimeoutMs });
    this.machineIds.push(...r.machineIds);
    return r.ms as number;
  }
}

// ── HTTP ──────────────────────────────────────────────────────────────────────────────────────────────────────

async function getToken(url: string, c: { tenantId: string; clientId: string; clientSecret: string }): Promise<string> {
  const res = await fetch(`${url}/${c.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: c.clientId,
      client_secret: c.clientSecret,
      scope: 'https://api.securitycenter.microsoft.com/.default',
    }),
  });
  const body = (await res.json()) as { access_token: string };
  return body.access_token;
}

async function stopAndQuarantine(url: string, token: string, machineId: string, comment = 'bench'): Promise<{ status: number; id?: string }> {
  const res = await fetch(`${url}/api/machines/${machineId}/StopAndQuarantineFile`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ Comment: comment, Sha1: DEMO_SHA1 }),
  });
  const body = (await res.json()) as { id?: string };
  return { status: res.status, ...(body.id ? { id: body.id } : {}) };
}

async function actionStatus(url: string, token: string, id: string): Promise<string> {
  const res = await fetch(`${url}/api/machineactions/${id}`, { headers: { authorization: `Bearer ${token}` } });
  return ((await res.json()) as { status: string }).status;
}

async function countActive(url: string, token: string): Promise<number> {
  const q = new URLSearchParams({ $filter: "healthStatus eq 'Active'", $top: '1', $count: 'true' });
  const res = await fetch(`${url}/api/machines?${q}`, { headers: { authorization: `Bearer ${token}` } });
  return ((await res.json()) as { '@odata.count': number })['@odata.count'];
}

async function countSucceededSince(url: string, token: string, since: string): Promise<number> {
  const q = new URLSearchParams({
    $filter: `status eq 'Succeeded' and creationDateTimeUtc ge ${since}`,
    $top: '1',
    $count: 'true',
  });
  const res = await fetch(`${url}/api/machineactions?${q}`, { headers: { authorization: `Bearer ${token}` } });
  return ((await res.json()) as { '@odata.count': number })['@odata.count'];
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ── measurements ──────────────────────────────────────────────────────────────────────────────────────────────

/** Sequential POSTs to distinct devices; the simulator stamps when each device got its action. */
async function dispatchLatency(url: string, token: string, sim: Sim, devices: string[], samples: number) {
  const fromPost: number[] = [];
  const from201: number[] = [];
  const step = Math.max(1, Math.floor(devices.length / samples));
  for (let i = 0; i < samples; i++) {
    const machineId = devices[(i * step) % devices.length]!;
    const sent = now();
    const r = await stopAndQuarantine(url, token, machineId, `dispatch ${i}`);
    const got201 = now();
    if (r.status !== 201 || !r.id) throw new Error(`POST answered ${r.status}`);
    let at: number | undefined;
    for (let tries = 0; at === undefined && tries < 2000; tries++) {
      at = (await sim.call({ cmd: 'receipts', actionIds: [r.id] })).receipts[r.id];
      if (at === undefined) await pause(1);
    }
    if (at === undefined) throw new Error(`device never got ${r.id}`);
    fromPost.push(at - sent);
    from201.push(at - got201);
    await pause(5); // let the (instant) device finish before the next sample
  }
  return { postToDevice: percentiles(fromPost), responseToDevice: percentiles(from201) };
}

/** POST → the API shows Succeeded (GET polled every 2 ms). */
async function endToEnd(url: string, token: string, devices: string[], samples: number) {
  const xs: number[] = [];
  for (let i = 0; i < samples; i++) {
    const machineId = devices[(i * 7919) % devices.length]!;
    const sent = now();
    const r = await stopAndQuarantine(url, token, machineId, `e2e ${i}`);
    if (r.status !== 201 || !r.id) throw new Error(`POST answered ${r.status}`);
    for (;;) {
      const s = await actionStatus(url, token, r.id);
      if (s === 'Succeeded') break;
      if (s !== 'Pending' && s !== 'InProgress') throw new Error(`action ended ${s}`);
      await pause(2);
    }
    xs.push(now() - sent);
  }
  return percentiles(xs);
}

/** One SHA-1 on every device: one POST per device (concurrency 64), then wait until all are Succeeded. */
async function oneSha1Everywhere(url: string, token: string, devices: string[]) {
  const since = new Date(Date.now() - 50).toISOString();
  const t0 = now();
  let next = 0;
  const statuses = new Map<number, number>();
  const postLatency: number[] = [];
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < devices.length) {
        const machineId = devices[next++]!;
        const s = now();
        const r = await stopAndQuarantine(url, token, machineId, 'one sha1 everywhere');
        postLatency.push(now() - s);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    }),
  );
  const postsDoneMs = now() - t0;
  const created = statuses.get(201) ?? 0;
  let succeeded = 0;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    succeeded = await countSucceededSince(url, token, since);
    if (succeeded >= created) break;
    await pause(100);
  }
  return {
    devices: devices.length,
    posts: devices.length,
    statuses: Object.fromEntries(statuses),
    postsDoneMs: round(postsDoneMs),
    postLatencyMs: percentiles(postLatency),
    allSucceededMs: round(now() - t0),
    succeeded,
    postsPerSec: round(devices.length / (postsDoneMs / 1000), 0),
  };
}

// ── main ──────────────────────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {
    benchmark: 'fleet',
    quick: QUICK,
    host: { cpus: (await import('node:os')).cpus().length, node: process.version, fdLimitPerProcess: fdLimit() },
  };
  const dataDir = mkdtempSync(join(tmpdir(), 'tq-fleet-bench-'));
  try {
    const store = await openStore({ dataDir });
    const app = await createApp(store, 'fleet-bench', ['Machine.StopAndQuarantine', 'Machine.Read.All']);
    const enroll = await createEnrollToken(store, { group: 'bench', ttlSec: 3600 });
    await store.close();

    const server = await startServer(dataDir);
    const token = await getToken(server.url, app);
    const simA = new Sim();
    await simA.ready;
    await pause(500);
    const base = { server: rssOf(server.child.pid!), sim: rssOf(simA.child.pid!) };
    out.baselineRssMb = { server: mb(base.server), simulator: mb(base.sim) };

    const rssPerDevice = (n: number, sims: Sim[]) => {
      const serverRss = rssOf(server.child.pid!);
      const simRss = sims.reduce((s, x) => s + rssOf(x.child.pid!), 0);
      return {
        devices: n,
        serverRssMb: mb(serverRss),
        simulatorRssMb: mb(simRss),
        serverKbPerDevice: round((serverRss - base.server) / 1024 / n, 1),
        simulatorKbPerDevice: round((simRss - base.sim * sims.length) / 1024 / n, 1),
      };
    };

    const spid = server.child.pid!;
    log(`starting ${SMALL} devices`);
    const first = await withCpu(spid, [simA], async () => ({ ms: await simA.start(server.url, enroll.token, SMALL, 'bench-a') }));
    out[`fleet${SMALL}`] = {
      enrollAndConnect: { ms: round(first.ms), cpuSeconds: first.cpuSeconds },
      memory: rssPerDevice(SMALL, [simA]),
      dispatchLatencyMs: await dispatchLatency(server.url, token, simA, simA.machineIds, SAMPLES),
      postToSucceededMs: await endToEnd(server.url, token, simA.machineIds, Math.min(SAMPLES, 100)),
    };
    log(JSON.stringify(out[`fleet${SMALL}`]));

    log(`growing to ${LARGE} devices`);
    const grow = await withCpu(spid, [simA], async () => ({ ms: await simA.start(server.url, enroll.token, LARGE - SMALL, 'bench-b') }));
    const large: Record<string, unknown> = {
      addedDevicesEnrollAndConnect: { devices: LARGE - SMALL, ms: round(grow.ms), cpuSeconds: grow.cpuSeconds },
      activeOnServer: await countActive(server.url, token),
      memory: rssPerDevice(LARGE, [simA]),
      dispatchLatencyMs: await dispatchLatency(server.url, token, simA, simA.machineIds, SAMPLES),
      postToSucceededMs: await endToEnd(server.url, token, simA.machineIds, Math.min(SAMPLES, 100)),
    };
    out[`fleet${LARGE}`] = large;
    log(JSON.stringify(large));
    log(`one SHA-1 on ${LARGE} devices`);
    await pause(1000);
    large.oneSha1Everywhere = await withCpu(spid, [simA], () => oneSha1Everywhere(server.url, token, simA.machineIds));
    log(JSON.stringify(large.oneSha1Everywhere));

    if (MAX > LARGE) {
      // Grow until the target, or until the server runs out of file descriptors (one socket per device): the
      // last step is sized to the descriptors the server has left, so the result is the most it can hold.
      const sims = [simA];
      let held = LARGE;
      const attempts: unknown[] = [];
      let seed = 0;
      const limit = fdLimit(server.child.pid!) ?? Number.POSITIVE_INFINITY;
      while (held < MAX) {
        const headroom = limit - openFds(server.child.pid!) - 24;
        if (headroom < 10) break;
        let sim = sims[sims.length - 1]!;
        if (sim.machineIds.length >= PER_SIM_PROCESS) {
          sim = new Sim();
          await sim.ready;
          sims.push(sim);
        }
        const n = Math.min(MAX - held, PER_SIM_PROCESS - sim.machineIds.length, 5000, headroom);
        log(`growing to ${held + n} devices (server fd headroom ${headroom})`);
        try {
          await sim.start(server.url, enroll.token, n, `bench-max-${seed++}`, 60_000);
          held += n;
          attempts.push({ target: held, ok: true });
        } catch (err) {
          attempts.push({ target: held + n, ok: false, error: err instanceof Error ? err.message : String(err) });
          break;
        }
      }
      await pause(2000);
      const active = await countActive(server.url, token);
      out.largestFleet = {
        target: MAX,
        activeOnServer: active,
        serverOpenFds: openFds(server.child.pid!),
        serverFdLimit: limit,
        simulatorProcesses: sims.length,
        attempts,
        memory: rssPerDevice(active, sims),
        note:
          'One process may hold at most serverFdLimit descriptors (a hard limit that cannot be raised here); the ' +
          'server needs one socket per device plus its own files, so one server process tops out just under it.',
      };
      log(JSON.stringify(out.largestFleet));
      for (const s of sims.slice(1)) await s.call({ cmd: 'stop' }).catch(() => {});
    }
    await simA.call({ cmd: 'stop' }).catch(() => {});
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
  return out;
}

runBenchMain('fleet', main, { children, deadlineMs: DEADLINE_MS, log });
