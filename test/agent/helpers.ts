// Shared fixtures for the agent tests: temp dirs, unique "malware" (a /bin/sleep copy with random bytes
// appended: still a valid ELF, but a SHA-1 no other file on the machine has), processes we start and kill
// by pid, and a fully wired executor.
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutorDeps } from '../../src/agent/executor.ts';
import { HashCache } from '../../src/agent/hashIndex/hashCache.ts';
import { HashIndex } from '../../src/agent/hashIndex/hashIndex.ts';
import { ProtectionPolicy } from '../../src/agent/protection.ts';
import type { ProtectionOptions } from '../../src/agent/protection.ts';
import { Vault } from '../../src/agent/vault/vault.ts';
import type { ExecutionResult } from '../../src/agent/executor.ts';
import { checkDeviceMessage } from '../../src/protocol/schemas.ts';

export const SLEEP = '/usr/bin/sleep';

export function sha1Of(data: Buffer | string): string {
  return createHash('sha1').update(data).digest('hex');
}

export function sha1OfFile(path: string): string {
  return sha1Of(readFileSync(path));
}

/** A temp dir removed at the end, even if a test left immutable files in it. */
export function tempDir(prefix = 'tq-agent-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    cleanup: () => {
      try {
        execFileSync('chattr', ['-R', '-i', '-a', dir], { stdio: 'ignore' });
      } catch {
        // no immutable files, or no chattr
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A unique executable: /bin/sleep plus random trailing bytes. */
export function makeEvil(path: string, mode = 0o755): { path: string; sha1: string; size: number } {
  copyFileSync(SLEEP, path);
  appendFileSync(path, randomBytes(24));
  chmodSync(path, mode);
  const data = readFileSync(path);
  return { path, sha1: sha1Of(data), size: data.length };
}

/** A unique script (a random comment makes its SHA-1 unique). */
export function makeScript(path: string, body: string, mode = 0o755): { path: string; sha1: string } {
  const text = body.replace('__NONCE__', randomBytes(12).toString('hex'));
  appendFileSync(path, text);
  chmodSync(path, mode);
  return { path, sha1: sha1Of(text) };
}

/** Starts processes and, at the end, kills whatever is still alive (by pid, only ours). */
export class Procs {
  private readonly started: ChildProcess[] = [];
  readonly extraPids = new Set<number>();

  start(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    child.on('error', () => {});
    this.started.push(child);
    return child;
  }

  cleanup(): void {
    for (const pid of this.extraPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const c of this.started) {
      if (c.pid === undefined) continue;
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

/** A test's scratch directory and the processes it starts, both gone when the test ends. */
export function scratch(t: { after(fn: () => void): void }): { tmp: ReturnType<typeof tempDir>; procs: Procs } {
  const tmp = tempDir();
  const procs = new Procs();
  t.after(() => {
    procs.cleanup();
    tmp.cleanup();
  });
  return { tmp, procs };
}

/** State of a process: null when it no longer exists, 'Z' for a zombie. */
export function procState(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

export function isRunning(pid: number): boolean {
  const s = procState(pid);
  return s !== null && s !== 'Z' && s !== 'X';
}

export async function waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Pids whose /proc/PID/exe is `path` (or `path (deleted)`). */
export function pidsRunning(path: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const exe = readlinkSync(`/proc/${name}/exe`);
      if (exe === path || exe === `${path} (deleted)`) out.push(Number(name));
    } catch {
      // gone or kernel thread
    }
  }
  return out;
}

/** Waits until the process started as `child` has exec'd `exe` (spawn returns before exec finishes). */
export async function waitExec(pid: number, exePrefix: string): Promise<void> {
  await waitFor(() => {
    try {
      return readlinkSync(`/proc/${pid}/exe`).startsWith(exePrefix);
    } catch {
      return false;
    }
  }, 5000, `pid ${pid} to exec ${exePrefix}`);
}

export interface TestAgent {
  deps: ExecutorDeps;
  vault: Vault;
  index: HashIndex;
  close: () => void;
}

/** A wired executor over `roots`, with its state (vault, key, index) in `stateDir`. */
export function testAgent(
  stateDir: string,
  roots: string[],
  opts: { protection?: ProtectionOptions; vaultDir?: string } & Omit<Partial<ExecutorDeps>, 'protection'> = {},
): TestAgent {
  const vault = Vault.open({ dir: opts.vaultDir ?? join(stateDir, 'vault'), keyFile: join(stateDir, 'vault.key') });
  vault.recover();
  const index = HashIndex.open({ file: join(stateDir, 'index.sqlite'), roots, skipPaths: [stateDir, vault.dir] });
  const protection = new ProtectionPolicy({ agentPaths: [stateDir, vault.dir], ...opts.protection });
  protection.warm();
  const hashCache = new HashCache(4096, (id) => index.lookupIdentity(id));
  const { protection: _protectionOptions, vaultDir: _vaultDir, ...rest } = opts;
  const deps: ExecutorDeps = {
    ...rest,
    vault,
    index,
    protection,
    hashCache,
    respawnWindowMs: opts.respawnWindowMs ?? 60,
    sizeScan: opts.sizeScan ?? 'never',
  };
  return { deps, vault, index, close: () => index.close() };
}

export function exists(p: string): boolean {
  return existsSync(p);
}

/** The result must be sendable as-is: it passes the gateway's strict v1 schema for a result frame. */
export function assertWireValid(r: ExecutionResult): void {
  const frame = {
    t: 'result',
    seq: 1,
    actionId: '00000000-0000-4000-8000-000000000000',
    outcome: r.outcome,
    errorHResult: r.errorHResult,
    reason: r.reason,
    detail: r.detail,
    signature: 'AAAA',
  };
  const checked = checkDeviceMessage(JSON.parse(JSON.stringify(frame)));
  if (!checked.ok) throw new Error(`result not valid on the wire: ${checked.error}`);
}
