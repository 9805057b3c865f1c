// Child process for the idle-RSS bench: opens the agent runtime as `tourniquet agent run` does (same tsx
// loader), lets the first index scan finish, stays idle, then prints its memory as one JSON line.
//
//   node [--expose-gc] --import tsx bench/agent/idleAgent.ts <stateDir> <root> [idleMs]
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { openAgentRuntime } from '../../src/agent/runtime.ts';
import type { ScanReport } from '../../src/agent/hashIndex/hashIndex.ts';

/** A numeric field of /proc/self/status (kB for memory fields, a count for Threads). */
function statusField(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status);
  return m ? Number(m[1]) : NaN;
}

const [stateDir, root, idleMsArg] = process.argv.slice(2);
if (!stateDir || !root) {
  process.stderr.write('usage: idleAgent.ts <stateDir> <root> [idleMs]\n');
  process.exit(2);
}
const idleMs = Number(idleMsArg ?? 3000);
const rt = openAgentRuntime(stateDir, { roots: [root] });
const scan = await new Promise<ScanReport>((resolve, reject) => {
  rt.startIndexing((report, error) => (report ? resolve(report) : reject(error)));
});
const afterScanRss = process.memoryUsage().rss;
await sleep(idleMs);
const mem = process.memoryUsage();
const status = readFileSync('/proc/self/status', 'utf8');
// With --expose-gc: what a full collection gives back (the agent itself never forces one).
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const afterGc = gc ? process.memoryUsage() : null;
process.stdout.write(
  JSON.stringify({
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    heapTotal: mem.heapTotal,
    external: mem.external,
    afterScanRss,
    rssAnonKiB: statusField(status, 'RssAnon'),
    rssFileKiB: statusField(status, 'RssFile'),
    peakRssKiB: statusField(status, 'VmHWM'),
    threads: statusField(status, 'Threads'),
    rssAfterGc: afterGc?.rss ?? null,
    heapUsedAfterGc: afterGc?.heapUsed ?? null,
    indexedFiles: rt.index.count,
    scan: { files: scan.files, hashed: scan.hashed, unchanged: scan.unchanged, durationMs: Math.round(scan.durationMs) },
  }) + '\n',
);
rt.close();
