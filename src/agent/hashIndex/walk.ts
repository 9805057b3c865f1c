// Walking the configured roots for regular files: never follows symlinks, never enters pseudo filesystems
// (/proc, /sys, /dev, cgroup, ...) or the agent's own state/vault, visits each directory once even through
// bind mounts, and yields to the event loop every few milliseconds so the agent stays responsive.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import type { BigIntStats, Dirent } from 'node:fs';
import { setImmediate as yieldNow } from 'node:timers/promises';
import { posix } from 'node:path';

/** Filesystems that hold no files worth indexing (and where reading can hang or have side effects). */
const PSEUDO_FS = new Set([
  'proc',
  'sysfs',
  'devtmpfs',
  'devpts',
  'cgroup',
  'cgroup2',
  'debugfs',
  'tracefs',
  'securityfs',
  'pstore',
  'bpf',
  'fusectl',
  'configfs',
  'mqueue',
  'hugetlbfs',
  'autofs',
  'binfmt_misc',
  'nsfs',
  'efivarfs',
  'rpc_pipefs',
  'nfsd',
]);

/** Top-level directories skipped when met during a walk (they may still be given as roots, e.g. /dev/shm). */
const SKIP_DIRS = ['/proc', '/sys', '/dev'];

/** Mount points of pseudo filesystems, read from /proc/self/mountinfo (octal escapes decoded). */
export function pseudoMountPoints(): Set<string> {
  const out = new Set<string>();
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0] ?? '';
    const mountPoint = line.slice(0, sep).split(' ')[4];
    if (!mountPoint || !PSEUDO_FS.has(fstype)) continue;
    out.add(mountPoint.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

/** Device numbers of the pseudo filesystems: a root inside one (say /sys/kernel) is skipped too. */
function pseudoDevices(mountPoints: Set<string>): Set<bigint> {
  const out = new Set<bigint>();
  for (const m of mountPoints) {
    try {
      out.add(lstatSync(m, { bigint: true }).dev);
    } catch {
      // not reachable from here
    }
  }
  return out;
}

export function isUnder(path: string, prefix: string): boolean {
  return path === prefix || prefix === '/' || path.startsWith(prefix.endsWith('/') ? prefix : prefix + '/');
}

export interface WalkOptions {
  roots: readonly string[];
  /** Never entered: the vault, the state directory, anything else the caller names. */
  skipPaths?: readonly string[];
  /** Only directories on this device are descended into (hard-link sibling search). */
  device?: bigint;
  /** Yield to the event loop after this much continuous work. */
  sliceMs?: number;
  signal?: AbortSignal;
}

export interface WalkReport {
  files: number;
  directories: number;
  errors: number;
}

/** Calls `visit` for every regular file under the roots with its lstat. `visit` may be async. */
export async function walkFiles(
  opts: WalkOptions,
  visit: (path: string, st: BigIntStats) => void | Promise<void>,
): Promise<WalkReport> {
  const pseudo = pseudoMountPoints();
  const pseudoDevs = pseudoDevices(pseudo);
  const skip = [...(opts.skipPaths ?? [])];
  const sliceMs = opts.sliceMs ?? 15;
  const seenDirs = new Set<string>();
  const report: WalkReport = { files: 0, directories: 0, errors: 0 };
  let sliceStart = performance.now();
  const roots = [...new Set(opts.roots.map((r) => posix.normalize(r)))];

  const shouldSkipDir = (path: string, isRoot: boolean): boolean => {
    if (pseudo.has(path)) return true;
    if (skip.some((s) => isUnder(path, s))) return true;
    if (!isRoot && SKIP_DIRS.includes(path)) return true;
    return false;
  };

  const stack: { path: string; isRoot: boolean }[] = roots.reverse().map((path) => ({ path, isRoot: true }));
  while (stack.length > 0) {
    opts.signal?.throwIfAborted();
    const { path: dir, isRoot } = stack.pop()!;
    if (shouldSkipDir(dir, isRoot)) continue;
    let st: BigIntStats;
    try {
      st = lstatSync(dir, { bigint: true });
    } catch {
      report.errors++;
      continue;
    }
    if (st.isFile() && isRoot) {
      report.files++;
      await visit(dir, st);
      continue;
    }
    if (!st.isDirectory()) continue;
    if (pseudoDevs.has(st.dev)) continue;
    if (opts.device !== undefined && st.dev !== opts.device && !isRoot) continue;
    const dirKey = `${st.dev}:${st.ino}`;
    if (seenDirs.has(dirKey)) continue;
    seenDirs.add(dirKey);
    report.directories++;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      report.errors++;
      continue;
    }
    const subdirs: string[] = [];
    for (const entry of entries) {
      const child = dir === '/' ? `/${entry.name}` : `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        subdirs.push(child);
        continue;
      }
      // Symlinks, sockets, FIFOs and devices are never followed nor read. DT_UNKNOWN falls through to lstat.
      if (!entry.isFile() && !isUnknown(entry)) continue;
      let fst: BigIntStats;
      try {
        fst = lstatSync(child, { bigint: true });
      } catch {
        report.errors++;
        continue;
      }
      if (fst.isDirectory()) {
        subdirs.push(child);
        continue;
      }
      if (!fst.isFile()) continue;
      if (skip.some((s) => isUnder(child, s))) continue;
      report.files++;
      await visit(child, fst);
      if (performance.now() - sliceStart > sliceMs) {
        await yieldNow();
        sliceStart = performance.now();
      }
    }
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push({ path: subdirs[i]!, isRoot: false });
    if (performance.now() - sliceStart > sliceMs) {
      await yieldNow();
      sliceStart = performance.now();
    }
  }
  return report;
}

/** A directory entry whose type the filesystem did not report (DT_UNKNOWN): it needs an lstat. */
function isUnknown(entry: Dirent): boolean {
  return (
    !entry.isFile() &&
    !entry.isDirectory() &&
    !entry.isSymbolicLink() &&
    !entry.isBlockDevice() &&
    !entry.isCharacterDevice() &&
    !entry.isFIFO() &&
    !entry.isSocket()
  );
}
