// Runs inside the writer thread: writes whole group-commit batches (BatchWrites, the same code as in place) on its
// own SQLite connection, one after another, and lends the write lock to the main thread between batches. See
// writerThread.ts for why.
import { parentPort, workerData } from 'node:worker_threads';
import { Kysely, SqliteDialect } from 'kysely';
import { BatchWrites } from '../batchWrites.ts';
import type { Database } from '../schema.ts';
import { runTransaction } from '../transaction.ts';
import { openConnection, runCompiled } from './connection.ts';
import { SQLITE_MAX_PARAMETERS } from './limits.ts';
import { encodeError, encodeOutcomes, type WriterReply, type WriterRequest, type WriterThreadData } from './writerMessages.ts';

const port = parentPort;
if (!port) throw new Error('writerThreadEntry runs only as a worker thread');
const { file, busyTimeoutMs } = workerData as WriterThreadData;
const sqlite = openConnection(file, { busyTimeoutMs });
const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
const batches = new BatchWrites({
  // BEGIN IMMEDIATE already makes a transaction the only writer of the file, audit chain included.
  dialect: {
    maxParameters: SQLITE_MAX_PARAMETERS,
    singleRowInserts: true,
    lockAuditChain: async () => undefined,
    runCompiledNow: (query) => runCompiled(sqlite, query),
  },
  write: (fn) => fn(db),
  transaction: (fn) => runTransaction(db, 'begin immediate', fn),
});

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
    throw new Error('writer thread: unexpected request');
  } catch (err) {
    return { id: req.id, error: encodeError(err) };
  }
}

// Requests run one after another, in arrival order. While the main thread holds the lease (its own transaction on
// its own connection, between `lease` and `release`), batches wait here; they never wait for each other's replies,
// so the main thread can send the next batch while this one commits.
let leased = false;
const deferred: WriterRequest[] = [];
let tail: Promise<void> = Promise.resolve();

async function run(req: WriterRequest): Promise<void> {
  port!.postMessage(await handle(req));
  if ('close' in req) port!.close();
}

port.on('message', (req: WriterRequest) => {
  tail = tail.then(async () => {
    if ('lease' in req) {
      leased = true;
      port!.postMessage({ id: req.id, granted: true } satisfies WriterReply);
      return;
    }
    if ('release' in req) {
      leased = false;
      while (deferred.length > 0 && !leased) await run(deferred.shift()!);
      return;
    }
    if (leased && 'batch' in req) {
      deferred.push(req);
      return;
    }
    if ('close' in req) {
      // Whatever was accepted is written before the connection closes.
      leased = false;
      while (deferred.length > 0) await run(deferred.shift()!);
    }
    await run(req);
  });
});

port.postMessage({ id: 0, ready: true } satisfies WriterReply);
