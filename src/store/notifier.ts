// Cross-node notifications behind the Store's publish/subscribe: in-process for SQLite (one node), LISTEN/NOTIFY
// for PostgreSQL (see postgres/pgNotifier.ts). Delivery is best-effort and at-most-once: subscribers use it to
// act fast, and must still tolerate a missed notification (e.g. re-read on reconnect).
import { EventEmitter } from 'node:events';
import type { StoreNotification } from './store.ts';

export interface Notifier {
  publish(n: StoreNotification): Promise<void>;
  subscribe(fn: (n: StoreNotification) => void): () => void;
  close(): Promise<void>;
}

/** Checks a notification's shape, so nothing malformed (from a peer or our own caller) reaches subscribers. */
export function parseNotification(v: unknown): StoreNotification | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.channel !== 'action' && o.channel !== 'machine') return null;
  if (typeof o.machineId !== 'string' || o.machineId === '') return null;
  if (o.actionId !== undefined && typeof o.actionId !== 'string') return null;
  return o.actionId === undefined
    ? { channel: o.channel, machineId: o.machineId }
    : { channel: o.channel, machineId: o.machineId, actionId: o.actionId };
}

/** Fans a notification out to subscribers; one throwing subscriber must not keep the others from hearing it. */
export class SubscriberSet {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  add(fn: (n: StoreNotification) => void): () => void {
    const safe = (n: StoreNotification) => {
      try {
        fn(n);
      } catch (err) {
        process.emitWarning(`store notification subscriber threw: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    this.emitter.on('n', safe);
    return () => this.emitter.off('n', safe);
  }

  deliver(n: StoreNotification): void {
    this.emitter.emit('n', n);
  }

  clear(): void {
    this.emitter.removeAllListeners();
  }
}

export class LocalNotifier implements Notifier {
  private readonly subscribers = new SubscriberSet();

  async publish(n: StoreNotification): Promise<void> {
    const checked = parseNotification(n);
    if (!checked) throw new TypeError('invalid store notification');
    // Delivered on a later tick, as over the network: a publisher never re-enters itself synchronously.
    setImmediate(() => this.subscribers.deliver(checked));
  }

  subscribe(fn: (n: StoreNotification) => void): () => void {
    return this.subscribers.add(fn);
  }

  async close(): Promise<void> {
    this.subscribers.clear();
  }
}
