// Files the agent refuses to stop or quarantine: the Linux counterparts of MDE's "signed by Microsoft or a
// trusted publisher" rule. A file is protected when the OS package manager owns it (dpkg or rpm), when it is
// the agent itself or its runtime (the node binary, the agent's install tree, its state), or when a
// configured allow list names its SHA-1 or a path prefix. Protection is decided per content: if any copy of a
// SHA-1 is protected, the whole action is refused before anything is killed.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { posix } from 'node:path';
import { hashFile, identityKey, identityOf } from './hashIndex/hashFile.ts';
import { isUnder } from './hashIndex/walk.ts';

export type ProtectionKind = 'package' | 'agent' | 'allowHash' | 'allowPath';

export type ProtectionVerdict = { protected: false } | { protected: true; kind: ProtectionKind; reason: string };

export interface ProtectionOptions {
  /** Trusted SHA-1s: never quarantined. */
  allowSha1?: readonly string[];
  /** Trusted path prefixes (directories or files). */
  allowPathPrefixes?: readonly string[];
  /** More paths that belong to the agent (its state directory, vault). */
  agentPaths?: readonly string[];
  /** Consult dpkg/rpm ownership (default true). */
  packageOwnership?: boolean;
  /** Where dpkg keeps its file lists (default /var/lib/dpkg). */
  dpkgDir?: string;
}

const NOT_PROTECTED: ProtectionVerdict = { protected: false };

/**
 * The project's install tree (sources, bundle, node_modules, the bin): the nearest ancestor of this module that
 * holds Tourniquet's package.json. This module runs from src/agent/ or from the dist/ bundle, so no fixed depth.
 */
function agentInstallDir(): string {
  let dir = posix.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(posix.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'tourniquet') break;
    } catch {
      // no package.json here
    }
    const up = posix.dirname(dir);
    if (up === dir) {
      dir = posix.dirname(fileURLToPath(import.meta.url));
      break;
    }
    dir = up;
  }
  try {
    return realpathSync(dir);
  } catch {
    return posix.normalize(dir);
  }
}

function safeRealpath(p: string): string | null {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
}

/**
 * Other spellings of a path through top-level directory symlinks: on merged-/usr systems dpkg lists
 * /bin/sleep while the file's real path is /usr/bin/sleep.
 */
function topLevelAliases(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let names: string[] = [];
  try {
    names = readdirSync('/');
  } catch {
    return out;
  }
  for (const name of names) {
    const link = `/${name}`;
    try {
      if (!lstatSync(link).isSymbolicLink()) continue;
      const target = realpathSync(link);
      if (!statSync(target).isDirectory()) continue;
      const list = out.get(target) ?? [];
      list.push(link);
      out.set(target, list);
    } catch {
      // dangling or unreadable: no alias
    }
  }
  return out;
}

/**
 * Which dpkg package owns a path. The lists (~100k+ paths) are read by a short-lived child process that returns
 * only a sorted array of 52-bit path digests and their package numbers: the agent keeps ~1.5 MB instead of a
 * string map, and none of the reading's transient garbage stays in its resident memory (measured ~12 MB).
 */
class DpkgOwnership {
  private keys: Float64Array | null = null;
  private pkgOf: Uint32Array = new Uint32Array(0);
  private packages: string[] = [];
  private stamp = '';

  constructor(private readonly dir: string) {}

  available(): boolean {
    return existsSync(posix.join(this.dir, 'info'));
  }

