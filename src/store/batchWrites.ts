// The two writes that come in batches (group commit): new actions with their audit entries, and audit entries
// alone. Kept apart from KyselyStore so that the SQLite writer thread runs exactly this code on its connection
// (one message per batch instead of one per statement) while every other store runs it in place.
import type { Compilable, Kysely, QueryResult } from 'kysely';
import type { MachineAction } from '../core/actions.ts';
import { activeRequestAlreadyExists, notFound } from '../core/errors.ts';
import { auditHash, GENESIS_HASH } from './auditChain.ts';
import type { StoreDialect } from './dialect.ts';
import { inventoriedMachines, sightedPairs, sightingKey } from './fileSightings.ts';
import type { ItemOutcome } from './groupCommit.ts';
import { actionFromRow, auditToRow } from './rowMapping.ts';
import type { AuditLogTable, Database, MachineActionsTable } from './schema.ts';
import { PreparedQuery } from './preparedQuery.ts';
import { LIMIT_ONE } from './sqlLiterals.ts';
import { chunk, rowsPerStatement } from './statementChunks.ts';
import type { AuditEntry, NewAuditEntry } from './store.ts';

/** An action waiting for its group commit, with the audit entry that must commit with it. */
export interface PendingAction {
  row: MachineActionsTable;
  audit: NewAuditEntry | null;
  /** Refused with this 404 message if the machine's complete inventory lacks the file (CreateActionOptions). */
  fileNotSeenMessage: string | null;
}

/** How a batch reaches its database: the dialect's rules, a single-statement write, a transaction. */
export interface WriteRunner {
  dialect: Pick<StoreDialect, 'maxParameters' | 'lockAuditChain' | 'singleRowInserts' | 'runCompiledNow'>;
  write<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T>;
  transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T>;
}

