// Freeze, then kill (endpoint-agent.md §3.4): SIGSTOP every matching process and its descendants until a
// re-scan finds no new member, so nothing can fork or respawn a child while the tree is being taken down;
// then SIGKILL them all and verify each one is gone. A supervisor that starts the file again during the
// action is caught by re-scanning for a short window after the kill; those processes are reported as respawned.
//
// Signals are the baseline because they work everywhere (cgroup v1 hosts included); a pid is only ever
// signalled after its start time has been checked, so a reused pid is never hit.
import { setTimeout as sleep } from 'node:timers/promises';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { MatchKind, ProcessMatch } from './matchProcesses.ts';
import { thawV1FreezerOf } from './cgroupFreezer.ts';
import type { ProcStat } from './procfs.ts';
import { readCmdline, readStat, selfAndAncestors, snapshotStats } from './procfs.ts';

/** frozen: stopped, awaiting the kill; killed: SIGKILLed and verified dead; gone: exited (or its pid was
 *  reused) before we signalled it; refused: never signalled (pid 1, the agent, its ancestors); alive: survived. */
export type MemberState = 'frozen' | 'refused' | 'killed' | 'gone' | 'alive';

export interface TreeMember {
  pid: number;
  ppid: number;
  startTime: bigint;
  exe: string | null;
  cmdline: string | null;
  matchedBy: MatchKind | 'descendant';
  respawned: boolean;
  state: MemberState;
  /** errno-style reason when the process could not be stopped or killed. */
  error?: string;
}

export interface FreezeKillOptions {
  /** Pids never signalled (pid 1, the agent and its ancestors are always added). */
  forbiddenPids?: Iterable<number>;
  /** Descendant/rescan rounds before giving up on closure. */
  maxRounds?: number;
  /** How long to wait for a SIGSTOPped process to reach the stopped state. */
  stopTimeoutMs?: number;
  /** How long to wait for a SIGKILLed process to disappear. */
  verifyTimeoutMs?: number;
}

const key = (pid: number, startTime: bigint) => `${pid}:${startTime}`;

function errnoOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? (e instanceof Error ? e.message : String(err));
}

const DEAD_STATES = new Set(['Z', 'X', 'x']);

/**
 * True when the process named by (pid, startTime) no longer runs: gone, its pid reused, or a zombie. A zombie
 * thread-group leader whose other threads still run is alive (its main thread exited, the process did not).
 */
function isDead(pid: number, startTime: bigint): boolean {
  const st = readStat(pid);
  if (!st || st.startTime !== startTime) return true;
  if (!DEAD_STATES.has(st.state)) return false;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return true;
  }
  return tids.every((tid) => {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return DEAD_STATES.has(text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3));
    } catch {
      return true;
    }
  });
}

function describe(pid: number): { exe: string | null; cmdline: string | null } {
  let exe: string | null = null;
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    exe = null;
  }
  const parts = readCmdline(pid);
  return { exe, cmdline: parts ? parts.join(' ').slice(0, 4096) : null };
}

export class TreeKiller {
  private readonly members = new Map<string, TreeMember>();
  private readonly forbidden: Set<number>;
  private readonly maxRounds: number;
  private readonly stopTimeoutMs: number;
  private readonly verifyTimeoutMs: number;

  constructor(opts: FreezeKillOptions = {}) {
    this.forbidden = selfAndAncestors();
    for (const pid of opts.forbiddenPids ?? []) this.forbidden.add(pid);
    this.maxRounds = opts.maxRounds ?? 16;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 1000;
    this.verifyTimeoutMs = opts.verifyTimeoutMs ?? 3000;
  }

  has(pid: number, startTime: bigint): boolean {
    return this.members.has(key(pid, startTime));
  }

  list(): TreeMember[] {
    return [...this.members.values()];
  }

  /** Every pid that is or was part of the tree (for excluding from "new process" checks). */
  knownKeys(): ReadonlySet<string> {
    return new Set(this.members.keys());
  }