  /** The dpkg package owning `path`, re-reading the lists when dpkg has changed them. */
  owner(path: string): string | null {
    this.refreshIfChanged();
    const keys = this.keys;
    if (!keys) return null;
    const k = pathKey(path);
    let lo = 0;
    let hi = keys.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = keys[mid]!;
      if (v === k) return this.packages[this.pkgOf[mid]!] ?? null;
      if (v < k) lo = mid + 1;
      else hi = mid - 1;
    }
    return null;
  }

  private currentStamp(): string {
    const parts: string[] = [];
    for (const f of ['info', 'status']) {
      try {
        const st = statSync(posix.join(this.dir, f));
        parts.push(`${st.mtimeMs}:${st.size}`);
      } catch {
        parts.push('-');
      }
    }
    return parts.join('|');
  }

  private refreshIfChanged(): void {
    const stamp = this.currentStamp();
    if (this.keys && stamp === this.stamp) return;
    const out = execFileSync(process.execPath, ['-e', DPKG_SCAN_SCRIPT, posix.join(this.dir, 'info')], {
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 60_000,
    });
    const headLen = out.readUInt32LE(0);
    const count = out.readUInt32LE(4);
    this.packages = JSON.parse(out.subarray(8, 8 + headLen).toString('utf8')) as string[];
    const keysAt = 8 + headLen;
    // Copies: the child's output buffer is not 8-byte aligned for a Float64Array view.
    this.keys = new Float64Array(out.buffer.slice(out.byteOffset + keysAt, out.byteOffset + keysAt + count * 8));
    this.pkgOf = new Uint32Array(
      out.buffer.slice(out.byteOffset + keysAt + count * 8, out.byteOffset + keysAt + count * 12),
    );
    this.stamp = stamp;
  }
}

/**
 * A 52-bit FNV-1a digest of a path. dpkg lists ~100k+ paths; keyed by number instead of string the ownership map
 * takes a few MB instead of ~25 MB of the agent's idle memory. A false match needs a 52-bit collision with one of
 * the listed paths (odds ~1e-10 per look-up) and would only refuse, never quarantine wrongly.
 */
function pathKey(path: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0) * 0x100000 + ((b >>> 0) & 0xfffff);
}

/** Runs in the child (plain JS, self-contained): reads every .list, prints [headLen, count, names, keys, pkgs]. */
const DPKG_SCAN_SCRIPT = `
const fs = require('fs'), path = require('path');
const pathKey = ${pathKey.toString()};
const info = process.argv[1];
let names = [];
try { names = fs.readdirSync(info); } catch {}
const packages = [];
const owner = new Map();
for (const name of names) {
  if (!name.endsWith('.list')) continue;
  let text;
  try { text = fs.readFileSync(path.join(info, name), 'utf8'); } catch { continue; }
  const pkg = packages.push(name.slice(0, -5)) - 1;
  for (let s = 0; s < text.length; ) {
    let e = text.indexOf('\\n', s);
    if (e < 0) e = text.length;
    if (text.charCodeAt(s) === 47) { const k = pathKey(text.slice(s, e)); if (!owner.has(k)) owner.set(k, pkg); }
    s = e + 1;
  }
}
const keys = Float64Array.from(owner.keys()).sort();
const pkgs = Uint32Array.from(keys, (k) => owner.get(k));
const head = Buffer.from(JSON.stringify(packages));
const lens = Buffer.alloc(8);
lens.writeUInt32LE(head.length, 0);
lens.writeUInt32LE(keys.length, 4);
process.stdout.write(Buffer.concat([lens, head, Buffer.from(keys.buffer), Buffer.from(pkgs.buffer)]));
`;

