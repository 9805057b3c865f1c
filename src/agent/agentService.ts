// `tourniquet agent enroll` and `agent run`: the endpoint agent's life around the execution core — enrollment,
// the connection (reconnect with backoff and jitter, resume, outbox across restarts), and action dispatch.
import { DeviceClient, type ActionOutcome, type DeviceClientLog } from '../protocol/deviceClient.ts';
import { generateDeviceKey } from '../protocol/signing.ts';
import type { ActionOrder } from '../protocol/v1.ts';
import { HRESULT } from '../core/actions.ts';
import { executeRestore, executeStopAndQuarantine, type ExecutionResult } from './executor.ts';
import { loadClientState, loadIdentity, saveClientState, saveIdentity } from './identity.ts';
import { AGENT_VERSION, linuxFacts } from './linuxFacts.ts';
import { ensurePrivateDir } from './privateDir.ts';
import { openAgentRuntime, type AgentRuntime } from './runtime.ts';
import { vaultReportChunks } from './vaultReport.ts';

export interface EnrollOptions {
  server: string;
  token: string;
  stateDir: string;
  tags?: string[];
}

export async function enrollAgent(o: EnrollOptions): Promise<string> {
  if (process.geteuid && process.geteuid() !== 0) {
    throw new Error('the agent must run as root: it stops other users\' processes and quarantines their files');
  }
  ensurePrivateDir(o.stateDir);
  const server = new URL(o.server).origin;
  const key = generateDeviceKey();
  const client = new DeviceClient({ server, key, agentVersion: AGENT_VERSION, onAction: async () => null });
  try {
    const res = await client.enroll(o.token, linuxFacts({ tags: o.tags ?? [] }));
    saveIdentity(o.stateDir, { server, machineId: res.machineId, enrolledAt: new Date().toISOString() }, key);
    return res.machineId;
  } finally {
    await client.close();
  }
}

const outcome = (r: ExecutionResult): ActionOutcome => ({
  outcome: r.outcome,
  errorHResult: r.errorHResult,
  reason: r.reason,
  detail: r.detail,
});

const failed = (reason: string): ActionOutcome => ({
  outcome: 'Failed',
  errorHResult: HRESULT.fail,
  reason,
  detail: { processes: [], files: [], durationMs: 0 },
});

export interface RunningAgent {
  machineId: string;
  client: DeviceClient;
  runtime: AgentRuntime;
  stop(): Promise<void>;
}

export async function runAgent(o: { stateDir: string; log?: DeviceClientLog & { info(obj: object, msg?: string): void } }): Promise<RunningAgent> {
  const { identity, key } = loadIdentity(o.stateDir);
  const runtime = openAgentRuntime(o.stateDir);
  let client!: DeviceClient;

  const reportVault = () => {
    for (const items of vaultReportChunks(runtime.vault)) client.sendVault(items);
  };

  const onAction = async (order: ActionOrder, ctx: { signal: AbortSignal; progress(m: string): void }) => {
    o.log?.info({ actionId: order.id, type: order.type }, 'action received');
    let result: ActionOutcome;
    if (order.type === 'StopAndQuarantineFile') {
      if (!order.sha1) return failed('StopAndQuarantineFile without a SHA-1');
      const r = await executeStopAndQuarantine(
        { sha1: order.sha1, actionId: order.id, signal: ctx.signal },
        { ...runtime.deps, onProgress: (m) => ctx.progress(m) },
      );
      result = outcome(r);
    } else if (order.type === 'RestoreQuarantinedFile') {
      const p = order.params as { itemId?: unknown; destinationPath?: unknown; overwrite?: unknown };
      if (typeof p.itemId !== 'string') return failed('RestoreQuarantinedFile without an itemId');
      const r = await executeRestore(
        {
          itemId: p.itemId,
          ...(typeof p.destinationPath === 'string' ? { destinationPath: p.destinationPath } : {}),
          ...(p.overwrite === true ? { overwrite: true } : {}),
        },
        runtime.deps,
      );
      result = outcome(r);
    } else {
      return failed(`${order.type} is not supported by the Tourniquet Linux agent ${AGENT_VERSION}`);
    }
    reportVault();
    o.log?.info({ actionId: order.id, outcome: result.outcome, reason: result.reason }, 'action done');
    return result;
  };

  let saveTimer: NodeJS.Timeout | null = null;
  const initialState = loadClientState(o.stateDir);
  client = new DeviceClient({
    server: identity.server,
    key,
    machineId: identity.machineId,
    agentVersion: AGENT_VERSION,
    onAction,
    ...(initialState ? { initialState } : {}),
    ...(o.log ? { log: o.log } : {}),
    reconnect: { initialDelayMs: 500, maxDelayMs: 30_000 },
    onStateChange: (c) => {
      // Debounced: results waiting in the outbox are persisted within 100 ms, never lost to a restart.
      if (saveTimer) return;
      saveTimer = setTimeout(() => {
        saveTimer = null;
        saveClientState(o.stateDir, c.snapshot());
      }, 100);
    },
  });
  client.on('online', () => {
    o.log?.info({ machineId: identity.machineId }, 'connected');
    client.sendFacts(linuxFacts());
    reportVault();
  });
  client.on('offline', (code, reason) => o.log?.info({ code, reason }, 'disconnected; reconnecting'));
  const stopIndexing = runtime.startIndexing();
  client.start();
  return {
    machineId: identity.machineId,
    client,
    runtime,
    async stop() {
      stopIndexing();
      await client.close();
      if (saveTimer) clearTimeout(saveTimer);
      saveClientState(o.stateDir, client.snapshot());
      runtime.close();
    },
  };
}
