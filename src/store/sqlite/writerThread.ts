// The SQLite store writes on a thread of its own. better-sqlite3 is synchronous: on the main thread every commit
// (WAL page writes and the fsync of synchronous=FULL, ~1–1.5 ms per group commit here) and every insert stalled
// all HTTP traffic, and a write waiting on another process's lock slept the event loop for up to busy_timeout.
// Here the main thread keeps reading on its own connection (WAL readers never wait for the writer) and compiles
// every write with the same Kysely queries as before; only their execution moves to this thread's connection.
// It acknowledges a statement only after SQLite returned from it, so a commit that resolved is as durable as
// before. Measured in bench/api (BENCHMARKS.md).
import { Worker } from 'node:worker_threads';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
} from 'kysely';
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

  async execute<R>(sql: string, params: readonly unknown[]): Promise<QueryResult<R>> {
    if (this.closed) throw new Error('SQLite writer thread is closed');
    const id = this.nextId++;
    const reply = await this.request({ id, sql, params: [...params] });
    if ('error' in reply) throw decodeError(reply.error);
    if ('rows' in reply) return { rows: reply.rows as R[] };
    if ('changes' in reply) {
      return { rows: [], numAffectedRows: BigInt(reply.changes), insertId: reply.lastInsertRowid };
    }
    throw new Error('SQLite writer thread: unexpected reply');
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

/** A Kysely dialect whose one connection is the writer thread's. Compiles like SQLite, executes over there. */
export function writerThreadDialect(thread: SqliteWriterThread): Dialect {
  return {
    createAdapter: () => new SqliteAdapter(),
    createQueryCompiler: () => new SqliteQueryCompiler(),
    createIntrospector: (db: Kysely<unknown>) => new SqliteIntrospector(db),
    createDriver: () => new WriterThreadDriver(thread),
  };
}

class WriterThreadDriver implements Driver {
  private tail: Promise<void> = Promise.resolve();
  private release: (() => void) | null = null;
  private readonly connection: DatabaseConnection;

  constructor(private readonly thread: SqliteWriterThread) {
    this.connection = {
      executeQuery: <R>(q: CompiledQuery) => thread.execute<R>(q.sql, q.parameters),
      streamQuery: () => {
        throw new Error('streaming is not supported on the SQLite writer thread');
      },
    };
  }

  async init(): Promise<void> {}

  /** One connection: a second user waits until the first released it (as Kysely's own SQLite driver does). */
  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await previous;
    this.release = release;
    return this.connection;
  }

  async releaseConnection(): Promise<void> {
    const r = this.release;
    this.release = null;
    r?.();
  }

  async beginTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('begin'));
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('rollback'));
  }

  async destroy(): Promise<void> {
    await this.thread.close();
  }
}
