// Reading processes from /proc, tolerant of the fact that any process may vanish between two reads.
// Every reader returns null (or skips the entry) when the process is gone or unreadable, never throws for that.
import { readdirSync, readFileSync, readlinkSync, statSync, existsSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';

export const PROC = '/proc';

/** PF_KTHREAD in the `flags` field of /proc/PID/stat. */
const PF_KTHREAD = 0x00200000;

/**
 * Errors that mean "this process (or this entry) is gone or not ours to read": skip, do not fail the scan.
 * ENAMETOOLONG: any process's arguments are looked up as possible script paths, and an argument may be longer
 * than a path can be; no file can have that name.
 */
const VANISHED = new Set(['ENOENT', 'ESRCH', 'EACCES', 'EPERM', 'ENOTDIR', 'EINVAL', 'ELOOP', 'ENXIO', 'ENAMETOOLONG']);

export function isVanished(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && VANISHED.has(code);
}

function tolerant<T>(read: () => T): T | null {
  try {
    return read();
  } catch (err) {
    if (isVanished(err)) return null;
    throw err;
  }
}

export interface ProcStat {
  pid: number;
  comm: string;
  /** R, S, D, Z, T, t, X, I, ... */
  state: string;
  ppid: number;
  /** Clock ticks since boot: with pid, it names one process even after the pid is reused. */
  startTime: bigint;
  kernelThread: boolean;
}

/** Parses /proc/PID/stat. comm may contain spaces and ')' so the fields start after the last ')'. */
export function parseStat(pid: number, text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const state = rest[0];
  const ppid = Number(rest[1]);
  const flags = Number(rest[6]);
  const start = rest[19];
  if (!state || !Number.isInteger(ppid) || start === undefined || !/^\d+$/.test(start)) return null;
  return {
    pid,
    comm: text.slice(open + 1, close),
    state,
    ppid,
    startTime: BigInt(start),
    kernelThread: (flags & PF_KTHREAD) !== 0 || (pid !== 1 && ppid === 2) || pid === 2,
  };
}

export function readStat(pid: number): ProcStat | null {
  const text = tolerant(() => readFileSync(`${PROC}/${pid}/stat`, 'utf8'));
  return text === null ? null : parseStat(pid, text);
}

export function listPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync(PROC)) {
    if (name.charCodeAt(0) >= 48 && name.charCodeAt(0) <= 57 && /^\d+$/.test(name)) out.push(Number(name));
  }
  return out;
}

/** One snapshot of every process's stat line; vanished processes are simply absent. */
export function snapshotStats(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const pid of listPids()) {
    const st = readStat(pid);
    if (st) out.set(pid, st);
  }
  return out;
}

export interface ExeLink {
  /** What readlink returned, e.g. "/tmp/evil (deleted)" or "/memfd:x (deleted)". */
  raw: string;
  /** The path with " (deleted)" removed only when that suffix is not part of a real name. */
  path: string;
  /** The executable's inode has no name left on disk (unlinked or memfd). */
  deleted: boolean;
  memfd: boolean;
}

const DELETED_SUFFIX = ' (deleted)';

/**
 * Interprets a /proc magic-link target. `rootPrefix` is where the process's "/" is reachable from here
 * (`/proc/PID/root`), so the "does the literal name exist" test looks in the process's own mount namespace.
 * `nlink` (from stat through the magic link) is authoritative when known: 0 means no name is left.
 */
export function interpretLink(raw: string, rootPrefix: string, nlink: number | null): ExeLink {
  const memfd = raw.startsWith('/memfd:');
  let path = raw;
  let deleted = false;
  if (raw.endsWith(DELETED_SUFFIX)) {
    const literalExists = !memfd && raw.startsWith('/') && existsSync(rootPrefix + raw);
    if (!literalExists) {
      path = raw.slice(0, -DELETED_SUFFIX.length);
      deleted = true;
    }
  }
  if (nlink === 0) deleted = true;
  if (memfd) deleted = true;
  return { raw, path, deleted, memfd };
}

export function readExe(pid: number): ExeLink | null {
  const raw = tolerant(() => readlinkSync(`${PROC}/${pid}/exe`));
  if (raw === null) return null;
  const st = statThroughProc(`${PROC}/${pid}/exe`);
  return interpretLink(raw, `${PROC}/${pid}/root`, st ? Number(st.nlink) : null);
}

/** stat() through a magic link (/proc/PID/exe, /proc/PID/fd/N): the target inode even when it was unlinked. */
export function statThroughProc(path: string): BigIntStats | null {
  return tolerant(() => statSync(path, { bigint: true }));
}

export function readCmdline(pid: number): string[] | null {
  const buf = tolerant(() => readFileSync(`${PROC}/${pid}/cmdline`));
  if (buf === null) return null;
  const parts = buf.toString('utf8').split('\0');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export function readCwd(pid: number): string | null {
  return tolerant(() => readlinkSync(`${PROC}/${pid}/cwd`));
}

/** The process's root directory as it sees it: "/" unless chrooted. */
export function readRoot(pid: number): string | null {
  return tolerant(() => readlinkSync(`${PROC}/${pid}/root`));
}

/** The process's mount namespace, e.g. "mnt:[4026531832]". */
export function readMountNamespace(pid: number | 'self'): string | null {
  return tolerant(() => readlinkSync(`${PROC}/${pid}/ns/mnt`));
}

export interface OpenFd {
  fd: number;
  /** readlink of /proc/PID/fd/N: a path, "socket:[..]", "pipe:[..]", "anon_inode:..." */
  target: string;
}

export function readFds(pid: number): OpenFd[] {
  const names = tolerant(() => readdirSync(`${PROC}/${pid}/fd`));
  if (!names) return [];
  const out: OpenFd[] = [];
  for (const name of names) {
    const target = tolerant(() => readlinkSync(`${PROC}/${pid}/fd/${name}`));
    if (target !== null) out.push({ fd: Number(name), target });
  }
  return out;
}

export interface FileMapping {
  /** "start-end" as named in /proc/PID/map_files. */
  range: string;
  device: string;
  inode: string;
  path: string;
}

/** File-backed mappings, one per distinct inode (the first range names it in map_files). */
export function readFileMappings(pid: number): FileMapping[] {
  const text = tolerant(() => readFileSync(`${PROC}/${pid}/maps`, 'utf8'));
  if (text === null) return [];
  const seen = new Set<string>();
  const out: FileMapping[] = [];
  for (const line of text.split('\n')) {
    // address perms offset dev inode pathname
    const m = /^([0-9a-f]+-[0-9a-f]+) \S+ \S+ (\S+) (\d+)\s+(.*)$/.exec(line);
    if (!m || m[3] === '0') continue;
    const key = `${m[2]}:${m[3]}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ range: m[1]!, device: m[2]!, inode: m[3]!, path: m[4]! });
  }
  return out;
}

/** Our own pid and every ancestor up to (and including) pid 1: processes the agent must never signal. */
export function selfAndAncestors(stats?: Map<number, ProcStat>): Set<number> {
  const out = new Set<number>([1, process.pid]);
  let pid = process.pid;
  for (let guard = 0; guard < 4096; guard++) {
    const st = stats?.get(pid) ?? readStat(pid);
    if (!st || st.ppid <= 0 || out.has(st.ppid)) {
      if (st && st.ppid > 0) out.add(st.ppid);
      break;
    }
    out.add(st.ppid);
    pid = st.ppid;
  }
  return out;
}
