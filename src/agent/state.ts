// The agent's state directory and its configuration file.
//
//   <stateDir>/              0700, owned by the agent's user (root)
//     agent.json             0600, configuration (below); must not be writable by anyone else
//     vault.key              0600, device vault key (vault/vaultKey.ts)
//     vault/                 0700, quarantine vault (unless vaultDir points elsewhere)
//     hashindex.sqlite       0600, local hash index
//
// The configuration decides what is never quarantined (allow lists), so a file anyone else could write would
// let them exempt their malware: such a file is refused, not read.
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { isSha1 } from '../core/validation.ts';
import { writeFileDurable } from './vault/durable.ts';
import { ensurePrivateDir } from './privateDir.ts';

export const DEFAULT_STATE_DIR = '/var/lib/tourniquet-agent';
export const CONFIG_FILE = 'agent.json';

export interface AgentConfig {
  /** Directories (or files) the hash index covers. */
  roots: string[];
  /** SHA-1s never quarantined. */
  allowSha1: string[];
  /** Path prefixes never quarantined. */
  allowPaths: string[];
  /** Vault directory; null = <stateDir>/vault. */
  vaultDir: string | null;
  /** Re-scan window after the kill for respawned processes. */
  respawnWindowMs: number;
  /** Also match processes by their file-backed mappings (preloaded libraries). */
  includeMappedFiles: boolean;
  /** Files larger than this are indexed by size only and hashed when a size matches. */
  indexMaxFileBytes: number;
  /** How often `agent run` refreshes the index in the background. */
  indexRescanSeconds: number;
  /** When the hot path may walk the roots for same-size files: never, when the index is stale, always. */
  sizeScan: 'never' | 'whenStale' | 'always';
}

export const DEFAULT_CONFIG: Readonly<AgentConfig> = Object.freeze({
  roots: ['/home', '/root', '/tmp', '/var/tmp', '/dev/shm', '/opt', '/srv', '/usr/local'],
  allowSha1: [],
  allowPaths: [],
  vaultDir: null,
  respawnWindowMs: 300,
  includeMappedFiles: false,
  indexMaxFileBytes: 256 * 1024 * 1024,
  indexRescanSeconds: 600,
  sizeScan: 'whenStale',
});

export class AgentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentConfigError';
  }
}

export interface StateLayout {
  dir: string;
  configFile: string;
  vaultDir: string;
  vaultKeyFile: string;
  indexFile: string;
}

export function stateLayout(stateDir: string, config: Pick<AgentConfig, 'vaultDir'> = DEFAULT_CONFIG): StateLayout {
  if (!posix.isAbsolute(stateDir)) throw new AgentConfigError(`state directory must be an absolute path: ${stateDir}`);
  const dir = posix.normalize(stateDir);
  return {
    dir,
    configFile: posix.join(dir, CONFIG_FILE),
    vaultDir: config.vaultDir ?? posix.join(dir, 'vault'),
    vaultKeyFile: posix.join(dir, 'vault.key'),
    indexFile: posix.join(dir, 'hashindex.sqlite'),
  };
}

function absolutePathList(v: unknown, key: string): string[] {
  if (!Array.isArray(v)) throw new AgentConfigError(`${key} must be an array of absolute paths`);
  return v.map((p, i) => {
    if (typeof p !== 'string' || !posix.isAbsolute(p) || p.includes('\0')) {
      throw new AgentConfigError(`${key}[${i}] must be an absolute path, got ${JSON.stringify(p)}`);
    }
    return posix.normalize(p);
  });
}

