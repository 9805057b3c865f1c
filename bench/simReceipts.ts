// Child side of the fleet and cluster benches: when each device received each action, handed out once per action.
import type { Fleet } from '../src/simulator/index.ts';

export class ReceiptLog {
  readonly #at = new Map<string, number>();

  /** Starts recording, with `now()`, every action the fleet's devices receive. */
  watch(fleet: Fleet, now: () => number): void {
    for (const d of fleet.devices()) d.client.on('action', (o) => this.#at.set(o.id, now()));
  }

  /** The receipt times known for `actionIds`, forgotten once handed out. */
  take(actionIds: string[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const a of actionIds) {
      const t = this.#at.get(a);
      if (t !== undefined) {
        out[a] = t;
        this.#at.delete(a);
      }
    }
    return out;
  }
}
