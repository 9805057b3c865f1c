// Runs inside the writer thread: owns the store's one writing SQLite connection. It executes the statements the
// main thread's Kysely compiled, and whole group-commit batches (BatchWrites, the same code as in place), one
// request at a time in arrival order. See writerThread.ts for why.
import { parentPort, workerData } from 'node:worker_threads';
import { Kysely, SqliteDialect } from 'kysely';
import { BatchWrites } from '../batchWrites.ts';
import type { Database } from '../schema.ts';
import { runTransaction } from '../transaction.ts';
import { openConnection } from './connection.ts';
import { SQLITE_MAX_PARAMETERS } from './limits.ts';
import { encodeError, encodeOutcomes, type WriterReply, type WriterRequest, type WriterThreadData } from './writerMessages.ts';

const port = parentPort;
if (!port) throw new Error('writerThreadEntry runs only as a worker thread');
const { file, busyTimeoutMs } = workerData as WriterThreadData;
const sqlite = openConnection(file, { busyTimeoutMs });
const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
const batches = new BatchWrites({
  // BEGIN IMMEDIATE already makes a transaction the only writer of the file, audit chain included.
  dialect: { maxParameters: SQLITE_MAX_PARAMETERS, singleRowInserts: true, lockAuditChain: async () => undefined },
  write: (fn) => fn(db),
  transaction: (fn) => runTransaction(db, 'begin immediate', fn),
});

/** better-sqlite3 binds Buffers, not the plain Uint8Arrays a structured clone hands over. */
function bindable(params: unknown[]): unknown[] {
  return params.map((p) => (p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p));
}

async function handle(req: WriterRequest): Promise<WriterReply> {
  try {
    if ('close' in req) {
      await db.destroy();
      return { id: req.id, closed: true };
    }
    if ('batch' in req) {
      const outcomes = req.batch === 'actions' ? await batches.writeActions(req.items) : await batches.writeAudit(req.items);
      return { id: req.id, outcomes: encodeOutcomes<unknown>(outcomes) as never };
    }
    const stmt = sqlite.prepare(req.sql);
    if (stmt.reader) return { id: req.id, rows: stmt.all(bindable(req.params)) as unknown[] };
    const { changes, lastInsertRowid } = stmt.run(bindable(req.params));
    return { id: req.id, changes, lastInsertRowid: BigInt(lastInsertRowid) };
  } catch (err) {
    return { id: req.id, error: encodeError(err) };
  }
}

// One request after another: a batch's transaction never interleaves with another statement. A batch that
// arrives while the main thread has a transaction of its own open (BEGIN … COMMIT, several messages) waits for
// it to end; the batches themselves do not wait for each other's replies, so the main thread can send the next
// one while this one commits (the writer is never idle waiting for the busy main thread).
let tail: Promise<void> = Promise.resolve();
const deferred: WriterRequest[] = [];
async function run(req: WriterRequest): Promise<void> {
  port!.postMessage(await handle(req));
  if ('close' in req) port!.close();
}
port.on('message', (req: WriterRequest) => {
  tail = tail.then(async () => {
    if ('batch' in req && sqlite.inTransaction) {
      deferred.push(req);
      return;
    }
    await run(req);
    while (deferred.length > 0 && !sqlite.inTransaction) await run(deferred.shift()!);
  });
});

port.postMessage({ id: 0, ready: true } satisfies WriterReply);
