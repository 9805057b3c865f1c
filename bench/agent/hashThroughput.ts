// SHA-1 throughput of the agent's hashFile against `sha1sum` and `openssl sha1` on the same file, page cache
// warm, best of N runs each. The file is unlinked as soon as it is written and reached through
// /proc/<pid>/fd/<n>, so it cannot outlive this process however the bench ends (even SIGKILL).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fdatasyncSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldNow } from 'node:timers/promises';
import { hashFile } from '../../src/agent/hashIndex/hashFile.ts';
import { MiB, round } from './stats.ts';

export interface HashThroughputOptions {
  dir: string;
  bytes: number;
  runs: number;
}

interface Method {
  name: string;
  what: string;
  run(path: string): string;
}

function spawned(cmd: string, args: string[], path: string): string {
  const r = spawnSync(cmd, [...args, path], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status ?? r.signal}): ${r.stderr}`);
  const m = /\b([0-9a-f]{40})\b/.exec(r.stdout);
  if (!m) throw new Error(`${cmd}: no SHA-1 in output: ${r.stdout}`);
  return m[1]!;
}

const METHODS: Method[] = [
  { name: 'ours_sha1', what: 'hashFile(path, { sha256: false }) — readSync loop, 1 MiB buffer, SHA-1 only', run: (p) => hashFile(p, { noFollow: false, sha256: false }).sha1 },
  { name: 'ours_sha1_sha256', what: 'hashFile(path) — SHA-1 and SHA-256 in one pass, as the index and the vault do', run: (p) => hashFile(p, { noFollow: false }).sha1 },
  { name: 'sha1sum', what: 'sha1sum <file> (spawned)', run: (p) => spawned('sha1sum', [], p) },
  { name: 'openssl_sha1', what: 'openssl sha1 <file> (spawned)', run: (p) => spawned('openssl', ['sha1'], p) },
];

/** Writes `bytes` of incompressible data (a random 16 MiB block repeated with a distinct counter). */
function writeBigFile(fd: number, bytes: number): void {
  const block = randomBytes(16 * MiB);
  let written = 0;
  for (let i = 0; written < bytes; i++) {
    block.writeUInt32LE(i, 0);
    const n = Math.min(block.length, bytes - written);
    written += writeSync(fd, block, 0, n, written);
  }
  fdatasyncSync(fd); // no writeback competing with the timed runs
}

function readThrough(path: string): void {
  const fd = openSync(path, constants.O_RDONLY);
  const buf = Buffer.allocUnsafe(MiB);
  try {
    while (readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}

export async function benchHashThroughput(opts: HashThroughputOptions) {
  const file = join(opts.dir, 'hash-input.bin');
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    unlinkSync(file);
    const t0 = performance.now();
    writeBigFile(fd, opts.bytes);
    const createMs = performance.now() - t0;
    const path = `/proc/${process.pid}/fd/${fd}`;
    readThrough(path);

    const seconds: Record<string, number[]> = Object.fromEntries(METHODS.map((m) => [m.name, []]));
    const digests = new Set<string>();
    for (let run = 0; run < opts.runs; run++) {
      // Interleaved, so a burst of load from elsewhere hits every method rather than one.
      for (const m of METHODS) {
        await yieldNow(); // lets SIGINT/SIGTERM clean up between runs rather than after the whole phase
        const t = performance.now();
        digests.add(m.run(path));
        seconds[m.name]!.push((performance.now() - t) / 1000);
      }
    }
    if (digests.size !== 1) throw new Error(`methods disagree on the SHA-1: ${[...digests].join(', ')}`);

    const mib = opts.bytes / MiB;
    const results = Object.fromEntries(
      METHODS.map((m) => {
        const runs = seconds[m.name]!;
        const best = Math.min(...runs);
        return [m.name, { what: m.what, bestSeconds: round(best, 3), runsSeconds: runs.map((s) => round(s, 3)), mibPerSecond: round(mib / best, 0) }];
      }),
    );
    const speed = (name: string) => mib / Math.min(...seconds[name]!);
    return {
      fileMiB: mib,
      createSeconds: round(createMs / 1000, 2),
      runs: opts.runs,
      sha1: [...digests][0],
      note: 'page cache warm (file read once before timing); best of the runs; file unlinked after creation and read via /proc/<pid>/fd/<n>',
      results,
      ratioOursToSha1sum: round(speed('ours_sha1') / speed('sha1sum'), 2),
      ratioOursSha1Sha256ToSha1sum: round(speed('ours_sha1_sha256') / speed('sha1sum'), 2),
      ratioOursToOpenssl: round(speed('ours_sha1') / speed('openssl_sha1'), 2),
      target: { ratioOursToSha1sumAtLeast: 1.5 },
    };
  } finally {
    closeSync(fd);
  }
}