function rpmOwner(path: string): string | null {
  if (!existsSync('/var/lib/rpm') && !existsSync('/usr/lib/sysimage/rpm')) return null;
  const rpm = ['/usr/bin/rpm', '/bin/rpm'].find((p) => existsSync(p));
  if (!rpm) return null;
  try {
    const out = execFileSync(rpm, ['-qf', '--', path], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    const pkg = out.trim().split('\n')[0] ?? '';
    return pkg && !/not owned/i.test(pkg) ? pkg : null;
  } catch {
    return null;
  }
}

export class ProtectionPolicy {
  private readonly allowSha1: Set<string>;
  private readonly allowPaths: string[];
  private readonly agentPaths: string[];
  private readonly packageOwnership: boolean;
  private readonly dpkg: DpkgOwnership;
  private readonly aliases = topLevelAliases();
  private runtimeHash: { key: string; sha1: string; size: number } | null = null;

  constructor(opts: ProtectionOptions = {}) {
    this.allowSha1 = new Set((opts.allowSha1 ?? []).map((h) => h.toLowerCase()));
    this.allowPaths = (opts.allowPathPrefixes ?? []).map((p) => posix.normalize(p));
    const runtime = [process.execPath, safeRealpath(process.execPath), agentInstallDir(), ...(opts.agentPaths ?? [])];
    this.agentPaths = [...new Set(runtime.filter((p): p is string => !!p).flatMap((p) => [posix.normalize(p), safeRealpath(p) ?? p]))];
    this.packageOwnership = opts.packageOwnership ?? true;
    this.dpkg = new DpkgOwnership(opts.dpkgDir ?? '/var/lib/dpkg');
  }

  /** Loads the package database now, so the first action does not pay for it. */
  warm(): void {
    if (this.packageOwnership && this.dpkg.available()) this.dpkg.owner('/');
  }

  /** Protection that depends only on the content: allow-listed hashes and the agent's own runtime binary. */
  checkHash(sha1: string, size: number | null): ProtectionVerdict {
    const h = sha1.toLowerCase();
    if (this.allowSha1.has(h)) return { protected: true, kind: 'allowHash', reason: `SHA-1 ${h} is on the trusted allow list` };
    const runtime = this.runtimeSha1(size);
    if (runtime && runtime === h) {
      return { protected: true, kind: 'agent', reason: `SHA-1 ${h} is the agent's own runtime (${process.execPath})` };
    }
    return NOT_PROTECTED;
  }

  /** Protection that depends on where a copy lives. `path` is the name as its own namespace sees it. */
  checkPath(path: string): ProtectionVerdict {
    const names = this.spellings(path);
    for (const n of names) {
      const agent = this.agentPaths.find((a) => isUnder(n, a));
      if (agent) return { protected: true, kind: 'agent', reason: `${path} belongs to the Tourniquet agent or its runtime (${agent})` };
    }
    for (const n of names) {
      const allow = this.allowPaths.find((a) => isUnder(n, a));
      if (allow) return { protected: true, kind: 'allowPath', reason: `${path} is under the trusted path ${allow}` };
    }
    if (this.packageOwnership) {
      if (this.dpkg.available()) {
        for (const n of names) {
          const pkg = this.dpkg.owner(n);
          if (pkg) return { protected: true, kind: 'package', reason: `${path} is owned by the OS package ${pkg} (dpkg)` };
        }
      }
      const pkg = rpmOwner(path);
      if (pkg) return { protected: true, kind: 'package', reason: `${path} is owned by the OS package ${pkg} (rpm)` };
    }
    return NOT_PROTECTED;
  }

  /** The path, its real path, and their spellings through top-level symlinks (/bin → /usr/bin). */
  private spellings(path: string): string[] {
    const out = new Set<string>([posix.normalize(path)]);
    const real = safeRealpath(path);
    if (real) out.add(real);
    for (const p of [...out]) {
      for (const [target, links] of this.aliases) {
        if (!p.startsWith(target + '/')) continue;
        for (const link of links) out.add(link + p.slice(target.length));
      }
    }
    return [...out];
  }

  private runtimeSha1(size: number | null): string | null {
    try {
      const st = statSync(process.execPath, { bigint: true });
      if (size !== null && Number(st.size) !== size) return null;
      const key = identityKey(identityOf(st));
      if (this.runtimeHash?.key !== key) {
        const h = hashFile(process.execPath, { noFollow: false, sha256: false });
        this.runtimeHash = { key, sha1: h.sha1, size: h.size };
      }
      return this.runtimeHash.sha1;
    } catch {
      return null;
    }
  }
}
