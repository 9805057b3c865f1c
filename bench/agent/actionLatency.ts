// StopAndQuarantineFile on this machine for a large running binary: a copy of sleep padded with random bytes
// (still a valid ELF), started several times and indexed, then executeStopAndQuarantine timed from the call
// to its return — what the agent spends between receiving the action and reporting Succeeded. The network
// round trip (server → agent → server) is not included.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { executeStopAndQuarantine } from '../../src/agent/executor.ts';
import { openAgentRuntime } from '../../src/agent/runtime.ts';
import { SLEEP, isRunning, waitExec } from '../../test/agent/helpers.ts';
import type { Scratch } from './scratch.ts';
import { MiB, median, round } from './stats.ts';

export interface ActionLatencyOptions {
  scratch: Scratch;
  paddingBytes: number;
  processes: number;
  repeats: number;
}

function makeBigBinary(path: string, padding: number): string {
  copyFileSync(SLEEP, path);
  appendFileSync(path, randomBytes(padding));
  chmodSync(path, 0o755);
  // Settled on disk, as a file that has been there a while would be: no writeback racing the vault's writes.
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return createHash('sha1').update(readFileSync(path)).digest('hex');
}

export async function benchActionLatency(opts: ActionLatencyOptions) {
  const dir = join(opts.scratch.dir, 'action-files');
  mkdirSync(dir);
  const rt = openAgentRuntime(join(opts.scratch.dir, 'action-state'), { roots: [dir] });
  const runs = [];
  try {
    for (let i = 0; i < opts.repeats; i++) {
      const path = join(dir, `big-evil-${i}`);
      const sha1 = makeBigBinary(path, opts.paddingBytes);
      const size = readFileSync(path).length;
      const pids: number[] = [];
      for (let p = 0; p < opts.processes; p++) {
        const child = spawn(path, ['1000'], { stdio: 'ignore' });
        child.on('error', () => {});
        opts.scratch.track(child.pid);
        pids.push(child.pid!);
      }
      for (const pid of pids) await waitExec(pid, path);
      const scan = await rt.index.scan();
      if (rt.index.lookupPath(path)?.sha1 !== sha1) throw new Error(`index does not hold ${path} with SHA-1 ${sha1}`);

      const t0 = performance.now();
      const r = await executeStopAndQuarantine({ sha1, actionId: `bench-${i}` }, rt.deps);
      const ms = performance.now() - t0;

      const alive = pids.filter(isRunning);
      const reported = r.detail.files.find((f) => f.path === path);
      const problems = [
        r.outcome !== 'Succeeded' ? `outcome ${r.outcome}: ${r.reason}` : null,
        alive.length > 0 ? `still running: ${alive.join(', ')}` : null,
        existsSync(path) ? `${path} still on disk` : null,
        reported?.status !== 'quarantined' ? `${path} reported ${reported?.status ?? 'missing'}` : null,
        r.detail.processes.filter((p) => p.killed).length < opts.processes ? `only ${r.detail.processes.filter((p) => p.killed).length} process(es) reported killed` : null,
      ].filter(Boolean);
      if (problems.length > 0) throw new Error(`action ${i}: ${problems.join('; ')}`);
      runs.push({
        ms: round(ms, 1),
        outcome: r.outcome,
        processesKilled: r.detail.processes.filter((p) => p.killed).length,
        filesQuarantined: r.detail.files.filter((f) => f.status === 'quarantined').length,
        filesHashedDuringAction: r.filesHashed,
        phasesMs: r.timings,
        indexScanBeforeMs: round(scan.durationMs, 1),
        fileMiB: round(size / MiB, 1),
      });
    }
  } finally {
    rt.close();
  }
  return {
    what: 'executeStopAndQuarantine from call to return (Succeeded verified: processes dead, file gone, copy in the vault)',
    fileMiB: runs[0]?.fileMiB,
    processesPerRun: opts.processes,
    respawnWindowMs: rt.config.respawnWindowMs,
    note: `includes the agent's default ${rt.config.respawnWindowMs} ms respawn watch after the kill; excludes the network (server → agent → server)`,
    runs,
    medianMs: round(median(runs.map((r) => r.ms)), 1),
    target: { endToEndMsBelow: 1000 },
  };
}
