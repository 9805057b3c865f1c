// Agent benchmarks (issue 4): SHA-1 throughput against sha1sum and openssl, hash index build over a large
// tree (cold, warm, look-ups), action received → Succeeded for a 100 MiB running binary, idle RSS.
// Everything runs on this machine with real files and processes under os.tmpdir(), removed at the end.
//
//   node --import tsx bench/agent/run.ts              full run (1 GiB, 100k files; a few minutes at most)
//   BENCH_QUICK=1 node --import tsx bench/agent/run.ts   smaller sizes (~30 s; `--quick` does the same)
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release } from 'node:os';
import { benchActionLatency } from './actionLatency.ts';
import { benchHashThroughput } from './hashThroughput.ts';
import { benchIdleRss } from './idleRss.ts';
import { benchIndexBuild } from './indexBuild.ts';
import { openScratch } from './scratch.ts';
import { MiB, round } from './stats.ts';

const log = (msg: string) => process.stderr.write(`[agent-bench] ${msg}\n`);

function toolVersion(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'unavailable';
  }
}

const load = () => loadavg().map((x) => round(x, 2));

export async function benchAgent() {
  const quick = process.env.BENCH_QUICK === '1' || process.argv.includes('--quick');
  const sizes = quick
    ? { hashBytes: 256 * MiB, hashRuns: 3, treeFiles: 10_000, treeLarge: 5, lookups: 2_000, padding: 100 * MiB, processes: 3, repeats: 3, idleMs: 3000 }
    : { hashBytes: 1024 * MiB, hashRuns: 3, treeFiles: 100_000, treeLarge: 20, lookups: 10_000, padding: 100 * MiB, processes: 3, repeats: 3, idleMs: 3000 };
  const scratch = openScratch();
  const t0 = performance.now();
  const out: Record<string, unknown> = {
    name: 'agent',
    mode: quick ? 'quick' : 'full',
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      kernel: release(),
      node: process.version,
      sha1sum: toolVersion('sha1sum', ['--version']),
      openssl: toolVersion('openssl', ['version']),
      loadAverageAtStart: load(),
    },
  };
  const errors: string[] = [];
  const phase = async (name: string, fn: () => Promise<unknown>) => {
    const start = performance.now();
    log(`${name}…`);
    try {
      out[name] = await fn();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      errors.push(`${name}: ${message}`);
      out[name] = { error: message };
    }
    log(`${name} done in ${round((performance.now() - start) / 1000, 1)} s`);
  };
  try {
    await phase('sha1Throughput', () => benchHashThroughput({ dir: scratch.dir, bytes: sizes.hashBytes, runs: sizes.hashRuns }));
    // The idle-RSS phase reopens the index built here, to show an idle agent holding a large index.
    const built: { index: Awaited<ReturnType<typeof benchIndexBuild>> | null } = { index: null };
    await phase('indexBuild', async () => {
      built.index = await benchIndexBuild({ dir: scratch.dir, files: sizes.treeFiles, largeFiles: sizes.treeLarge, lookups: sizes.lookups });
      const { stateDir: _stateDir, root: _root, ...shown } = built.index;
      return shown;
    });
    await phase('actionToSucceeded', () => benchActionLatency({ scratch, paddingBytes: sizes.padding, processes: sizes.processes, repeats: sizes.repeats }));
    await phase('idleRss', () =>
      benchIdleRss({
        scratch,
        modestFiles: 2000,
        large: built.index ? { stateDir: built.index.stateDir, root: built.index.root, files: built.index.tree.files } : undefined,
        idleMs: sizes.idleMs,
      }),
    );
  } finally {
    scratch.cleanup();
  }
  out.targets = summarizeTargets(out);
  out.loadAverageAtEnd = load();
  out.totalSeconds = round((performance.now() - t0) / 1000, 1);
  if (errors.length > 0) out.errors = errors;
  return out;
}

/** One line per issue-4 target: measured value, target, met or not. */
function summarizeTargets(out: Record<string, unknown>) {
  const get = (path: string): number | undefined => {
    let v: unknown = out;
    for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    return typeof v === 'number' ? v : undefined;
  };
  const row = (measured: number | undefined, target: string, ok: (x: number) => boolean) => ({ measured: measured ?? null, target, met: measured === undefined ? null : ok(measured) });
  return {
    sha1VsSha1sum: row(get('sha1Throughput.ratioOursToSha1sum'), '≥ 1.5×', (x) => x >= 1.5),
    warmLookupP99Ms: row(get('indexBuild.lookupHitMs.p99'), '< 50 ms', (x) => x < 50),
    idleRssMiB: row(get('idleRss.realAgent.rssMiB'), '< 80 MiB (tourniquet agent run, connected)', (x) => x < 80),
    actionToSucceededMedianMs: row(get('actionToSucceeded.medianMs'), '< 1000 ms (agent side only; target is POST → Succeeded end to end)', (x) => x < 1000),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await benchAgent();
  console.log(JSON.stringify(result, null, 2));
  if (result.errors) process.exitCode = 1;
}
