// What the agent does when it receives StopAndQuarantineFile (issue 4 §2) or RestoreQuarantinedFile:
//
//   plan:    find every process running the SHA-1 and every copy of it (running instances, the hash index,
//            a size-prefiltered walk when the index may be stale, hard-link siblings), then check protection
//            — a protected file is refused before anything is touched;
//   act:     freeze the process trees; capture content that has no name on disk (deleted or memfd binaries)
//            or lives in another mount namespace while its processes are still there; kill and verify; catch
//            respawns for a short window; quarantine every on-disk copy; sweep once more;
//   report:  per process and per copy, Succeeded only when every instance is dead and every copy is in the vault.
import { lstatSync, realpathSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import type { ActionResultDetail, FileItem, ProcessItem } from '../protocol/v1.ts';
import { HRESULT } from '../core/actions.ts';
import { isSha1 } from '../core/validation.ts';
import type { HashCache } from './hashIndex/hashCache.ts';
import type { FileIdentity } from './hashIndex/hashFile.ts';
import { hashFile, identityOf, sameIdentity } from './hashIndex/hashFile.ts';
import type { HashIndex } from './hashIndex/hashIndex.ts';
import type { ProcessMatch } from './platform/linux/matchProcesses.ts';
import { matchProcesses } from './platform/linux/matchProcesses.ts';
import { TreeKiller } from './platform/linux/freezeAndKill.ts';
import { fitResult } from './fitResult.ts';
import type { TreeMember } from './platform/linux/freezeAndKill.ts';
import { readMountNamespace } from './platform/linux/procfs.ts';
import type { ProtectionPolicy, ProtectionVerdict } from './protection.ts';
import type { QuarantineOutcome, QuarantineStep, Vault } from './vault/vault.ts';
import { VaultError } from './vault/vault.ts';

export interface ExecutorDeps {
  vault: Vault;
  index: HashIndex | null;
  protection: ProtectionPolicy;
  hashCache: HashCache;
  /** How long to keep re-scanning after the kill for processes a supervisor starts again (default 300 ms). */
  respawnWindowMs?: number;
  /** Also match file-backed mappings (preloaded libraries). */
  includeMappedFiles?: boolean;
  /** Walk the index roots for files of the target's size: never, when the index may be stale (default), always. */
  sizeScan?: 'never' | 'whenStale' | 'always';
  /** The index counts as stale when its last full scan is older than this (default 10 min). */
  staleAfterMs?: number;
  /** More pids never to signal. */
  forbiddenPids?: readonly number[];
  /** Observes the vault's quarantine steps (progress reporting; crash tests). */
  onQuarantineStep?: (step: QuarantineStep) => void;
  onProgress?: (message: string) => void;
}

export interface ExecutionResult {
  outcome: 'Succeeded' | 'Failed';
  errorHResult: number;
  reason: string | null;
  detail: ActionResultDetail;
  /** Milliseconds per phase, for logs and benchmarks. */
  timings: Record<string, number>;
  /** Files read to compute a hash while looking for processes (cache and index hits excluded). */
  filesHashed: number;
}

export interface StopAndQuarantineRequest {
  sha1: string;
  actionId: string | null;
  signal?: AbortSignal;
}

export interface RestoreRequest {
  itemId: string;
  destinationPath?: string;
  overwrite?: boolean;
}

/** One file content instance (one inode) and every way to reach it. */
export interface FileCopy {
  identity: FileIdentity;
  nlink: number;
  /** Names the agent can remove → the path reported for each (differs for other mount namespaces). */
  names: Map<string, string>;
  /** A /proc link to read the content through when it has no name (deleted, memfd) or only a foreign one. */
  live: { path: string; pid: number; originalPath: string } | null;
  deleted: boolean;
  memfd: boolean;
  namespace: string | null;
  pids: Set<number>;
}

export interface Plan {
  sha1: string;
  filesHashed: number;
  size: number | null;
  matches: ProcessMatch[];
  copies: FileCopy[];
  protection: { verdict: ProtectionVerdict & { protected: true }; path: string | null } | null;
  /** Processes whose descriptors the plan already examined (re-scans skip them). */
  fdsChecked: Set<string>;
}

const copyKey = (id: FileIdentity) => `${id.dev}:${id.ino}`;

let queue: Promise<unknown> = Promise.resolve();

/** Actions run one at a time: two quarantines racing over the same processes would report each other's work. */
function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  queue = run.catch(() => undefined);
  return run;
}

function lstatOrNull(path: string): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true });
  } catch {
    return null;
  }
}

