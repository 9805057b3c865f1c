// The safety net under LISTEN/NOTIFY: notifications are at-most-once (a dropped LISTEN connection loses what was
// sent meanwhile), so every so often this node re-sends the Pending actions of the devices it holds that are older
// than one period. Devices de-duplicate by action id, so a re-send of something already received costs one frame.
import type { FastifyBaseLogger } from 'fastify';
import type { MachineAction } from '../../core/actions.ts';
import { millisToTimestamp } from '../../core/time.ts';
import type { Store } from '../../store/store.ts';
import { nowTimestamp } from '../clock.ts';

/** Re-sent per sweep at most; the rest wait for the next sweep. */
const SWEEP_LIMIT = 5000;

export interface RedeliveryOptions {
  store: Store;
  log: FastifyBaseLogger;
  nodeId: string;
  everyMs: number;
  deliver: (a: MachineAction) => void;
}

export function startRedelivery(o: RedeliveryOptions): () => Promise<void> {
  let running: Promise<void> | null = null;
  const sweep = async () => {
    try {
      const createdBefore = millisToTimestamp(Date.now() - o.everyMs);
      const due = await o.store.undeliveredActions(o.nodeId, createdBefore, nowTimestamp(), SWEEP_LIMIT);
      for (const a of due) o.deliver(a);
      if (due.length > 0) o.log.debug({ actions: due.length }, 're-sent pending actions');
    } catch (err) {
      o.log.error({ err }, 'pending-action sweep failed');
    }
  };
  const timer = setInterval(() => {
    if (!running) running = sweep().finally(() => (running = null));
  }, o.everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
