// POST StopAndQuarantineFile throughput and latency with durable commits, against a bare Fastify hello-world
// measured in the same run. Loopback only; bounded in time.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchToken, prepareBurstDataDir } from '../../test/helpers/testServer.ts';
import type autocannon from 'autocannon';
import { load, processCpuSeconds, startChild, type Child, type LoadResult } from '../lib.ts';

const root = join(import.meta.dirname, '../..');
const BIN = join(root, 'bin/tourniquet.js');
const duration = Number(process.env.BENCH_SECONDS ?? 10);
/**
 * 50 connections is the reference figure. At 50, a group-committing server is bound by commit latency (every request
 * waits for its batch's fsync) more than by CPU; 200 shows what one node does when the load keeps it busy.
 */
const CONNECTIONS = [50, 200];
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);

export async function benchApi() {
  // Both runs send the same requests (headers, a fresh random SHA-1 body each), so the load generator's own cost
  // is the same on both sides of the ratio.
  const request = (url: string, token: string, connections: number): autocannon.Options => ({
    url,
    method: 'POST',
    duration,
    connections,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (req: autocannon.Request) => ({
          ...req,
          body: JSON.stringify({ Comment: 'bench', Sha1: randomBytes(20).toString('hex') }),
        }),
      },
    ],
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'tq-bench-api-'));
  const children: Child[] = [];
  try {
    const { creds, machineId } = await prepareBurstDataDir(dataDir, 'bench');
    const hello = await startChild(['--import', 'tsx', join(root, 'bench/api/helloServer.ts')]);
    children.push(hello);
    const server = await startChild([BIN, 'serve', '--port', '0', '--data', dataDir], {
      TOURNIQUET_RATE_PER_MINUTE: '100000000',
      TOURNIQUET_RATE_PER_HOUR: '1000000000',
    });
    children.push(server);
    const token = await fetchToken(server.url, creds);
    const runs = [];
    for (const c of CONNECTIONS) {
      // Baseline and Tourniquet alternate, REPEATS times each, and the medians are compared: this host's speed
      // drifts between runs (shared vCPUs), and alternating spreads the drift over both sides.
      const base: Measured[] = [];
      const tq: Measured[] = [];
      for (let r = 0; r < REPEATS; r++) {
        base.push(await measured(hello, request(`${hello.url}/`, 'x'.repeat(700), c)));
        tq.push(await measured(server, request(`${server.url}/api/machines/${machineId}/StopAndQuarantineFile`, token, c)));
      }
      const b = median(base);
      const t = median(tq);
      runs.push({
        connections: c,
        baseline: { what: 'Fastify hello-world POST', ...b, allRps: base.map((x) => x.rps) },
        tourniquet: { what: 'POST StopAndQuarantineFile (durable: answered after the WAL fdatasync)', ...t, allRps: tq.map((x) => x.rps) },
        ratio: Number((t.rps / b.rps).toFixed(3)),
        // What the ratio would be if both servers were bound by their own CPU alone: hello-world's server CPU per
        // request over Tourniquet's (medians over the runs). Steadier than requests/s when the host's speed drifts.
        cpuRatio: cpuRatio(base, tq),
      });
    }
    return { name: 'api', ratio: runs[0]!.ratio, target: 0.3, runs };
  } finally {
    for (const child of children) await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

interface Measured extends LoadResult {
  /** The server process's CPU (every thread, user + system) per request answered, in µs; null without /proc. */
  serverCpuUsPerRequest: number | null;
}

async function measured(server: Child, opts: autocannon.Options): Promise<Measured> {
  const pid = server.child.pid!;
  const before = processCpuSeconds(pid);
  const result = await load(opts);
  const after = processCpuSeconds(pid);
  const perRequest = before === null || after === null || result.total === 0 ? null : ((after - before) * 1e6) / result.total;
  return { ...result, serverCpuUsPerRequest: perRequest === null ? null : Math.round(perRequest) };
}

function cpuRatio(base: Measured[], tq: Measured[]): number | null {
  const mid = (xs: (number | null)[]) => {
    const known = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
    return known.length === 0 ? null : known[Math.floor(known.length / 2)]!;
  };
  const b = mid(base.map((x) => x.serverCpuUsPerRequest));
  const t = mid(tq.map((x) => x.serverCpuUsPerRequest));
  return b === null || t === null || t === 0 ? null : Number((b / t).toFixed(3));
}

/** The run with the median requests/s (its latencies with it). */
function median<T extends LoadResult>(runs: T[]): T {
  return [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)]!;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchApi(), null, 2));
}