function addCopy(copies: Map<string, FileCopy>, identity: FileIdentity, nlink: number): FileCopy {
  const key = copyKey(identity);
  let c = copies.get(key);
  if (!c) {
    c = { identity, nlink, names: new Map(), live: null, deleted: false, memfd: false, namespace: null, pids: new Set() };
    copies.set(key, c);
  }
  return c;
}

/** Adds what a matched process tells us about copies: its on-disk name, or a live link to its bytes. */
function addFromMatch(copies: Map<string, FileCopy>, m: ProcessMatch, selfNs: string | null): void {
  const f = m.file;
  const c = addCopy(copies, f.identity, f.nlink);
  c.pids.add(m.pid);
  if (f.foreignRoot && !c.namespace) {
    const ns = readMountNamespace(m.pid);
    c.namespace = `pid ${m.pid} ${ns ?? 'root'}${ns === selfNs ? ' (chroot)' : ''}`;
  }
  if (f.diskPath) {
    let access = f.diskPath;
    if (!f.foreignRoot) {
      try {
        access = realpathSync(f.diskPath);
      } catch {
        access = f.diskPath;
      }
    }
    const st = lstatOrNull(access);
    if (st && st.isFile() && st.dev === f.identity.dev && st.ino === f.identity.ino) {
      c.names.set(access, f.foreignRoot ? f.originalPath : access);
      return;
    }
  }
  // No reachable name is this inode: keep a live link while the process exists.
  c.deleted ||= f.deleted;
  c.memfd ||= f.memfd;
  c.live ??= { path: f.readPath, pid: m.pid, originalPath: f.originalPath };
}

/** Finds processes and copies and decides protection. Changes nothing. */
export async function planStopAndQuarantine(sha1In: string, deps: ExecutorDeps, timings: Record<string, number> = {}): Promise<Plan> {
  const sha1 = sha1In.toLowerCase();
  const copies = new Map<string, FileCopy>();
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = Math.round((now - t) * 100) / 100;
    t = now;
  };

  // 1. The index: names known to hold this SHA-1, trusted only while their identity is unchanged.
  let size: number | null = null;
  for (const row of deps.index?.lookupSha1(sha1) ?? []) {
    const st = lstatOrNull(row.path);
    const rowId: FileIdentity = { dev: row.dev, ino: row.ino, size: BigInt(row.size), mtimeNs: row.mtimeNs, ctimeNs: row.ctimeNs };
    if (!st || !st.isFile()) {
      deps.index?.forget(row.path);
      continue;
    }
    let ok = sameIdentity(identityOf(st), rowId);
    if (!ok && Number(st.size) === row.size) {
      try {
        const h = hashFile(row.path);
        deps.index?.record(row.path, h.stat, h);
        ok = h.sha1 === sha1;
      } catch {
        ok = false;
      }
    }
    if (!ok) continue;
    size = row.size;
    addCopy(copies, identityOf(st), Number(st.nlink)).names.set(row.path, row.path);
  }
  lap('index');

  // 2. Running processes.
  const self = new Set([process.pid]);
  const fdsChecked = new Set<string>();
  const scan = matchProcesses(
    { sha1, size },
    { cache: deps.hashCache, includeMaps: deps.includeMappedFiles, excludePids: self, fdsChecked },
  );
  size = scan.size ?? size;
  const selfNs = readMountNamespace('self');
  for (const m of scan.matches) addFromMatch(copies, m, selfNs);
  lap('processes');

  // 3. When the index may be stale: hash every file of exactly this size under the roots.
  const index = deps.index;
  if (index) {
    const last = index.lastScanCompletedAt();
    const stale = last === null || Date.now() - last > (deps.staleAfterMs ?? 10 * 60_000);
    const mode = deps.sizeScan ?? 'whenStale';
    if (mode === 'always' || (mode === 'whenStale' && stale)) {
      if (size !== null) {
        for (const f of await index.findCandidatesBySize(size, sha1)) {
          const st = lstatOrNull(f.path);
          if (st && st.isFile() && st.dev === f.dev && st.ino === f.ino) addCopy(copies, identityOf(st), Number(st.nlink)).names.set(f.path, f.path);
        }
      } else if (copies.size === 0) {
        // Nothing runs it and the index never saw it: bring the index up to date once, then ask again.
        await index.scan();
        for (const row of index.lookupSha1(sha1)) {
          const st = lstatOrNull(row.path);
          if (st && st.isFile() && st.dev === row.dev && st.ino === row.ino) {
            size = row.size;
            addCopy(copies, identityOf(st), Number(st.nlink)).names.set(row.path, row.path);
          }
        }
      }
    }
  }
  lap('sizeScan');

  // 4. Hard-link siblings of every copy that has more links than names we know.
  if (index) {
    for (const c of copies.values()) {
      if (c.namespace || c.nlink <= c.names.size) continue;
      for (const p of await index.findInodePaths(c.identity.dev, c.identity.ino, c.nlink)) c.names.set(p, p);
    }
  }
  lap('hardLinks');

  // 5. Protection, before anything is touched.
  let protection: Plan['protection'] = null;
  const byHash = deps.protection.checkHash(sha1, size);
  if (byHash.protected) protection = { verdict: byHash, path: null };
  for (const c of copies.values()) {
    if (protection) break;
    const shown = [...c.names.values()];
    if (c.live && !c.memfd) shown.push(c.live.originalPath);
    for (const p of shown) {
      const v = deps.protection.checkPath(p);
      if (v.protected) {
        protection = { verdict: v, path: p };
        break;
      }
    }
  }
  lap('protection');
  return { sha1, filesHashed: scan.hashed, size, matches: scan.matches, copies: [...copies.values()], protection, fdsChecked };
}

