// Everything the executor needs, opened from a state directory: used by `tourniquet agent run` at start-up.
// Opening recovers the vault first, so an action interrupted by a crash is settled before any new one runs.
import type { AgentConfig, StateLayout } from './state.ts';
import { ensureStateDir, loadAgentConfig, stateLayout } from './state.ts';
import { HashCache } from './hashIndex/hashCache.ts';
import { HashIndex } from './hashIndex/hashIndex.ts';
import type { ScanReport } from './hashIndex/hashIndex.ts';
import { ProtectionPolicy } from './protection.ts';
import type { RecoveryReport } from './vault/vault.ts';
import { Vault } from './vault/vault.ts';
import type { ExecutorDeps } from './executor.ts';

export interface AgentRuntime {
  config: AgentConfig;
  layout: StateLayout;
  vault: Vault;
  index: HashIndex;
  protection: ProtectionPolicy;
  hashCache: HashCache;
  recovery: RecoveryReport;
  deps: ExecutorDeps;
  /**
   * Scans the index now and then every `indexRescanSeconds` (timers unref'd). `onScan` gets each report or
   * error. Returns a function that stops the schedule.
   */
  startIndexing(onScan?: (report: ScanReport | null, error: Error | null) => void): () => void;
  close(): void;
}

export function openAgentRuntime(stateDir: string, overrides: Partial<AgentConfig> = {}): AgentRuntime {
  ensureStateDir(stateDir);
  const config: AgentConfig = { ...loadAgentConfig(stateDir), ...overrides };
  const layout = stateLayout(stateDir, config);
  const vault = Vault.open({ dir: layout.vaultDir, keyFile: layout.vaultKeyFile });
  const recovery = vault.recover();
  const index = HashIndex.open({
    file: layout.indexFile,
    roots: config.roots,
    skipPaths: [layout.dir, layout.vaultDir],
    maxHashBytes: config.indexMaxFileBytes,
  });
  const protection = new ProtectionPolicy({
    allowSha1: config.allowSha1,
    allowPathPrefixes: config.allowPaths,
    agentPaths: [layout.dir, layout.vaultDir],
  });
  protection.warm();
  const hashCache = new HashCache(8192, (id) => index.lookupIdentity(id));
  const deps: ExecutorDeps = {
    vault,
    index,
    protection,
    hashCache,
    respawnWindowMs: config.respawnWindowMs,
    includeMappedFiles: config.includeMappedFiles,
    sizeScan: config.sizeScan,
    staleAfterMs: config.indexRescanSeconds * 2000,
  };
  let stopIndexing: (() => void) | null = null;
  const startIndexing = (onScan?: (report: ScanReport | null, error: Error | null) => void) => {
    stopIndexing?.();
    const abort = new AbortController();
    let timer: NodeJS.Timeout | null = null;
    const run = () => {
      index.scan(abort.signal).then(
        (r) => onScan?.(r, null),
        (e: unknown) => {
          if (!abort.signal.aborted) onScan?.(null, e instanceof Error ? e : new Error(String(e)));
        },
      );
    };
    run();
    timer = setInterval(run, config.indexRescanSeconds * 1000);
    timer.unref();
    stopIndexing = () => {
      abort.abort();
      if (timer) clearInterval(timer);
      stopIndexing = null;
    };
    return stopIndexing;
  };
  return {
    config,
    layout,
    vault,
    index,
    protection,
    hashCache,
    recovery,
    deps,
    startIndexing,
    close: () => {
      stopIndexing?.();
      index.close();
    },
  };
}