function intIn(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new AgentConfigError(`${key} must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Validates a parsed agent.json; absent keys take their defaults, unknown keys are refused (typos). */
export function parseAgentConfig(raw: unknown): AgentConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AgentConfigError('agent.json must hold a JSON object');
  const o = raw as Record<string, unknown>;
  const known = new Set(Object.keys(DEFAULT_CONFIG));
  for (const k of Object.keys(o)) if (!known.has(k)) throw new AgentConfigError(`unknown setting ${JSON.stringify(k)} in agent.json`);
  const cfg: AgentConfig = { ...DEFAULT_CONFIG, roots: [...DEFAULT_CONFIG.roots], allowSha1: [], allowPaths: [] };
  if (o.roots !== undefined) cfg.roots = absolutePathList(o.roots, 'roots');
  if (o.allowPaths !== undefined) cfg.allowPaths = absolutePathList(o.allowPaths, 'allowPaths');
  if (o.allowSha1 !== undefined) {
    if (!Array.isArray(o.allowSha1)) throw new AgentConfigError('allowSha1 must be an array of SHA-1 hex strings');
    cfg.allowSha1 = o.allowSha1.map((h, i) => {
      if (!isSha1(h)) throw new AgentConfigError(`allowSha1[${i}] is not a SHA-1: ${JSON.stringify(h)}`);
      return h.toLowerCase();
    });
  }
  if (o.vaultDir !== undefined && o.vaultDir !== null) {
    if (typeof o.vaultDir !== 'string' || !posix.isAbsolute(o.vaultDir)) throw new AgentConfigError('vaultDir must be an absolute path or null');
    cfg.vaultDir = posix.normalize(o.vaultDir);
  }
  if (o.respawnWindowMs !== undefined) cfg.respawnWindowMs = intIn(o.respawnWindowMs, 'respawnWindowMs', 0, 60_000);
  if (o.indexMaxFileBytes !== undefined) cfg.indexMaxFileBytes = intIn(o.indexMaxFileBytes, 'indexMaxFileBytes', 0, Number.MAX_SAFE_INTEGER);
  if (o.indexRescanSeconds !== undefined) cfg.indexRescanSeconds = intIn(o.indexRescanSeconds, 'indexRescanSeconds', 10, 7 * 86_400);
  if (o.includeMappedFiles !== undefined) {
    if (typeof o.includeMappedFiles !== 'boolean') throw new AgentConfigError('includeMappedFiles must be true or false');
    cfg.includeMappedFiles = o.includeMappedFiles;
  }
  if (o.sizeScan !== undefined) {
    if (o.sizeScan !== 'never' && o.sizeScan !== 'whenStale' && o.sizeScan !== 'always') {
      throw new AgentConfigError(`sizeScan must be "never", "whenStale" or "always", got ${JSON.stringify(o.sizeScan)}`);
    }
    cfg.sizeScan = o.sizeScan;
  }
  return cfg;
}

/** Reads <stateDir>/agent.json (defaults when absent), refusing a file others could have written. */
export function loadAgentConfig(stateDir: string): AgentConfig {
  const file = stateLayout(stateDir).configFile;
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return parseAgentConfig({});
    if (code === 'ELOOP') throw new AgentConfigError(`${file} is a symlink; refusing it`);
    throw err;
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    const uid = process.geteuid?.() ?? 0;
    if (!st.isFile()) throw new AgentConfigError(`${file} is not a regular file`);
    if (st.uid !== uid) throw new AgentConfigError(`${file} is owned by uid ${st.uid}, expected ${uid}; refusing it`);
    if ((st.mode & 0o022) !== 0) throw new AgentConfigError(`${file} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); refusing it`);
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AgentConfigError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseAgentConfig(raw);
}

/** Writes agent.json durably, 0600. */
export function saveAgentConfig(stateDir: string, config: AgentConfig): void {
  const layout = ensureStateDir(stateDir);
  writeFileDurable(layout.configFile, JSON.stringify(parseAgentConfig(config), null, 2) + '\n');
}

/** Creates (or tightens) the state directory; returns its layout for the default vault location. */
export function ensureStateDir(stateDir: string): StateLayout {
  const layout = stateLayout(stateDir);
  ensurePrivateDir(layout.dir);
  return layout;
}