function processItem(m: TreeMember): ProcessItem {
  const killed = m.state === 'killed' || m.state === 'gone';
  const item: ProcessItem = {
    pid: m.pid,
    exe: m.exe,
    cmdline: m.cmdline,
    matchedBy: m.matchedBy,
    parentPid: m.ppid,
    killed,
  };
  if (m.respawned) item.respawned = true;
  if (!killed) item.error = m.error ?? `not stopped (${m.state})`;
  else if (m.error) item.error = m.error;
  return item;
}

function summarize(processes: ProcessItem[], files: FileItem[]): string | null {
  const parts: string[] = [];
  const alive = processes.filter((p) => !p.killed);
  if (alive.length > 0) {
    parts.push(
      `${alive.length} of ${processes.length} process(es) not stopped: ` +
        alive
          .slice(0, 5)
          .map((p) => `pid ${p.pid} (${p.error ?? 'alive'})`)
          .join('; '),
    );
  }
  const notQ = files.filter((f) => f.status !== 'quarantined');
  if (notQ.length > 0) {
    parts.push(
      `${notQ.length} of ${files.length} copy(ies) not quarantined: ` +
        notQ
          .slice(0, 5)
          .map((f) => `${f.path} (${f.reason ?? f.status})`)
          .join('; '),
    );
  }
  return parts.length > 0 ? parts.join('. ') : null;
}

/** StopAndQuarantineFile on this device. Never throws for expected failures: they become a Failed result. */
export function executeStopAndQuarantine(req: StopAndQuarantineRequest, deps: ExecutorDeps): Promise<ExecutionResult> {
  return serialized(() => stopAndQuarantine(req, deps));
}

