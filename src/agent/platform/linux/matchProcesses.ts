// Which processes are running a file with a given SHA-1: as their executable (including deleted and memfd
// binaries, read back through /proc/PID/exe), as a script handed to an interpreter (an argument resolved in
// the process's own cwd and root), through an open descriptor (bash keeps its script open as fd 255), or,
// optionally, as a mapped file (an LD_PRELOADed library). See endpoint-agent.md §3.1–3.3.
import { closeSync, constants, fstatSync, lstatSync, readlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { posix } from 'node:path';
import type { HashCache } from '../../hashIndex/hashCache.ts';
import type { FileIdentity } from '../../hashIndex/hashFile.ts';
import { hashFd, identityOf, openReadNoAtime } from '../../hashIndex/hashFile.ts';
import type { ProcStat } from './procfs.ts';
import {
  PROC,
  interpretLink,
  isVanished,
  readCmdline,
  readCwd,
  readFds,
  readFileMappings,
  readMountNamespace,
  readRoot,
  snapshotStats,
  statThroughProc,
} from './procfs.ts';

export type MatchKind = 'exe' | 'script' | 'fd' | 'map';

export interface MatchTarget {
  sha1: string;
  /** Size in bytes when known: every candidate of another size is skipped without being read. */
  size: number | null;
}

/** One file a process is running, and how to reach its bytes and its name from the agent. */
export interface RunningFile {
  /** A path the agent can read the content through now (a /proc magic link or a plain path). */
  readPath: string;
  /** readPath is a /proc symlink that must be followed (no O_NOFOLLOW). */
  viaProc: boolean;
  /** The name as the process sees it (in its own mount namespace); for memfd, "/memfd:NAME". */
  originalPath: string;
  /** A path to the on-disk name reachable from the agent (checked to be this inode), or null when none is. */
  diskPath: string | null;
  deleted: boolean;
  memfd: boolean;
  /** The name is reached through /proc/PID/root (another mount namespace): valid only while the process lives. */
  foreignRoot: boolean;
  identity: FileIdentity;
  nlink: number;
}

export interface ProcessMatch {
  pid: number;
  ppid: number;
  startTime: bigint;
  comm: string;
  /** readlink of /proc/PID/exe as the kernel shows it (with " (deleted)"), or null. */
  exe: string | null;
  cmdline: string;
  matchedBy: MatchKind;
  file: RunningFile;
}

export interface MatchOptions {
  cache: HashCache;
  /** Also hash file-backed mappings (/proc/PID/map_files): catches preloaded libraries, costs more. */
  includeMaps?: boolean;
  /** Never reported: the agent itself (its own descriptors hold the file while it hashes). */
  excludePids?: ReadonlySet<number>;
  /** When the size is unknown, non-executable candidates larger than this are not hashed (scripts are small). */
  maxUnknownSizeBytes?: number;
  /** How many command-line arguments per process are tried as script paths. */
  maxArgs?: number;
  stats?: Map<number, ProcStat>;
  /** Only these pids are examined (a cheap re-check); default all. */
  onlyPids?: ReadonlySet<number>;
  /**
   * "pid:startTime" of processes whose descriptors and mappings were already examined during this action;
   * re-scans check only their executable and arguments (an exec changes those), and add every process they
   * examine in full. Some processes hold tens of thousands of sockets: reading all their descriptors on each
   * of the dozens of re-scans in a respawn window would cost more than the action itself.
   */
  fdsChecked?: Set<string>;
}

export interface MatchResult {
  matches: ProcessMatch[];
  /** The target size, learned from the first match when it was not known. */
  size: number | null;
  /** Files actually read and hashed during this scan (cache misses). */
  hashed: number;
}

const CMDLINE_REPORT_MAX = 4096;

interface ScanState {
  target: MatchTarget;
  opts: MatchOptions;
  hashed: number;
  selfMountNs: string | null;
}

/** Hash of a candidate, from the cache or by reading it; null when it cannot be read or fails the prefilter. */
function candidateSha1(state: ScanState, readPath: string, viaProc: boolean, st: BigIntStats, kind: MatchKind): string | null {
  if (!st.isFile()) return null;
  const size = Number(st.size);
  const { target, opts } = state;
  if (target.size !== null && size !== target.size) return null;
  if (target.size === null && kind !== 'exe' && size > (opts.maxUnknownSizeBytes ?? 16 * 1024 * 1024)) return null;
  const cached = opts.cache.get(identityOf(st));
  if (cached) return cached.sha1;
  let fd: number;
  try {
    fd = openReadNoAtime(readPath, constants.O_RDONLY | constants.O_NONBLOCK | (viaProc ? 0 : constants.O_NOFOLLOW));
  } catch (err) {
    if (isVanished(err) || (err as NodeJS.ErrnoException).code === 'ETXTBSY') return null;
    throw err;
  }
  try {
    const fst = fstatSync(fd, { bigint: true });
    if (!fst.isFile()) return null;
    if (target.size !== null && Number(fst.size) !== target.size) return null;
    const again = opts.cache.get(identityOf(fst));
    if (again) return again.sha1;
    const h = hashFd(fd, { sha256: false });
    state.hashed++;
    opts.cache.put(identityOf(fst), { sha1: h.sha1, sha256: null });
    return h.sha1;
  } catch (err) {
    if (isVanished(err)) return null;
    throw err;
  } finally {
    closeSync(fd);
  }
}

/** Where the process lives relative to the agent; read only once a process matches. */
interface ProcessPlace {
  /** Same mount namespace as the agent: kernel-printed paths are paths from our root. */
  sameMountNs: boolean;
  /** The process's root as seen from here ("/" unless chrooted). */
  rootLink: string | null;
}

function placeOf(state: ScanState, pid: number): ProcessPlace {
  const ns = readMountNamespace(pid);
  return { sameMountNs: ns === null || state.selfMountNs === null || ns === state.selfMountNs, rootLink: readRoot(pid) };
}

/**
 * A path from which the agent reaches the very inode `st` under the name `seen` (as the kernel printed it, or
 * as the process named it), or null. In our own mount namespace the kernel prints host paths, even for a
 * chrooted process; a process in another mount namespace is reached through /proc/PID/root, which is valid
 * only while that process exists.
 */
function reachableName(pid: number, place: ProcessPlace, seen: string, st: BigIntStats, asNamedByProcess: boolean): string | null {
  if (!seen.startsWith('/')) return null;
  const viaRoot = `${PROC}/${pid}/root${seen}`;
  const candidates = place.sameMountNs
    ? asNamedByProcess && place.rootLink && place.rootLink !== '/'
      ? [posix.join(place.rootLink, seen), viaRoot]
      : [seen, viaRoot]
    : [viaRoot];
  for (const c of candidates) {
    try {
      const l = lstatSync(c, { bigint: true });
      if (l.isFile() && l.dev === st.dev && l.ino === st.ino) return c;
    } catch {
      // not this one
    }
  }
  return null;
}

function runningFile(
  pid: number,
  place: ProcessPlace,
  readPath: string,
  originalPath: string,
  link: { deleted: boolean; memfd: boolean },
  st: BigIntStats,
  asNamedByProcess = false,
): RunningFile {
  const diskPath = link.deleted || link.memfd ? null : reachableName(pid, place, originalPath, st, asNamedByProcess);
  return {
    readPath,
    viaProc: true,
    originalPath,
    diskPath,
    deleted: link.deleted,
    memfd: link.memfd,
    foreignRoot: diskPath !== null ? diskPath.startsWith(`${PROC}/`) : !place.sameMountNs,
    identity: identityOf(st),
    nlink: Number(st.nlink),
  };
}

function looksLikePathArg(arg: string): boolean {
  return arg.length > 0 && arg.length < 4096 && !arg.startsWith('-') && !arg.includes('\0') && !arg.includes('\n');
}

function matchOne(state: ScanState, st: ProcStat): ProcessMatch | null {
  const pid = st.pid;
  const target = state.target.sha1;
  let place: ProcessPlace | null = null;
  const where = () => (place ??= placeOf(state, pid));
  // For the " (deleted)" literal-name test: kernel paths are ours in our namespace, the process's otherwise.
  const linkRoot = () => (where().sameMountNs ? '' : `${PROC}/${pid}/root`);

  let exeRaw: string | null = null;
  try {
    exeRaw = readlinkSync(`${PROC}/${pid}/exe`);
  } catch (err) {
    if (!isVanished(err)) throw err;
  }
  const cmdlineParts = readCmdline(pid);
  if (cmdlineParts === null && exeRaw === null) return null;
  const cmdline = (cmdlineParts ?? []).join(' ').slice(0, CMDLINE_REPORT_MAX);
  const base = { pid, ppid: st.ppid, startTime: st.startTime, comm: st.comm, exe: exeRaw, cmdline };

  // 1. The executable itself.
  if (exeRaw !== null) {
    const readPath = `${PROC}/${pid}/exe`;
    const exeStat = statThroughProc(readPath);
    if (exeStat && candidateSha1(state, readPath, true, exeStat, 'exe') === target) {
      const link = interpretLink(exeRaw, linkRoot(), Number(exeStat.nlink));
      return { ...base, matchedBy: 'exe', file: runningFile(pid, where(), readPath, link.path, link, exeStat) };
    }
  }

  // 2. Scripts: arguments that name a regular file, resolved in the process's own cwd and root.
  const args = (cmdlineParts ?? []).slice(1, 1 + (state.opts.maxArgs ?? 8));
  for (const arg of args) {
    if (!looksLikePathArg(arg)) continue;
    const readPath = arg.startsWith('/') ? `${PROC}/${pid}/root${arg}` : `${PROC}/${pid}/cwd/${arg}`;
    const argStat = statThroughProc(readPath);
    if (!argStat || !argStat.isFile()) continue;
    if (candidateSha1(state, readPath, true, argStat, 'script') !== target) continue;
    const noLink = { deleted: false, memfd: false };
    if (arg.startsWith('/')) {
      return { ...base, matchedBy: 'script', file: runningFile(pid, where(), readPath, posix.normalize(arg), noLink, argStat, true) };
    }
    // The cwd link is printed like the exe link: a path from our root in our namespace.
    const cwd = readCwd(pid);
    const original = cwd ? posix.resolve(cwd, arg) : arg;
    return { ...base, matchedBy: 'script', file: runningFile(pid, where(), readPath, original, noLink, argStat) };
  }

  const key = `${pid}:${st.startTime}`;
  if (state.opts.fdsChecked?.has(key)) return null;
  state.opts.fdsChecked?.add(key);

  // 3. Open descriptors (a script deleted after bash opened it is only reachable this way). Reading the link
  //    first is the cheap test: sockets, pipes and anonymous inodes drop out before any stat.
  for (const { fd, target: linkTarget } of readFds(pid)) {
    if (!linkTarget.startsWith('/')) continue;
    const readPath = `${PROC}/${pid}/fd/${fd}`;
    const fdStat = statThroughProc(readPath);
    if (!fdStat || !fdStat.isFile()) continue;
    if (candidateSha1(state, readPath, true, fdStat, 'fd') !== target) continue;
    const link = interpretLink(linkTarget, linkRoot(), Number(fdStat.nlink));
    return { ...base, matchedBy: 'fd', file: runningFile(pid, where(), readPath, link.path, link, fdStat) };
  }

  // 4. File-backed mappings (optional).
  if (state.opts.includeMaps) {
    for (const m of readFileMappings(pid)) {
      const readPath = `${PROC}/${pid}/map_files/${m.range}`;
      const mapStat = statThroughProc(readPath);
      if (!mapStat || !mapStat.isFile()) continue;
      if (candidateSha1(state, readPath, true, mapStat, 'map') !== target) continue;
      const link = interpretLink(m.path, linkRoot(), Number(mapStat.nlink));
      return { ...base, matchedBy: 'map', file: runningFile(pid, where(), readPath, link.path, link, mapStat) };
    }
  }
  return null;
}

/** Scans every process (or `onlyPids`) for the target. Never throws for processes that vanish mid-scan. */
export function matchProcesses(target: MatchTarget, opts: MatchOptions): MatchResult {
  const state: ScanState = {
    target: { sha1: target.sha1.toLowerCase(), size: target.size },
    opts,
    hashed: 0,
    selfMountNs: readMountNamespace('self'),
  };
  const stats = opts.stats ?? snapshotStats();
  const matches: ProcessMatch[] = [];
  for (const st of stats.values()) {
    if (st.kernelThread || st.state === 'Z' || st.state === 'X') continue;
    if (opts.excludePids?.has(st.pid)) continue;
    if (opts.onlyPids && !opts.onlyPids.has(st.pid)) continue;
    let m: ProcessMatch | null;
    try {
      m = matchOne(state, st);
    } catch (err) {
      if (isVanished(err)) continue;
      throw err;
    }
    if (!m) continue;
    matches.push(m);
    if (state.target.size === null) state.target.size = Number(m.file.identity.size);
  }
  return { matches, size: state.target.size, hashed: state.hashed };
}
