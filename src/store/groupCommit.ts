// Group commit: writes requested close together share one transaction, so one fsync (SQLite) or one round trip
// (PostgreSQL) acknowledges many of them. Each caller's promise settles only after the batch holding its item
// has committed, and one item's failure is reported to that item alone.

export type ItemOutcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

/** Writes a batch durably and reports per item, in input order. A throw fails every item of the batch. */
export type BatchWriter<I, O> = (items: I[]) => Promise<ItemOutcome<O>[]>;

interface Pending<I, O> {
  item: I;
  resolve: (v: O) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitOptions {
  /** Largest batch written at once. */
  maxBatch: number;
  /** Batches in flight at the same time (1 for SQLite's single writer). */
  maxInFlight: number;
}

export class GroupCommitter<I, O> {
  private queue: Pending<I, O>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly write: BatchWriter<I, O>,
    private readonly opts: GroupCommitOptions,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far has been written (used before closing the database). */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.opts.maxInFlight) return;
    this.scheduled = true;
    // setImmediate runs after the current I/O phase, so every request parsed in this tick joins the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.opts.maxInFlight) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.schedule();
        else if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async run(batch: Pending<I, O>[]): Promise<void> {
    let outcomes: ItemOutcome<O>[];
    try {
      outcomes = await this.write(batch.map((p) => p.item));
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => {
      const o = outcomes[i];
      if (!o) p.reject(new Error('group commit: no outcome for item'));
      else if (o.ok) p.resolve(o.value);
      else p.reject(o.error);
    });
  }
}