  private signal(m: TreeMember, sig: 'SIGSTOP' | 'SIGKILL'): boolean {
    if (isDead(m.pid, m.startTime)) {
      m.state = 'gone';
      return false;
    }
    try {
      process.kill(m.pid, sig);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') {
        m.state = 'gone';
      } else {
        m.state = 'alive';
        m.error = `${sig} failed: ${errnoOf(err)}`;
      }
      return false;
    }
  }

  private add(m: Omit<TreeMember, 'state'>): TreeMember | null {
    const k = key(m.pid, m.startTime);
    if (this.members.has(k)) return null;
    const member: TreeMember = { ...m, state: 'frozen' };
    this.members.set(k, member);
    if (this.forbidden.has(m.pid)) {
      member.state = 'refused';
      member.error =
        m.pid === 1
          ? 'EPERM: refusing to signal pid 1'
          : m.pid === process.pid
            ? 'EPERM: refusing to signal the agent itself'
            : 'EPERM: refusing to signal an ancestor of the agent';
      return null;
    }
    if (!this.signal(member, 'SIGSTOP')) return null;
    return member;
  }

  private async waitStopped(batch: TreeMember[]): Promise<void> {
    const deadline = Date.now() + this.stopTimeoutMs;
    let pending = batch;
    while (pending.length > 0 && Date.now() < deadline) {
      pending = pending.filter((m) => {
        const st = readStat(m.pid);
        if (!st || st.startTime !== m.startTime || st.state === 'Z') {
          m.state = 'gone';
          return false;
        }
        return st.state !== 'T' && st.state !== 't';
      });
      if (pending.length > 0) await sleep(2);
    }
  }

  /** Adds (and stops) matched processes not yet in the tree; returns the ones it added. */
  private addMatches(matches: ProcessMatch[], respawned: boolean): TreeMember[] {
    const added: TreeMember[] = [];
    for (const m of matches) {
      const member = this.add({
        pid: m.pid,
        ppid: m.ppid,
        startTime: m.startTime,
        exe: m.exe,
        cmdline: m.cmdline,
        matchedBy: m.matchedBy,
        respawned,
      });
      if (member) added.push(member);
    }
    return added;
  }

  /**
   * Stops `matches` and, round after round, every descendant of a stopped member (and any new match that
   * `rescan` reports) until a round adds nobody. A stopped process cannot fork, so the closure is final.
   */
  async freeze(matches: ProcessMatch[], opts: { respawned?: boolean; rescan?: () => ProcessMatch[] } = {}): Promise<TreeMember[]> {
    const respawned = opts.respawned ?? false;
    const added: TreeMember[] = [];
    let batch = this.addMatches(matches, respawned);
    for (let round = 0; round < this.maxRounds && batch.length > 0; round++) {
      added.push(...batch);
      await this.waitStopped(batch);
      const stats = snapshotStats();
      batch = [];
      for (const child of this.newDescendants(stats)) {
        const info = describe(child.pid);
        const member = this.add({
          pid: child.pid,
          ppid: child.ppid,
          startTime: child.startTime,
          ...info,
          matchedBy: 'descendant',
          respawned,
        });
        if (member) batch.push(member);
      }
      if (batch.length === 0 && opts.rescan) batch = this.addMatches(opts.rescan(), respawned);
    }
    for (const m of batch) {
      // Closure did not converge within maxRounds: these are stopped but their children were not walked.
      m.error ??= 'descendants not fully walked (round limit)';
      added.push(m);
    }
    return added;
  }

  private newDescendants(stats: Map<number, ProcStat>): ProcStat[] {
    const parents = new Set<number>();
    for (const m of this.members.values()) if (m.state === 'frozen') parents.add(m.pid);
    const out: ProcStat[] = [];
    for (const st of stats.values()) {
      if (!parents.has(st.ppid) || st.kernelThread) continue;
      if (this.members.has(key(st.pid, st.startTime))) continue;
      if (st.state === 'Z' || st.state === 'X') continue;
      out.push(st);
    }
    return out;
  }

  /** SIGKILLs every stopped member and waits until each is gone (a zombie is dead). */
  async killAll(): Promise<void> {
    const targets = [...this.members.values()].filter((m) => m.state === 'frozen');
    const sent: TreeMember[] = [];
    for (const m of targets) if (this.signal(m, 'SIGKILL')) sent.push(m);
    const start = Date.now();
    let thawTried = false;
    let pending = sent;
    while (pending.length > 0) {
      pending = pending.filter((m) => {
        if (isDead(m.pid, m.startTime)) {
          m.state = 'killed';
          return false;
        }
        return true;
      });
      if (pending.length === 0) break;
      const elapsed = Date.now() - start;
      if (!thawTried && elapsed > 100) {
        thawTried = true;
        for (const m of pending) thawV1FreezerOf(m.pid);
      }
      if (elapsed > this.verifyTimeoutMs) {
        for (const m of pending) {
          const st = readStat(m.pid);
          m.state = 'alive';
          m.error = `still running ${this.verifyTimeoutMs} ms after SIGKILL (state ${st?.state ?? '?'})`;
        }
        break;
      }
      await sleep(elapsed < 20 ? 1 : 5);
    }
  }

  /**
   * Re-scans for `windowMs` after the kill and freezes + kills any new process running the file
   * (a supervisor restarting it). Returns how many respawns were caught.
   */
  async catchRespawns(windowMs: number, rescan: () => ProcessMatch[], intervalMs = 10): Promise<number> {
    const deadline = Date.now() + windowMs;
    let caught = 0;
    while (Date.now() < deadline) {
      await sleep(intervalMs);
      const fresh = rescan().filter((m) => !this.has(m.pid, m.startTime));
      if (fresh.length === 0) continue;
      caught += (await this.freeze(fresh, { respawned: true })).length;
      await this.killAll();
    }
    return caught;
  }
}
