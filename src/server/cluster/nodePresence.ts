// This node's presence in cluster_nodes: a heartbeat, and on the same beat the reaping of nodes that stopped
// beating (kill -9, power loss) so the devices they held do not stay Active forever. Every node reaps; the store
// makes each reap happen once. On SQLite (one node) it reaps the previous process after a crash.
import type { FastifyBaseLogger } from 'fastify';
import type { Store } from '../../store/store.ts';
import { nowTimestamp } from '../clock.ts';

export interface NodePresenceOptions {
  store: Store;
  log: FastifyBaseLogger;
  nodeId: string;
  heartbeatMs: number;
  deadAfterMs: number;
  detail: Record<string, unknown>;
  /** This node's row was missing on a heartbeat after the first: it was reaped while alive (e.g. a database outage). */
  onReRegistered: () => void;
}

export interface NodePresence {
  stop(): Promise<void>;
}

export function startNodePresence(o: NodePresenceOptions): NodePresence {
  const startedAt = nowTimestamp();
  let first = true;
  let running: Promise<void> | null = null;
  const beat = async () => {
    try {
      const r = await o.store.heartbeatNode({ nodeId: o.nodeId, startedAt, heartbeatMs: Date.now(), detail: o.detail });
      if (r === 'registered' && !first) {
        o.log.warn({ nodeId: o.nodeId }, 'this node had been reaped as dead; re-registering its device connections');
        o.onReRegistered();
      }
      first = false;
      const reaped = await o.store.reapDeadNodes(Date.now() - o.deadAfterMs, nowTimestamp());
      if (reaped.nodes.length > 0) {
        o.log.warn({ nodes: reaped.nodes, machines: reaped.machines.length }, 'reaped dead server nodes; their devices are Inactive');
      }
    } catch (err) {
      o.log.error({ err }, 'node heartbeat failed');
    }
  };
  running = beat().finally(() => (running = null));
  const timer = setInterval(() => {
    if (!running) running = beat().finally(() => (running = null));
  }, o.heartbeatMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
