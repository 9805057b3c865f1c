// Machine rows by id, kept between requests on an embedded database. Every POST reads its machine; the row read costs
// more than the rest of the request's reads together (~12 µs of a ~150 µs request, measured in bench/api). A row is
// served from here only while nothing could have changed it:
// - any write through a store on this file in this process clears every such cache, before the write starts and
//   after it commits (a read that raced a write is not kept: tickets);
// - a commit by another connection (another process, the CLI) clears it from the next turn of the event loop on
//   (SQLite's data_version, read once per turn: it costs ~7 µs, and another process's commit can only become known
//   to this one through I/O, i.e. in a later turn, so no read here can causally follow it within the turn).
// Rows, not Machines: every caller still gets objects of its own.
import type { MachinesTable } from './schema.ts';

const MAX_ROWS = 10_000;

/** Bumped by every write to one database file from this process, whichever store instance made it. */
export interface WriteEpoch {
  value: number;
}

export class MachineRowCache {
  private readonly rows = new Map<string, MachinesTable>();
  private version: number | null = null;
  private seenEpoch: number;
  /** Bumped by every clear: a row read before a clear must not be kept after it. */
  private generation = 0;
  private checkedThisTurn = false;

  /** `changeCounter` changes whenever another connection has committed (SQLite: PRAGMA data_version). */
  constructor(
    private readonly changeCounter: () => number,
    private readonly epoch: WriteEpoch,
  ) {
    this.seenEpoch = epoch.value;
  }

  /** The cached row, if still valid; else undefined and a ticket for keeping the row about to be read. */
  get(id: string): { row: MachinesTable } | { ticket: number } {
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
    const row = this.rows.get(id);
    return row ? { row } : { ticket: this.generation };
  }

  /** Keeps a row read after `get` gave `ticket` — unless a write cleared the cache meanwhile. */
  set(id: string, row: MachinesTable, ticket: number): void {
    if (ticket !== this.generation || this.epoch.value !== this.seenEpoch) return;
    if (this.rows.size >= MAX_ROWS) this.rows.delete(this.rows.keys().next().value as string);
    this.rows.set(id, row);
  }

  /** A write is starting or has committed: this cache and every other one on the file forget their rows. */
  clear(): void {
    this.epoch.value++;
    this.forget();
  }

  private forget(): void {
    this.rows.clear();
    this.generation++;
    this.seenEpoch = this.epoch.value;
  }
}
