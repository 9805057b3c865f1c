// Moves Pending/InProgress actions past their expiry to TimeOut. Safe to run on every node: the store moves
// each action exactly once, and only the node that moved it tells the devices.
import type { FastifyBaseLogger } from 'fastify';
import type { Store } from '../store/store.ts';
import { nowTimestamp } from './clock.ts';

export function startExpiryLoop(store: Store, log: FastifyBaseLogger, everyMs: number): () => Promise<void> {
  let running: Promise<void> | null = null;
  const tick = async () => {
    try {
      for (;;) {
        const moved = await store.expireDueActions(nowTimestamp(), 1000);
        for (const a of moved) await store.publish({ channel: 'action', machineId: a.machineId, actionId: a.id });
        if (moved.length < 1000) break;
      }
    } catch (err) {
      log.error({ err }, 'expiry pass failed');
    }
  };
  const timer = setInterval(() => {
    if (!running) running = tick().finally(() => (running = null));
  }, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
