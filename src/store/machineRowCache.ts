// Machine rows by id, kept between requests on an embedded database. Every POST reads its machine; the row read costs
// more than the rest of the request's reads together (~12 µs of a ~150 µs request, measured in bench/api). A row is
// served from here only while nothing could have changed it: any write through this store clears everything (before
// and after it commits), and so does any commit by another connection (SQLite's data_version: another process, or the
// writer thread). Rows, not Machines: every caller still gets objects of its own.
import type { MachinesTable } from './schema.ts';

const MAX_ROWS = 10_000;

export class MachineRowCache {
  private readonly rows = new Map<string, MachinesTable>();
  private version: number | null = null;
  /** Bumped by every clear: a row read before a clear must not be kept after it. */
  private generation = 0;

  /** `changeCounter` changes whenever another connection has committed (SQLite: PRAGMA data_version). */
  constructor(private readonly changeCounter: () => number) {}

  /** The cached row, if still valid; else undefined and a ticket for keeping the row about to be read. */
  get(id: string): { row: MachinesTable } | { ticket: number } {
    const v = this.changeCounter();
    if (v !== this.version) {
      this.clear();
      this.version = v;
    }
    const row = this.rows.get(id);
    return row ? { row } : { ticket: this.generation };
  }

  /** Keeps a row read after `get` gave `ticket` — unless a write cleared the cache meanwhile. */
  set(id: string, row: MachinesTable, ticket: number): void {
    if (ticket !== this.generation) return;
    if (this.rows.size >= MAX_ROWS) this.rows.delete(this.rows.keys().next().value as string);
    this.rows.set(id, row);
  }

  clear(): void {
    this.rows.clear();
    this.generation++;
  }
}