function compareKeys(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

/** A row's values in its own key order, which is the column order its prepared insert was compiled with. */
function columnValues(row: object): unknown[] {
  return Object.values(row);
}

/** The newest audit entry's id and hash, which the next entry chains to. */
interface AuditTail {
  id: number | string | bigint;
  hash: string;
}

export class BatchWrites {
  private readonly inserts = new Map<string, PreparedQuery<unknown[], unknown>>();
  private lastAudit: PreparedQuery<unknown[], AuditTail> | null = null;

  constructor(private readonly run: WriteRunner) {}

  /** A compiled-once statement, on the dialect's direct path where it has one (inside a batch's transaction). */
  private async execute<R>(db: Kysely<Database>, q: PreparedQuery<unknown[], R>, args: unknown[]): Promise<QueryResult<R>> {
    const now = this.run.dialect.runCompiledNow;
    return now ? (now(q.bind(args)) as QueryResult<R>) : q.result(db, ...args);
  }

  /** The single-row insert into `table` for rows shaped like `sample` (same columns, same key order), compiled once. */
  private prepared(
    table: 'machine_actions' | 'audit_log',
    sample: object,
    build: (cols: Record<string, unknown>) => Compilable<unknown>,
  ): PreparedQuery<unknown[], unknown> {
    const columns = Object.keys(sample);
    const shape = `${table}(${columns.join(',')})`;
    let q = this.inserts.get(shape);
    if (!q) {
      q = new PreparedQuery<unknown[], unknown>(columns.length, (...slots) =>
        build(Object.fromEntries(columns.map((c, i) => [c, slots[i]]))) as Compilable<unknown>,
      );
      this.inserts.set(shape, q);
    }
    return q;
  }

  /**
   * Inserts a batch in one transaction (one fsync on SQLite): one multi-row statement on PostgreSQL (a round trip
   * per statement), one compiled-once single-row statement per row on SQLite (in process: binding values costs
   * less than building and compiling a multi-row query, and makes far less garbage). A row whose active_key is
   * held makes the database skip it (ON CONFLICT DO NOTHING), which is how a duplicate is detected in both
   * dialects — including a duplicate of another item in the same batch. The clause names no index: the rule is
   * held by two (one for actions about a file, one for the rest; migration 0004), and PostgreSQL takes one target
   * at most. The only other unique key is the id, which the server draws at random (a collision would read as a
   * duplicate). Any other failure is retried row by row so it is reported only for the row that caused it.
   */
  async writeActions(items: PendingAction[]): Promise<ItemOutcome<MachineAction>[]> {
    // Batches above the bind-parameter limit (not reached with the default batch sizes) take several statements.
    const perStatement = rowsPerStatement(this.run.dialect, items[0]!.row);
    const outcomes: ItemOutcome<MachineAction>[] = [];
    for (const part of chunk(items, perStatement)) {
      try {
        outcomes.push(...(await this.insertActionRows(part)));
      } catch (batchError) {
        if (part.length === 1) {
          outcomes.push({ ok: false, error: batchError });
          continue;
        }
        for (const one of part) {
          try {
            outcomes.push(...(await this.insertActionRows([one])));
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      }
    }
    return outcomes;
  }

  private async insertActionRows(items: PendingAction[]): Promise<ItemOutcome<MachineAction>[]> {
    const checksFiles = items.some((i) => i.fileNotSeenMessage !== null);
    const withAudit = items.some((i) => i.audit);
    let refused = new Set<string>();
    const insert = async (db: Kysely<Database>) => {
      refused = checksFiles ? await this.unseenFiles(db, items) : refused;
      // Rows in active_key order: concurrent batches (several nodes) then take the unique-index entries in the
      // same order, so two batches holding each other's duplicates wait instead of deadlocking.
      const rows = items
        .filter((i) => !refused.has(i.row.id))
        .map((i) => i.row)
        .sort((a, b) => compareKeys(a.active_key, b.active_key));
      const ids = new Set<string>();
      if (rows.length === 0) return ids;
      if (this.run.dialect.singleRowInserts) {
        // No RETURNING: the count of changed rows tells an insert from a skipped duplicate, and SQLite's RETURNING
        // costs ~7 µs per row (its output is staged in a temporary table), a third of the insert itself.
        const one = this.prepared('machine_actions', rows[0]!, (cols) =>
          db
            .insertInto('machine_actions')
            .values(cols as unknown as MachineActionsTable)
            .onConflict((oc) => oc.doNothing()),
        );
        for (const row of rows) {
          const { numAffectedRows } = await this.execute(db, one, columnValues(row));
          if (numAffectedRows === 1n) ids.add(row.id);
        }
      } else {
        const inserted = await db
          .insertInto('machine_actions')
          .values(rows)
          .onConflict((oc) => oc.doNothing())
          .returning('id')
          .execute();
        for (const r of inserted) ids.add(r.id);
      }
      // The audit entries of the actions actually inserted commit with them (a refused duplicate has none).
      const audits = items.filter((i) => i.audit && ids.has(i.row.id)).map((i) => i.audit!);
      if (audits.length > 0) await this.chainAudit(db, audits);
      return ids;
    };
    // One multi-row statement is atomic by itself; several single-row ones, an audit insert or the file check read
    // before the insert need a transaction.
    const atomic = withAudit || checksFiles || this.run.dialect.singleRowInserts;
    const ids = atomic ? await this.run.transaction(insert) : await this.run.write(insert);
    return items.map(({ row, fileNotSeenMessage }): ItemOutcome<MachineAction> => {
      if (ids.has(row.id)) return { ok: true, value: actionFromRow(row) };
      if (refused.has(row.id)) return { ok: false, error: notFound(fileNotSeenMessage!) };
      return { ok: false, error: activeRequestAlreadyExists() };
    });
  }

  /**
   * The ids of items that must be refused: their machine reported a complete file inventory (file_inventories) and
   * no sighting of their file (file_observations). Two reads for the whole batch, inside its transaction; none when
   * no machine of the batch has an inventory.
   */
  private async unseenFiles(db: Kysely<Database>, items: PendingAction[]): Promise<Set<string>> {
    const checked = items.filter((i) => i.fileNotSeenMessage !== null && i.row.file_identifier !== null);
    const machineIds = [...new Set(checked.map((i) => i.row.machine_id))];
    if (machineIds.length === 0) return new Set();
    const inventoried = await inventoriedMachines(db, machineIds);
    const candidates = checked.filter((i) => inventoried.has(i.row.machine_id));
    if (candidates.length === 0) return new Set();
    const seen = await sightedPairs(db, [...inventoried], [...new Set(candidates.map((i) => i.row.file_identifier!))]);
    return new Set(candidates.filter((i) => !seen.has(sightingKey(i.row.machine_id, i.row.file_identifier!))).map((i) => i.row.id));
  }

  /** Chains and inserts a batch under the audit lock: the previous hash read here cannot change until commit. */
  async writeAudit(items: NewAuditEntry[]): Promise<ItemOutcome<AuditEntry>[]> {
    const entries = await this.run.transaction((trx) => this.chainAudit(trx, items));
    return entries.map((value) => ({ ok: true, value }));
  }

  /** Appends entries to the hash chain inside the caller's write transaction. */
  private async chainAudit(trx: Kysely<Database>, items: NewAuditEntry[]): Promise<AuditEntry[]> {
    await this.run.dialect.lockAuditChain(trx);
    this.lastAudit ??= new PreparedQuery<unknown[], AuditTail>(0, () =>
      trx.selectFrom('audit_log').select(['id', 'hash']).orderBy('id', 'desc').limit(LIMIT_ONE),
    );
    const [last] = (await this.execute(trx, this.lastAudit, [])).rows;
    let id = last ? Number(last.id) : 0;
    let prevHash = last ? last.hash : GENESIS_HASH;
    const chained: AuditEntry[] = items.map((e) => {
      id += 1;
      const full: AuditEntry = { id, ...e, prevHash, hash: auditHash(prevHash, e) };
      prevHash = full.hash;
      return full;
    });
    const rows: AuditLogTable[] = chained.map(auditToRow);
    if (this.run.dialect.singleRowInserts) {
      const one = this.prepared('audit_log', rows[0]!, (cols) => trx.insertInto('audit_log').values(cols as unknown as AuditLogTable));
      for (const row of rows) await this.execute(trx, one, columnValues(row));
    } else {
      for (const part of chunk(rows, rowsPerStatement(this.run.dialect, rows[0]!))) {
        await trx.insertInto('audit_log').values(part).execute();
      }
    }
    return chained;
  }
}
