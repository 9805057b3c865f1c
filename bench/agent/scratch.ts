// Bench scratch space under os.tmpdir(): removed when the bench ends, fails, or is interrupted (SIGINT/SIGTERM),
// and killed-by-pid for every process the bench started. SIGKILL cannot be caught; the one file big enough to
// matter (1 GiB) is unlinked right after creation for that reason (see hashThroughput.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Scratch {
  dir: string;
  /** Remembers a pid to SIGKILL at cleanup if it is still alive. */
  track(pid: number | undefined): void;
  cleanup(): void;
}

export function openScratch(prefix = 'tq-bench-agent-'): Scratch {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const pids = new Set<number>();
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
    process.off('exit', cleanup);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup();
    process.kill(process.pid, signal);
  };
  process.on('exit', cleanup);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    dir,
    track: (pid) => {
      if (pid !== undefined) pids.add(pid);
    },
    cleanup,
  };
}
