// Shared bench plumbing: start a child server and wait for its `listening on` line, run autocannon, summarize.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

export interface Child {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

export function startChild(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Child> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^listening on (http:\/\/\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({
          child,
          url: m[1]!,
          stop: () =>
            new Promise((r) => {
              if (child.exitCode !== null) return r();
              child.once('exit', () => r());
              child.kill('SIGTERM');
            }),
        });
      }
    });
  });
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** Requests answered over the whole run. */
  total: number;
}

/**
 * CPU time (user + system, every thread) a process has used so far, from /proc: null where there is no /proc.
 * Per request, it is a steadier figure than requests/s on a shared host, whose speed drifts between runs.
 */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th, in clock ticks.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

export async function load(opts: autocannon.Options): Promise<LoadResult> {
  const r = await autocannon({ connections: 50, duration: 10, ...opts });
  return {
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    total: r.requests.total,
  };
}

/**
 * Runs a benchmark script's `main` under a deadline and prints its one JSON document on stdout (or one with `error`).
 * Whatever the outcome, the child processes it started are ended: on success politely, on failure at once.
 */
export function runBenchMain(
  name: string,
  main: () => Promise<unknown>,
  opts: { children: ChildProcess[]; deadlineMs: number; log: (msg: string) => void },
): void {
  const endChildren = (signal: NodeJS.Signals) => {
    for (const c of opts.children) if (c.exitCode === null) c.kill(signal);
  };
  const watchdog = setTimeout(() => {
    opts.log('deadline reached; stopping');
    endChildren('SIGKILL');
    process.stdout.write(`${JSON.stringify({ benchmark: name, error: 'deadline reached' })}\n`);
    process.exit(2);
  }, opts.deadlineMs);
  watchdog.unref();
  main().then(
    (out) => {
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      endChildren('SIGTERM');
      process.exit(0);
    },
    (err: unknown) => {
      endChildren('SIGKILL');
      process.stdout.write(`${JSON.stringify({ benchmark: name, error: err instanceof Error ? err.message : String(err) })}\n`);
      process.exit(1);
    },
  );
}