async function stopAndQuarantine(req: StopAndQuarantineRequest, deps: ExecutorDeps): Promise<ExecutionResult> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const progress = deps.onProgress ?? (() => {});
  let filesHashed = 0;
  const done = (outcome: 'Succeeded' | 'Failed', errorHResult: number, reason: string | null, processes: ProcessItem[], files: FileItem[]) => {
    timings.total = Math.round((performance.now() - t0) * 100) / 100;
    const fitted = fitResult(reason, { processes, files, durationMs: Math.round(performance.now() - t0) });
    return { outcome, errorHResult, ...fitted, timings, filesHashed };
  };
  if (!isSha1(req.sha1)) return done('Failed', HRESULT.fail, `invalid SHA-1: ${String(req.sha1)}`, [], []);
  const sha1 = req.sha1.toLowerCase();

  let plan: Plan;
  try {
    plan = await planStopAndQuarantine(sha1, deps, timings);
    filesHashed += plan.filesHashed;
  } catch (err) {
    return done('Failed', HRESULT.fail, `looking for the file failed, nothing was changed: ${err instanceof Error ? err.message : String(err)}`, [], []);
  }
  const sizeOf = (c: FileCopy) => Number(c.identity.size);

  if (plan.protection) {
    const reason = `protected file, nothing was stopped or quarantined: ${plan.protection.verdict.reason}`;
    const processes: ProcessItem[] = plan.matches.map((m) => ({
      pid: m.pid,
      exe: m.exe,
      cmdline: m.cmdline,
      matchedBy: m.matchedBy,
      parentPid: m.ppid,
      killed: false,
      error: 'not stopped: the file is protected',
    }));
    const files: FileItem[] = [];
    for (const c of plan.copies) {
      const shown = [...c.names.values()];
      if (shown.length === 0 && c.live) shown.push(c.live.originalPath);
      for (const p of shown) {
        const own = deps.protection.checkPath(p);
        files.push({
          path: p,
          device: Number(c.identity.dev),
          inode: Number(c.identity.ino),
          size: sizeOf(c),
          sha1,
          status: 'protected',
          reason: own.protected ? own.reason : plan.protection.verdict.reason,
        });
      }
    }
    return done('Failed', HRESULT.protectedFile, reason, processes, files);
  }

  if (plan.matches.length === 0 && plan.copies.length === 0) {
    return done('Failed', HRESULT.fileNotFound, `Sha1 ${sha1} was not found on this device`, [], []);
  }
  if (req.signal?.aborted) return done('Failed', HRESULT.fail, 'cancelled before anything was changed', [], []);

  const files: FileItem[] = [];
  const quarantined = new Set<string>();
  const killer = new TreeKiller({ forbiddenPids: deps.forbiddenPids });
  let knownSize = plan.size;
  const rescan = () => {
    const r = matchProcesses(
      { sha1, size: knownSize },
      { cache: deps.hashCache, includeMaps: deps.includeMappedFiles, excludePids: new Set([process.pid]), fdsChecked: plan.fdsChecked },
    );
    knownSize = r.size ?? knownSize;
    filesHashed += r.hashed;
    return r.matches;
  };
  const copies = new Map(plan.copies.map((c) => [copyKey(c.identity), c]));
  const selfNs = readMountNamespace('self');

  const quarantineCopy = (c: FileCopy, killedPids: number[]) => {
    const key = copyKey(c.identity);
    if (quarantined.has(key)) return;
    quarantined.add(key);
    const names = [...c.names.keys()];
    const source = names[0] ?? c.live?.path;
    if (!source) return;
    const originalPath = names[0] ? c.names.get(names[0])! : c.live!.originalPath;
    let outcome: QuarantineOutcome;
    try {
      outcome = deps.vault.quarantine({
        source,
        sourceViaProc: names.length === 0,
        paths: names,
        originalPath,
        expectedSha1: sha1,
        actionId: req.actionId,
        killedPids,
        deletedOnDisk: names.length === 0 && c.deleted,
        memfd: c.memfd,
        namespace: c.namespace,
        onStep: deps.onQuarantineStep,
      });
    } catch (err) {
      const error = `quarantine failed: ${err instanceof Error ? err.message : String(err)}`;
      outcome = { itemId: null, sha1: null, sha256: null, size: 0, device: null, inode: null, linksLeft: null, paths: names.map((p) => ({ path: p, removed: false, reason: error })), error };
    }
    const base = { device: Number(c.identity.dev), inode: Number(c.identity.ino), size: sizeOf(c), sha1 };
    if (names.length === 0) {
      const how = c.memfd ? 'fileless (memfd) executable' : 'deleted on disk while running';
      files.push({
        ...base,
        path: originalPath,
        status: outcome.itemId ? 'quarantined' : 'failed',
        reason: outcome.itemId ? `${how}; content captured from ${source}` : outcome.error ?? 'not quarantined',
        ...(outcome.itemId ? { vaultItemId: outcome.itemId } : {}),
      });
      return;
    }
    for (const p of outcome.paths) {
      const shown = c.names.get(p.path) ?? p.path;
      const item: FileItem = { ...base, path: shown, status: p.removed && outcome.itemId ? 'quarantined' : 'failed' };
      if (outcome.itemId) item.vaultItemId = outcome.itemId;
      const viaProc = p.path.startsWith('/proc/');
      const notes = [p.reason, viaProc && c.namespace ? `in mount namespace of ${c.namespace}` : undefined].filter(Boolean);
      if (item.status === 'failed') notes.unshift(outcome.error);
      const text = [...new Set(notes.filter(Boolean))].join('; ');
      if (text) item.reason = text;
      files.push(item);
      if (p.removed) deps.index?.forget(p.path);
    }
    if (outcome.itemId && outcome.linksLeft !== null && outcome.linksLeft > 0) {
      files.push({
        ...base,
        path: `(inode ${c.identity.ino} on device ${c.identity.dev})`,
        status: 'failed',
        reason: `${outcome.linksLeft} hard link(s) outside the indexed roots still hold the content`,
      });
    }
  };

  const act = async (): Promise<void> => {
    // Freeze every matching process tree; nothing in it can fork or exec from here on.
    let t = performance.now();
    progress(`freezing ${plan.matches.length} process(es)`);
    await killer.freeze(plan.matches, { rescan });
    timings.freeze = Math.round((performance.now() - t) * 100) / 100;

    // Content reachable only through the running processes is captured now, before the kill destroys it.
    t = performance.now();
    const pidsOf = (c: FileCopy) => [...c.pids];
    for (const c of copies.values()) {
      if ((c.names.size === 0 && c.live) || c.namespace) quarantineCopy(c, pidsOf(c));
    }
    timings.capture = Math.round((performance.now() - t) * 100) / 100;

    t = performance.now();
    await killer.killAll();
    timings.kill = Math.round((performance.now() - t) * 100) / 100;

    // A supervisor may start the file again: catch it, and learn any new copy it ran from.
    t = performance.now();
    const respawnRescan = () => {
      const fresh = rescan();
      for (const m of fresh) if (!killer.has(m.pid, m.startTime)) addFromMatch(copies, m, selfNs);
      return fresh;
    };
    await killer.catchRespawns(deps.respawnWindowMs ?? 300, respawnRescan);
    timings.respawn = Math.round((performance.now() - t) * 100) / 100;

    t = performance.now();
    const killedPids = killer
      .list()
      .filter((m) => m.state === 'killed')
      .map((m) => m.pid);
    for (const c of copies.values()) {
      if (c.names.size > 0 || c.live) quarantineCopy(c, killedPids);
    }
    timings.quarantine = Math.round((performance.now() - t) * 100) / 100;

    // The names are gone from disk now; one last sweep catches anything started in between.
    t = performance.now();
    const survivors = rescan().filter((m) => !killer.has(m.pid, m.startTime));
    if (survivors.length > 0) {
      await killer.freeze(survivors, { respawned: true });
      await killer.killAll();
    }
    timings.sweep = Math.round((performance.now() - t) * 100) / 100;
  };

  try {
    await act();
  } catch (err) {
    // Whatever broke, nothing may stay frozen forever (the decision to kill was made), and the caller gets a
    // result that says what was done before it broke.
    try {
      await killer.killAll();
    } catch {
      // reported through each member's state below
    }
    const processes = killer.list().map(processItem);
    const message = `internal error during the action: ${err instanceof Error ? err.message : String(err)}`;
    return done('Failed', HRESULT.fail, [message, summarize(processes, files)].filter(Boolean).join('. '), processes, files);
  }
  const processes = killer.list().map(processItem);
  const reason = summarize(processes, files);
  progress(reason ?? 'all processes stopped and all copies quarantined');
  return reason === null ? done('Succeeded', HRESULT.ok, null, processes, files) : done('Failed', HRESULT.fail, reason, processes, files);
}

