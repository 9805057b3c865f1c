// With TOURNIQUET_SQLITE_WRITER_THREAD=1 (off by default: see docs/decisions.md for the trade-off measured), the
// SQLite store writes its group-commit batches (new actions with their audit entries, audit entries alone) on a
// thread of its own. better-sqlite3 is synchronous: on the main thread every batch's commit (WAL page writes,
// checkpoints and the fsync of synchronous=FULL, ~1.5–2 ms here) and its inserts stalled all HTTP traffic, and a batch
// waiting for another process's lock slept the event loop for up to busy_timeout. The thread acknowledges a batch only
// after its COMMIT returned, so a resolved write is as durable as before.
// Every other write (machines, enrollment, transitions: transactions of several statements that read as they go)
// stays on the main thread's connection, under a lease: the thread finishes its current batch, lends the write lock
// and holds further batches until the main thread releases it. One round trip per such transaction, instead of one
// per statement. Measured in bench/api and bench/fleet (BENCHMARKS.md, docs/decisions.md).
import { Worker } from 'node:worker_threads';
import type { MachineAction } from '../../core/actions.ts';
import type { PendingAction } from '../batchWrites.ts';
import type { ItemOutcome } from '../groupCommit.ts';
import type { AuditEntry, NewAuditEntry } from '../store.ts';
import {
  decodeError,
  decodeOutcomes,
  type EncodedOutcome,
  type WriterReply,
  type WriterRequest,
  type WriterThreadData,
} from './writerMessages.ts';

interface Waiter {
  resolve(reply: WriterReply): void;
  reject(err: Error): void;
}

/** `node --cpu-prof …` profiles this thread too (it is where the store's writes spend their time). */
const isProfilerFlag = (arg: string) => arg.startsWith('--cpu-prof');

function spawnWriter(data: WriterThreadData): Worker {
  if (import.meta.url.endsWith('.ts')) {
    // Running from the TypeScript sources: the thread registers the same loader before importing its entry.
    // (A thread does not inherit loader hooks registered at run time; execArgv is cleared so none registers twice.)
    const loader = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./writerThreadEntry.ts', import.meta.url).href;
    const boot = `import(${JSON.stringify(loader)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
    return new Worker(boot, { eval: true, execArgv: process.execArgv.filter(isProfilerFlag), workerData: data });
  }
  // The bundle (scripts/build.mjs) emits the entry next to the chunk holding this code.
  return new Worker(new URL('./sqliteWriterThread.mjs', import.meta.url), { workerData: data });
}

export class SqliteWriterThread {
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 1;
  private failure: Error | null = null;
  private closed: Promise<void> | null = null;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: WriterReply) => {
      const w = this.waiting.get(reply.id);
      if (!w) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      w.resolve(reply);
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      for (const w of this.waiting.values()) w.reject(this.failure);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`SQLite writer thread exited (code ${code})`)));
  }

  /** Starts the thread and opens its connection; rejects if the database cannot be opened there. */
  static start(data: WriterThreadData): Promise<SqliteWriterThread> {
    const worker = spawnWriter(data);
    const thread = new SqliteWriterThread(worker);
    // The thread says `ready` (id 0) once its connection is open.
    return thread.expect(0).then(() => thread);
  }

  /** The reply to request `id`. */
  private expect(id: number): Promise<WriterReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      // Idle, the thread must not keep the process alive; while a statement is out, it must.
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(id, { resolve, reject });
    });
  }

  private request(req: WriterRequest): Promise<WriterReply> {
    const reply = this.expect(req.id);
    if (!this.failure) this.worker.postMessage(req);
    return reply;
  }

  /**
   * Runs `fn` (a write on the main thread's own connection) while this thread holds back its batches: the write
   * lock is free for it as soon as the batch being committed has finished.
   */
  async withLease<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('SQLite writer thread is closed');
    const id = this.nextId++;
    await this.request({ id, lease: true });
    try {
      return await fn();
    } finally {
      if (!this.failure) this.worker.postMessage({ id: this.nextId++, release: true } satisfies WriterRequest);
    }
  }

  /** Writes a whole group-commit batch in one message: one transaction there, outcomes per item here. */
  writeBatch(kind: 'actions', items: PendingAction[]): Promise<ItemOutcome<MachineAction>[]>;
  writeBatch(kind: 'audit', items: NewAuditEntry[]): Promise<ItemOutcome<AuditEntry>[]>;
  async writeBatch(kind: 'actions' | 'audit', items: PendingAction[] | NewAuditEntry[]): Promise<ItemOutcome<unknown>[]> {
    if (this.closed) throw new Error('SQLite writer thread is closed');
    const id = this.nextId++;
    const reply = await this.request({ id, batch: kind, items } as WriterRequest);
    if ('error' in reply) throw decodeError(reply.error);
    if (!('outcomes' in reply)) throw new Error('SQLite writer thread: unexpected reply');
    return decodeOutcomes(reply.outcomes as EncodedOutcome<unknown>[]);
  }

  /** Closes the connection (SQLite checkpoints on close) and ends the thread. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (!this.failure) {
        const id = this.nextId++;
        await this.request({ id, close: true }).catch(() => undefined);
      }
      await this.worker.terminate();
    })();
    return this.closed;
  }
}
