// Idle agent RSS: a child process opens the runtime (vault recovery, protection lists, hash index), finishes
// its first scan, idles, and reports its memory. The network client (gateway WebSocket) is not part of it.
// Two baselines measured the same way put the number in context: bare `node`, and `node` with the tsx loader
// that `tourniquet agent run` starts under (bin/tourniquet.js registers tsx).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { generateTree } from './fileTree.ts';
import type { Scratch } from './scratch.ts';
import { MiB, round } from './stats.ts';
import { realAgentRss } from './realAgentRss.ts';

interface ChildReport {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  afterScanRss: number;
  rssAnonKiB: number;
  rssFileKiB: number;
  peakRssKiB: number;
  threads: number;
  rssAfterGc: number | null;
  heapUsedAfterGc: number | null;
  indexedFiles: number;
  scan: { files: number; hashed: number; unchanged: number; durationMs: number };
}

/** Runs `node <args>`, returns the last line of its stdout parsed as JSON. */
function runChild<T>(scratch: Scratch, args: string[]): Promise<T> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  scratch.track(child.pid);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not report within 120 s: ${err}`));
    }, 120_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line) return reject(new Error(`child exited ${code}: ${err || out}`));
      resolve(JSON.parse(line) as T);
    });
  });
}

/** An otherwise empty Node process idling as long as the agent does, printing its RSS. */
function baselineRss(scratch: Scratch, withTsx: boolean, idleMs: number): Promise<{ rss: number }> {
  const code = `setTimeout(() => console.log(JSON.stringify({ rss: process.memoryUsage().rss })), ${idleMs})`;
  return runChild(scratch, [...(withTsx ? ['--import', 'tsx'] : []), '-e', code]);
}

function summary(r: ChildReport, what: string) {
  const mib = (n: number | null) => (n === null ? null : round(n / MiB, 1));
  return {
    what,
    rssMiB: mib(r.rss),
    rssAfterScanMiB: mib(r.afterScanRss),
    peakRssMiB: round(r.peakRssKiB / 1024, 1),
    anonMiB: round(r.rssAnonKiB / 1024, 1),
    fileBackedMiB: round(r.rssFileKiB / 1024, 1),
    heapUsedMiB: mib(r.heapUsed),
    heapTotalMiB: mib(r.heapTotal),
    externalMiB: mib(r.external),
    rssAfterForcedGcMiB: mib(r.rssAfterGc),
    heapUsedAfterForcedGcMiB: mib(r.heapUsedAfterGc),
    threads: r.threads,
    indexedFiles: r.indexedFiles,
    firstScan: r.scan,
  };
}

export interface IdleRssOptions {
  scratch: Scratch;
  /** Files in the modest tree the agent indexes from scratch. */
  modestFiles: number;
  /** Optionally: a state directory whose index already holds a large tree, and that tree's root. */
  large?: { stateDir: string; root: string; files: number } | undefined;
  idleMs: number;
}

export async function benchIdleRss(opts: IdleRssOptions) {
  const script = join(import.meta.dirname, 'idleAgent.ts');
  const agent = (stateDir: string, root: string) =>
    runChild<ChildReport>(opts.scratch, ['--expose-gc', '--import', 'tsx', script, stateDir, root, String(opts.idleMs)]);
  const node = await baselineRss(opts.scratch, false, opts.idleMs);
  const nodeTsx = await baselineRss(opts.scratch, true, opts.idleMs);
  const modestTree = await generateTree(join(opts.scratch.dir, 'idle-root'), { files: opts.modestFiles, large: 0 });
  const modest = await agent(join(opts.scratch.dir, 'idle-state'), modestTree.root);
  const out: Record<string, unknown> = {
    note:
      'agent runtime only (vault recovery, dpkg ownership lists, hash index, index scheduler) under the tsx loader as ' +
      '`tourniquet agent run` uses it; the network client (gateway WebSocket) is NOT included',
    idleMs: opts.idleMs,
    baselines: {
      bareNodeRssMiB: round(node.rss / MiB, 1),
      nodeWithTsxLoaderRssMiB: round(nodeTsx.rss / MiB, 1),
    },
    modest: summary(modest, `fresh index over ${modest.indexedFiles} files (${round(modestTree.bytes / MiB, 1)} MiB)`),
    agentOverTsxBaselineMiB: round((modest.rss - nodeTsx.rss) / MiB, 1),
  };
  if (opts.large) {
    const large = await agent(opts.large.stateDir, opts.large.root);
    out.large = summary(large, `existing index of ${opts.large.files} files, warm rescan at start`);
  }
  out.realAgent = await realAgentRss(opts.scratch, modestTree.root, opts.idleMs);
  out.target = { rssMiBBelow: 80, measuredOn: 'realAgent' };
  return out;
}