/** RestoreQuarantinedFile: put a vault item back, verified by hash, with its owner, mode and times. */
export function executeRestore(req: RestoreRequest, deps: Pick<ExecutorDeps, 'vault' | 'index'>): Promise<ExecutionResult> {
  return serialized(async () => {
    const t0 = performance.now();
    const done = (outcome: 'Succeeded' | 'Failed', errorHResult: number, reason: string | null, files: FileItem[]): ExecutionResult => ({
      outcome,
      errorHResult,
      ...fitResult(reason, { processes: [], files, durationMs: Math.round(performance.now() - t0) }),
      timings: { total: Math.round((performance.now() - t0) * 100) / 100 },
      filesHashed: 0,
    });
    try {
      const meta = deps.vault.get(req.itemId);
      const r = deps.vault.restore(req.itemId, { destinationPath: req.destinationPath, overwrite: req.overwrite });
      const files: FileItem[] = [r.path, ...r.links].map((path) => ({
        path,
        device: null,
        inode: null,
        size: meta.size,
        sha1: meta.sha1,
        status: 'restored',
        vaultItemId: r.itemId,
        ...(r.notes.length > 0 ? { reason: r.notes.join('; ') } : {}),
      }));
      for (const f of files) {
        try {
          const h = hashFile(f.path);
          deps.index?.record(f.path, h.stat, h);
          f.device = Number(h.identity.dev);
          f.inode = Number(h.identity.ino);
        } catch {
          // restored but not readable back: still restored, reported without inode
        }
      }
      return done('Succeeded', HRESULT.ok, null, files);
    } catch (err) {
      const code = err instanceof VaultError ? err.code : 'Io';
      const hr = code === 'NotFound' ? HRESULT.fileNotFound : HRESULT.fail;
      return done('Failed', hr, err instanceof Error ? err.message : String(err), []);
    }
  });
}
