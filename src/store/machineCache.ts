// Machines by id, kept between requests on an embedded database. Every POST reads its machine; the row read costs
// more than the rest of the request's reads together (~12 µs of a ~150 µs request, measured in bench/api). A machine
// is served from here only while nothing could have changed it:
// - any write through a store on this file in this process clears every such cache, before the write starts and
//   after it commits (a read that raced a write is not kept: tickets);
// - a commit by another connection (another process, the CLI) clears it from the next turn of the event loop on
//   (SQLite's data_version, read once per turn: it costs ~7 µs, and another process's commit can only become known
//   to this one through I/O, i.e. in a later turn, so no read here can causally follow it within the turn).
// Kept mapped and deeply frozen, so every caller shares one read-only object: mapping a row again (three JSON
// columns parsed) cost ~2% of a POST's instructions (callgrind, seventh session). A caller that wants to change a
// machine copies it; writing to the shared one throws.
import type { Machine } from '../core/machines.ts';

const MAX_MACHINES = 10_000;

/** Bumped by every write to one database file from this process, whichever store instance made it. */
export interface WriteEpoch {
  value: number;
}

export class MachineCache {
  private readonly machines = new Map<string, Machine>();
  private version: number | null = null;
  private seenEpoch: number;
  /** Bumped by every clear: a machine read before a clear must not be kept after it. */
  private generation = 0;
  private checkedThisTurn = false;

  /** `changeCounter` changes whenever another connection has committed (SQLite: PRAGMA data_version). */
  constructor(
    private readonly changeCounter: () => number,
    private readonly epoch: WriteEpoch,
  ) {
    this.seenEpoch = epoch.value;
  }

  /** The cached machine, if still valid; else a ticket for keeping the one about to be read. */
  get(id: string): { machine: Machine } | { ticket: number } {
    if (!this.checkedThisTurn) {
      this.checkedThisTurn = true;
      setImmediate(() => (this.checkedThisTurn = false));
      const v = this.changeCounter();
      if (v !== this.version) {
        this.forget();
        this.version = v;
      }
    }
    if (this.epoch.value !== this.seenEpoch) this.forget();
    const machine = this.machines.get(id);
    return machine ? { machine } : { ticket: this.generation };
  }

  /** Keeps a machine read after `get` gave `ticket` (frozen: see above) — unless a write cleared the cache meanwhile. */
  set(id: string, machine: Machine, ticket: number): void {
    if (ticket !== this.generation || this.epoch.value !== this.seenEpoch) return;
    if (this.machines.size >= MAX_MACHINES) this.machines.delete(this.machines.keys().next().value as string);
    this.machines.set(id, frozen(machine));
  }

  /** A write is starting or has committed: this cache and every other one on the file forget their machines. */
  clear(): void {
    this.epoch.value++;
    this.forget();
  }

  private forget(): void {
    this.machines.clear();
    this.generation++;
    this.seenEpoch = this.epoch.value;
  }
}

/** `m` made read-only all the way down (its lists, their items, its VM metadata). */
function frozen(m: Machine): Machine {
  Object.freeze(m.machineTags);
  Object.freeze(m.capabilities);
  for (const ip of m.ipAddresses) Object.freeze(ip);
  Object.freeze(m.ipAddresses);
  if (m.vmMetadata) Object.freeze(m.vmMetadata);
  return Object.freeze(m);
}
