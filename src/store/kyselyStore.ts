// The Store, once, over Kysely: SQLite and PostgreSQL run these same queries. Dialect differences (locking,
// transaction start, batching, notifications) come in through a small StoreDialect and a Notifier.
import { sql } from 'kysely';
import type { Expression, ExpressionBuilder, Kysely, SqlBool, Updateable } from 'kysely';
import type { ActionStatus, DeviceResultRecord, MachineAction, Transition } from '../core/actions.ts';
import { ACTION_STATUSES, ACTIVE_STATUSES, HRESULT, isFinal, nextStatus } from '../core/actions.ts';
import type { Machine } from '../core/machines.ts';
import { MACHINE_ID_RE } from '../core/machines.ts';
import type { ListQuery } from '../core/query.ts';
import { millisToTimestamp, timestampToMillis } from '../core/time.ts';
import { isGuid } from '../core/validation.ts';
import { normalizeAuditEntry } from './auditChain.ts';
import type { StoreDialect } from './dialect.ts';
import { GroupCommitter, type BatchWriter } from './groupCommit.ts';
import { BatchWrites, type PendingAction } from './batchWrites.ts';
import { chunk, rowsPerStatement } from './statementChunks.ts';
import { inventoriedMachines, sightedPairs } from './fileSightings.ts';
import { runTransaction } from './transaction.ts';
import { PreparedQuery } from './preparedQuery.ts';
import { LIMIT_ONE } from './sqlLiterals.ts';
import { MachineCache, type WriteEpoch } from './machineCache.ts';
import {
  checkAction,
  checkMachine,
  checkMachineId,
  checkObservation,
  checkTimestamp,
  checkVaultItem,
  checkVisibility,
} from './inputChecks.ts';
import { ACTION_ENTITY, checkPaging, compileFilter, compileOrder, MACHINE_ENTITY } from './listQuery.ts';
import type { Notifier } from './notifier.ts';
import {
  actionFromRow,
  actionToRow,
  appFromRow,
  appToRow,
  auditFromRow,
  enrollTokenFromRow,
  enrollTokenToRow,
  json,
  machineFromRow,
  machineToRow,
  observationFromRow,
  observationToRow,
  signingKeyFromRow,
  signingKeyToRow,
  tenantFromRow,
  vaultItemFromRow,
  vaultItemToRow,
} from './rowMapping.ts';
import * as rbacQ from './rbacQueries.ts';
import * as clusterQ from './clusterQueries.ts';
import type { Database, MachineActionsTable, MachinesTable } from './schema.ts';
import type {
  AppRecord,
  AssigneeKind,
  AuditEntry,
  AuthCodeRecord,
  AuthCodeRedemption,
  CreateActionOptions,
  DeviceGroupPatch,
  DeviceGroupRecord,
  EffectiveRoleAssignment,
  EnrollTokenRecord,
  NewDeviceGroup,
  RegroupResult,
  RoleAssignmentRecord,
  RoleRecord,
  UserPatch,
  UserRecord,
  FileObservation,
  ListResult,
  NewAuditEntry,
  NodeRecord,
  ReapResult,
  SigningKeyRecord,
  Store,
  StoreNotification,
  Tenant,
  TransitionResult,
  VaultItemRecord,
  Visibility,
} from './store.ts';

/** Consecutive sightings of one IP on one machine closer than this form one interval (findbyip's ±15 min). */
const IP_INTERVAL_GAP_MS = 15 * 60 * 1000;

/** A lost compare-and-set is retried; status only moves forward, so more retries than statuses means a bug. */
const MAX_TRANSITION_ATTEMPTS = 16;

const ACTIVE: ActionStatus[] = [...ACTIVE_STATUSES];
const ACTIVE_LITERALS = sql.join(ACTIVE.map((st) => sql.lit(st)));

type ActionPatch = Parameters<Store['transitionAction']>[3];

function patchColumns(patch: ActionPatch): Updateable<MachineActionsTable> {
  const set: Updateable<MachineActionsTable> = {};
  if (!patch) return set;
  if (patch.errorHResult !== undefined) {
    if (!Number.isSafeInteger(patch.errorHResult)) throw new TypeError('errorHResult must be an integer');
    set.error_h_result = patch.errorHResult;
  }
  if (patch.cancellationRequestor !== undefined) set.cancellation_requestor = patch.cancellationRequestor;
  if (patch.cancellationComment !== undefined) set.cancellation_comment = patch.cancellationComment;
  if (patch.cancellationDateTimeUtc !== undefined) {
    checkTimestamp('cancellationDateTimeUtc', patch.cancellationDateTimeUtc);
    set.cancellation_date_time_utc = patch.cancellationDateTimeUtc;
  }
  return set;
}

type HotReads = ReturnType<typeof hotReads>;

function hotReads(db: Kysely<Database>) {
  return {
    machineById: new PreparedQuery<[id: string], MachinesTable>(1, (id) =>
      db.selectFrom('machines').selectAll().where('id', '=', id),
    ),
    actionById: new PreparedQuery<[id: string], MachineActionsTable>(1, (id) =>
      db.selectFrom('machine_actions').selectAll().where('id', '=', id),
    ),
  };
}

export interface KyselyStoreOptions {
  /** Who writes the group-committed batches (SQLite: the writer thread, in one message); default: in place. */
  batches?: Pick<BatchWrites, 'writeActions' | 'writeAudit'> & { close(): Promise<void> };
  /**
   * Embedded databases: a number that changes whenever another connection commits (SQLite's data_version). With
   * it, machines are kept between reads (MachineCache); without it (PostgreSQL, several nodes), never.
   */
  changeCounter?: () => number;
  /** With changeCounter: shared by every store on the same file in this process (see MachineCache). */
  writeEpoch?: WriteEpoch;
  /** Runs after the last write, before the connection closes (SQLite: back to synchronous=FULL, walDurability.ts). */
  beforeClose?: () => Promise<void>;
}

export class KyselyStore implements Store {
  readonly kind: 'sqlite' | 'postgres';
  private readonly writeActions: BatchWriter<PendingAction, MachineAction>;
  private readonly closeBatches: () => Promise<void>;
  private readonly actionCommitter: GroupCommitter<PendingAction, MachineAction> | null;
  private readonly auditCommitter: GroupCommitter<NewAuditEntry, AuditEntry>;
  private closing: Promise<void> | null = null;
  private hotReads: HotReads | null = null;
  private readonly machines: MachineCache | null;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: StoreDialect,
    private readonly notifier: Notifier,
    opts: KyselyStoreOptions = {},
  ) {
    this.kind = dialect.kind;
    this.machines = opts.changeCounter
      ? new MachineCache(opts.changeCounter, opts.writeEpoch ?? { value: 0 })
      : null;
    const batches =
      opts.batches ??
      // Batches write actions and audit entries only, never machines: they leave cached machine rows alone.
      new BatchWrites({
        dialect,
        write: (fn) => this.dialect.serializeWrites(() => fn(this.db)),
        transaction: (fn) => this.rawTransaction(fn),
      });
    this.writeActions = (items) => batches.writeActions(items);
    const closeBatches = opts.batches ? () => opts.batches!.close() : async () => undefined;
    this.closeBatches = opts.beforeClose ? () => closeBatches().then(opts.beforeClose) : closeBatches;
    this.actionCommitter = dialect.actionGroupCommit ? new GroupCommitter(this.writeActions, dialect.actionGroupCommit) : null;
    this.auditCommitter = new GroupCommitter((items) => batches.writeAudit(items), dialect.auditGroupCommit);
  }

  /** The reads every POST StopAndQuarantineFile (and every device result) makes, compiled once. */
  private get hot(): HotReads {
    return (this.hotReads ??= hotReads(this.db));
  }

  // ---- write plumbing -------------------------------------------------------------------------------------

  /** A single-statement write (atomic by itself). */
  private write<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.invalidating(() => this.dialect.serializeWrites(() => fn(this.db)));
  }

  /** Several statements, all or nothing, on one connection. `fn` must use the connection it is given. */
  private transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.invalidating(() => this.rawTransaction(fn));
  }

  private rawTransaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.dialect.serializeWrites(() => runTransaction(this.db, this.dialect.beginWrite, fn));
  }

  /** Any write may change a machine: cached machines go before it starts and again once it has committed. */
  private async invalidating<T>(write: () => Promise<T>): Promise<T> {
    this.machines?.clear();
    try {
      return await write();
    } finally {
      this.machines?.clear();
    }
  }

  // ---- tenant, apps, keys, enroll tokens -------------------------------------------------------------------

  async getOrCreateTenant(create: () => Tenant): Promise<Tenant> {
    const existing = await this.db.selectFrom('tenant').selectAll().executeTakeFirst();
    if (existing) return tenantFromRow(existing);
    const t = create();
    await this.write((db) =>
      db
        .insertInto('tenant')
        .values({ id: t.id, singleton: 1, name: t.name, created_at: t.createdAt })
        .onConflict((oc) => oc.doNothing())
        .execute(),
    );
    // Whoever inserted first (this node or another) owns the tenant.
    return tenantFromRow(await this.db.selectFrom('tenant').selectAll().executeTakeFirstOrThrow());
  }

  async createApp(app: AppRecord): Promise<void> {
    if (!isGuid(app.clientId) || !isGuid(app.tenantId)) throw new TypeError('app clientId and tenantId must be GUIDs');
    await this.write((db) => db.insertInto('apps').values(appToRow(app)).execute());
  }

  async getApp(clientId: string): Promise<AppRecord | null> {
    const r = await this.db.selectFrom('apps').selectAll().where('client_id', '=', clientId).executeTakeFirst();
    return r ? appFromRow(r) : null;
  }

  async listApps(): Promise<AppRecord[]> {
    const rows = await this.db.selectFrom('apps').selectAll().orderBy('created_at').orderBy('client_id').execute();
    return rows.map(appFromRow);
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    const rows = await this.db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
    return rows.map(signingKeyFromRow);
  }

  async insertSigningKey(key: SigningKeyRecord): Promise<void> {
    // The partial unique index allows one active key; a node that lost the race keeps the winner's key.
    await this.write((db) =>
      db
        .insertInto('signing_keys')
        .values(signingKeyToRow(key))
        .onConflict((oc) => oc.doNothing())
        .execute(),
    );
  }

  async retireSigningKey(kid: string, at: string): Promise<void> {
    await this.write((db) =>
      db
        .updateTable('signing_keys')
        .set({ status: 'retired', retired_at: at })
        .where('kid', '=', kid)
        .where('status', '=', 'active')
        .execute(),
    );
  }

  async createEnrollToken(t: EnrollTokenRecord): Promise<void> {
    if (t.maxUses !== null && (!Number.isSafeInteger(t.maxUses) || t.maxUses < 0)) {
      throw new TypeError('maxUses must be a non-negative integer or null');
    }
    checkTimestamp('createdAt', t.createdAt);
    checkTimestamp('expiresAt', t.expiresAt);
    checkTimestamp('revokedAt', t.revokedAt);
    await this.write((db) => db.insertInto('enroll_tokens').values(enrollTokenToRow(t)).execute());
  }

  async findEnrollTokenByHash(tokenHash: string): Promise<EnrollTokenRecord | null> {
    const r = await this.db.selectFrom('enroll_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r ? enrollTokenFromRow(r) : null;
  }

  async consumeEnrollToken(tokenHash: string, now: string): Promise<EnrollTokenRecord | null> {
    checkTimestamp('now', now);
    // One statement decides and counts, so concurrent enrollments can never exceed max_uses.
    const r = await this.write((db) =>
      db
        .updateTable('enroll_tokens')
        .set((eb) => ({ uses: eb('uses', '+', 1) }))
        .where('token_hash', '=', tokenHash)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .where((eb) => eb.or([eb('max_uses', 'is', null), eb('uses', '<', eb.ref('max_uses'))]))
        .returningAll()
        .executeTakeFirst(),
    );
    return r ? enrollTokenFromRow(r) : null;
  }

  /** true when the token exists (it is revoked now, or already was); false when it is unknown. */
  async revokeEnrollToken(id: string, at: string): Promise<boolean> {
    checkTimestamp('at', at);
    const r = await this.write((db) =>
      db
        .updateTable('enroll_tokens')
        .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(at)) }))
        .where('id', '=', id)
        .executeTakeFirst(),
    );
    return Number(r.numUpdatedRows) > 0;
  }

  // ---- machines --------------------------------------------------------------------------------------------

  /** Writes the machine row and its tag rows (the mirror that `machineTags/any` queries). */
  private async putMachine(trx: Kysely<Database>, m: Machine): Promise<void> {
    const row = machineToRow(m);
    const { id: _id, ...rest } = row;
    await trx
      .insertInto('machines')
      .values(row)
      .onConflict((oc) =>
        oc.column('id').doUpdateSet((eb) => {
          const set: Record<string, unknown> = {};
          for (const col of Object.keys(rest)) set[col] = eb.ref(`excluded.${col as keyof typeof rest}`);
          return set as Updateable<MachinesTable>;
        }),
      )
      .execute();
    await trx.deleteFrom('machine_tags').where('machine_id', '=', row.id).execute();
    const tags = [...new Set(m.machineTags)];
    for (const part of chunk(tags, 1000)) {
      await trx
        .insertInto('machine_tags')
        .values(part.map((tag) => ({ machine_id: row.id, tag })))
        .execute();
    }
  }

  /** The machine as the device-group rules place it, under the shared rules lock (held until commit). */
  private async placeByRules(trx: Kysely<Database>, m: Machine): Promise<Machine> {
    await this.dialect.lockDeviceGroups(trx, 'shared');
    return rbacQ.placed(m, await rbacQ.rankedGroups(trx));
  }

  async upsertMachine(m: Machine): Promise<void> {
    checkMachine(m);
    await this.transaction(async (trx) => this.putMachine(trx, await this.placeByRules(trx, m)));
  }

  async getMachine(id: string): Promise<Machine | null> {
    const key = id.toLowerCase();
    const cached = this.machines?.get(key);
    if (cached && 'machine' in cached) return cached.machine;
    const [r] = await this.hot.machineById.execute(this.db, key);
    if (!r) return null;
    const m = machineFromRow(r);
    if (cached) this.machines!.set(key, m, cached.ticket);
    return m;
  }

  async resolveMachine(idOrName: string, visibility?: Visibility): Promise<Machine | null> {
    if (typeof idOrName !== 'string' || idOrName === '') return null;
    checkVisibility(visibility);
    if (visibility && visibility.rbacGroupIds.length === 0) return null;
    const visible = (m: Machine | null) => (m && (!visibility || visibility.rbacGroupIds.includes(m.rbacGroupId)) ? m : null);
    if (MACHINE_ID_RE.test(idOrName)) {
      const byId = visible(await this.getMachine(idOrName));
      if (byId) return byId;
    }
    // lower() on both sides, in SQL: the same (ASCII) case folding as the expression indexes, in both databases.
    // Among the machines the caller may see: a name shared with a machine outside their groups still resolves.
    for (const column of ['aad_device_id', 'computer_dns_name'] as const) {
      let q = this.db.selectFrom('machines').selectAll().where(sql<SqlBool>`lower(${sql.ref(column)}) = lower(${idOrName})`);
      if (visibility) q = q.where('rbac_group_id', 'in', visibility.rbacGroupIds);
      const r = await q.orderBy('last_seen', 'desc').orderBy('id').limit(LIMIT_ONE).executeTakeFirst();
      if (r) return machineFromRow(r);
    }
    return null;
  }

  async listMachines(q: ListQuery, visibility?: Visibility): Promise<ListResult<Machine>> {
    checkPaging(q);
    checkVisibility(visibility);
    if (visibility && visibility.rbacGroupIds.length === 0) return { items: [], count: q.count ? 0 : null };
    let base = this.db.selectFrom('machines as m');
    if (visibility) base = base.where('m.rbac_group_id', 'in', visibility.rbacGroupIds);
    if (q.filter) base = base.where(compileFilter(MACHINE_ENTITY, q.filter));
    let page = base.selectAll('m');
    for (const term of compileOrder(MACHINE_ENTITY, q.orderBy)) page = page.orderBy(term);
    const rows = await page.limit(q.top).offset(q.skip).execute();
    const count = q.count
      ? Number((await base.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
      : null;
    return { items: rows.map(machineFromRow), count };
  }

  async updateMachine(id: string, patch: Partial<Machine>): Promise<Machine | null> {
    const key = checkMachineId(id);
    return this.transaction(async (trx) => {
      // The rules lock first, then the row: the order a device-group change takes them in too.
      await this.dialect.lockDeviceGroups(trx, 'shared');
      const current = await trx
        .selectFrom('machines')
        .selectAll()
        .where('id', '=', key)
        .$if(this.dialect.rowLocks, (qb) => qb.forUpdate())
        .executeTakeFirst();
      if (!current) return null;
      // An absent (undefined) patch field keeps the stored value; the id never changes.
      const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
      const merged: Machine = rbacQ.placed({ ...machineFromRow(current), ...defined, id: current.id }, await rbacQ.rankedGroups(trx));
      checkMachine(merged);
      await this.putMachine(trx, merged);
      return merged;
    });
  }

  async recordMachineIp(machineId: string, ip: string, at: string): Promise<void> {
    const mid = checkMachineId(machineId);
    if (typeof ip !== 'string' || ip === '') throw new TypeError('ip must be a non-empty string');
    checkTimestamp('at', at);
    const horizon = millisToTimestamp(timestampToMillis(at) - IP_INTERVAL_GAP_MS);
    await this.transaction(async (trx) => {
      const open = await trx
        .selectFrom('machine_ips')
        .select(['first_seen', 'last_seen'])
        .where('machine_id', '=', mid)
        .where('ip', '=', ip)
        .where('first_seen', '<=', at)
        .where('last_seen', '>=', horizon)
        .orderBy('last_seen', 'desc')
        .limit(LIMIT_ONE)
        .executeTakeFirst();
      if (open) {
        if (open.last_seen < at) {
          await trx
            .updateTable('machine_ips')
            .set({ last_seen: at })
            .where('machine_id', '=', mid)
            .where('ip', '=', ip)
            .where('first_seen', '=', open.first_seen)
            .execute();
        }
        return;
      }
      await trx
        .insertInto('machine_ips')
        .values({ machine_id: mid, ip, first_seen: at, last_seen: at })
        .onConflict((oc) => oc.doNothing())
        .execute();
    });
  }

  async findMachinesByIp(ip: string, from: string, to: string, visibility?: Visibility): Promise<Machine[]> {
    checkTimestamp('from', from);
    checkTimestamp('to', to);
    checkVisibility(visibility);
    if (visibility && visibility.rbacGroupIds.length === 0) return [];
    return this.visibleMachinesWhere(
      (eb) =>
        eb.exists(
          eb
            .selectFrom('machine_ips as i')
            .select(sql`1`.as('one'))
            .whereRef('i.machine_id', '=', 'm.id')
            .where('i.ip', '=', ip)
            .where('i.first_seen', '<=', to)
            .where('i.last_seen', '>=', from),
        ),
      visibility,
    );
  }

  /** Machines matching `where` among those the caller may see, most recently seen first. */
  private async visibleMachinesWhere(
    where: (eb: ExpressionBuilder<Database & { m: MachinesTable }, 'm'>) => Expression<SqlBool>,
    visibility: Visibility | undefined,
  ): Promise<Machine[]> {
    const rows = await this.db
      .selectFrom('machines as m')
      .selectAll('m')
      .where(where)
      .$if(visibility !== undefined, (qb) => qb.where('m.rbac_group_id', 'in', visibility!.rbacGroupIds))
      .orderBy('m.last_seen', 'desc')
      .orderBy('m.id')
      .execute();
    return rows.map(machineFromRow);
  }

  // ---- machine actions -------------------------------------------------------------------------------------

  async createAction(
    action: MachineAction,
    duplicateKey: string,
    audit?: NewAuditEntry,
    opts?: CreateActionOptions,
  ): Promise<MachineAction> {
    checkAction(action, duplicateKey);
    const notSeen = opts?.fileNotSeenMessage;
    if (notSeen !== undefined && !action.relatedFileInfo) throw new TypeError('fileNotSeenMessage needs an action about a file');
    const item: PendingAction = {
      row: actionToRow(action, isFinal(action.status) ? null : duplicateKey),
      audit: audit ? normalizeAuditEntry(audit) : null,
      fileNotSeenMessage: notSeen ?? null,
    };
    if (this.actionCommitter) return this.actionCommitter.submit(item);
    const [outcome] = await this.writeActions([item]);
    if (!outcome) throw new Error('createAction: no outcome');
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  private async getActionRow(id: string): Promise<MachineActionsTable | undefined> {
    const [r] = await this.hot.actionById.execute(this.db, id.toLowerCase());
    return r;
  }

  async getAction(id: string): Promise<MachineAction | null> {
    const r = await this.getActionRow(id);
    return r ? actionFromRow(r) : null;
  }

  async listActions(q: ListQuery, visibility?: Visibility): Promise<ListResult<MachineAction>> {
    checkPaging(q);
    checkVisibility(visibility);
    if (visibility && visibility.rbacGroupIds.length === 0) return { items: [], count: q.count ? 0 : null };
    let base = this.db.selectFrom('machine_actions as a');
    if (visibility) {
      // An action is visible through its machine's device group.
      base = base.where((eb) =>
        eb.exists(
          eb
            .selectFrom('machines as vm')
            .select(sql`1`.as('one'))
            .whereRef('vm.id', '=', 'a.machine_id')
            .where('vm.rbac_group_id', 'in', visibility.rbacGroupIds),
        ),
      );
    }
    if (q.filter) base = base.where(compileFilter(ACTION_ENTITY, q.filter));
    let page = base.selectAll('a');
    for (const term of compileOrder(ACTION_ENTITY, q.orderBy)) page = page.orderBy(term);
    const rows = await page.limit(q.top).offset(q.skip).execute();
    const count = q.count
      ? Number((await base.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
      : null;
    return { items: rows.map(actionFromRow), count };
  }

  async transitionAction(id: string, t: Transition, at: string, patch?: ActionPatch): Promise<TransitionResult | null> {
    checkTimestamp('at', at);
    return this.transitionWith(id, t, at, patchColumns(patch));
  }

  async applyDeviceResult(id: string, at: string, r: Omit<DeviceResultRecord, 'applied'>): Promise<TransitionResult | null> {
    checkTimestamp('at', at);
    checkTimestamp('reportedAt', r.reportedAt);
    const record = (applied: boolean): DeviceResultRecord => ({
      outcome: r.outcome,
      errorHResult: r.errorHResult,
      reason: r.reason,
      reportedAt: r.reportedAt,
      applied,
      detail: r.detail,
    });
    const moved = await this.transitionWith(id, { kind: 'deviceResult', outcome: r.outcome }, at, {
      ...patchColumns({ errorHResult: r.errorHResult }),
      device_result: json(record(true)),
    });
    if (moved && !moved.changed) await this.recordDeviceResult(id, record(false));
    return moved;
  }

  /** The lifecycle rule as a compare-and-set on the status; `extra` columns are written only on change. */
  private async transitionWith(
    id: string,
    t: Transition,
    at: string,
    extra: Updateable<MachineActionsTable>,
  ): Promise<TransitionResult | null> {
    for (let attempt = 0; attempt < MAX_TRANSITION_ATTEMPTS; attempt++) {
      const current = await this.getActionRow(id);
      if (!current) return null;
      const next = nextStatus(current.status as ActionStatus, t);
      if (next === null) return { action: actionFromRow(current), changed: false };
      const set: Updateable<MachineActionsTable> = {
        ...extra,
        status: next,
        last_update_date_time_utc: at,
        ...(isFinal(next) ? { active_key: null } : {}),
        // errorHResult is never 0 on Failed/TimeOut (wire decision D5), even when the caller gives none.
        ...(next === 'TimeOut' && extra.error_h_result === undefined ? { error_h_result: HRESULT.timeout } : {}),
        ...(next === 'Failed' && extra.error_h_result === undefined ? { error_h_result: HRESULT.fail } : {}),
      };
      // Compare-and-set on the status read above: if another writer moved it first, read again and re-decide.
      const updated = await this.write((db) =>
        db
          .updateTable('machine_actions')
          .set(set)
          .where('id', '=', current.id)
          .where('status', '=', current.status)
          .returningAll()
          .executeTakeFirst(),
      );
      if (updated) return { action: actionFromRow(updated), changed: true };
    }
    throw new Error(`transitionAction ${id}: too many concurrent changes`);
  }

  async recordDeviceResult(id: string, result: DeviceResultRecord): Promise<void> {
    await this.write((db) =>
      db
        .updateTable('machine_actions')
        .set({ device_result: json(result) })
        .where('id', '=', id.toLowerCase())
        .execute(),
    );
  }

  async activeActionsForMachine(machineId: string): Promise<MachineAction[]> {
    const rows = await this.db
      .selectFrom('machine_actions')
      .selectAll()
      .where('machine_id', '=', machineId.toLowerCase())
      .where('status', 'in', ACTIVE)
      .orderBy('creation_date_time_utc')
      .orderBy('id')
      .execute();
    return rows.map(actionFromRow);
  }

  async expireDueActions(now: string, limit: number): Promise<MachineAction[]> {
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new TypeError('limit must be a positive integer');
    checkTimestamp('now', now);
    // One statement: the rows it changes are the rows it returns, so each expiry is reported exactly once. On
    // PostgreSQL, SKIP LOCKED lets several nodes expire disjoint rows at once instead of queueing on each other.
    const rows = await this.write((db) =>
      db
        .updateTable('machine_actions')
        .set({ status: 'TimeOut', error_h_result: HRESULT.timeout, last_update_date_time_utc: now, active_key: null })
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('machine_actions as due')
            .select('due.id')
            // Literal statuses, not parameters: only then can SQLite prove the partial expiry index applies.
            .where(sql<SqlBool>`due.status in (${ACTIVE_LITERALS})`)
            .where('due.expires_at', '<=', now)
            .orderBy('due.expires_at')
            .orderBy('due.id')
            .limit(limit)
            .$if(this.dialect.rowLocks, (qb) => qb.forUpdate().skipLocked()),
        )
        .where('status', 'in', ACTIVE)
        .returningAll()
        .execute(),
    );
    const byExpiry = (a: MachineAction, b: MachineAction) =>
      a.expiresAt < b.expiresAt ? -1 : a.expiresAt > b.expiresAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    return rows.map(actionFromRow).sort(byExpiry);
  }

  async countActionsByStatus(): Promise<Record<ActionStatus, number>> {
    const rows = await this.db
      .selectFrom('machine_actions')
      .select(['status', (eb) => eb.fn.countAll().as('n')])
      .groupBy('status')
      .execute();
    const out = Object.fromEntries(ACTION_STATUSES.map((s) => [s, 0])) as Record<ActionStatus, number>;
    for (const r of rows) out[r.status as ActionStatus] = Number(r.n);
    return out;
  }

  // ---- file observations -----------------------------------------------------------------------------------

  async recordFileObservations(machineId: string, obs: FileObservation[], completeInventory: boolean): Promise<void> {
    const mid = checkMachineId(machineId);
    obs.forEach(checkObservation);
    // The last report of a (sha1, path) wins; one statement must not touch the same row twice (PostgreSQL).
    const byKey = new Map<string, ReturnType<typeof observationToRow>>();
    for (const o of obs) {
      const row = observationToRow(mid, o);
      byKey.set(`${row.sha1}\n${row.path}`, row);
    }
    const rows = [...byKey.values()];
    await this.transaction(async (trx) => {
      if (completeInventory) {
        // A complete inventory replaces what we knew: what is absent now is "not seen" on this machine.
        await trx.deleteFrom('file_observations').where('machine_id', '=', mid).execute();
        const completedAt = millisToTimestamp(Date.now());
        await trx
          .insertInto('file_inventories')
          .values({ machine_id: mid, completed_at: completedAt })
          .onConflict((oc) => oc.column('machine_id').doUpdateSet({ completed_at: completedAt }))
          .execute();
      }
      if (rows.length === 0) return;
      for (const part of chunk(rows, rowsPerStatement(this.dialect, rows[0]!))) {
        await trx
          .insertInto('file_observations')
          .values(part)
          .onConflict((oc) =>
            oc.columns(['machine_id', 'sha1', 'path']).doUpdateSet((eb) => ({
              sha256: eb.ref('excluded.sha256'),
              size: eb.ref('excluded.size'),
              signer: eb.ref('excluded.signer'),
              trusted: eb.ref('excluded.trusted'),
              seen_at: eb.ref('excluded.seen_at'),
            })),
          )
          .execute();
      }
    });
  }

  async machinesForFile(sha1: string, visibility?: Visibility): Promise<Machine[]> {
    checkVisibility(visibility);
    if (visibility && visibility.rbacGroupIds.length === 0) return [];
    return this.visibleMachinesWhere(
      (eb) =>
        eb.exists(
          eb
            .selectFrom('file_observations as o')
            .select(sql`1`.as('one'))
            .whereRef('o.machine_id', '=', 'm.id')
            .where('o.sha1', '=', sha1.toLowerCase()),
        ),
      visibility,
    );
  }

  async fileSeenOnMachine(machineId: string, sha1: string): Promise<'seen' | 'notSeen' | 'unknown'> {
    const m = machineId.toLowerCase();
    if ((await sightedPairs(this.db, [m], [sha1.toLowerCase()])).size > 0) return 'seen';
    return (await inventoriedMachines(this.db, [m])).has(m) ? 'notSeen' : 'unknown';
  }

  async fileObservationsForMachine(machineId: string, sha1: string): Promise<FileObservation[]> {
    const rows = await this.db
      .selectFrom('file_observations')
      .selectAll()
      .where('machine_id', '=', machineId.toLowerCase())
      .where('sha1', '=', sha1.toLowerCase())
      .orderBy('path')
      .execute();
    return rows.map(observationFromRow);
  }

  // ---- quarantine vault ------------------------------------------------------------------------------------

  async upsertVaultItems(items: VaultItemRecord[]): Promise<void> {
    items.forEach(checkVaultItem);
    const byKey = new Map<string, ReturnType<typeof vaultItemToRow>>();
    for (const v of items) {
      const row = vaultItemToRow(v);
      byKey.set(`${row.machine_id}\n${row.item_id}`, row);
    }
    const rows = [...byKey.values()];
    if (rows.length === 0) return;
    await this.transaction(async (trx) => {
      for (const part of chunk(rows, rowsPerStatement(this.dialect, rows[0]!))) {
        await trx
          .insertInto('vault_items')
          .values(part)
          .onConflict((oc) =>
            oc.columns(['machine_id', 'item_id']).doUpdateSet((eb) => ({
              action_id: eb.ref('excluded.action_id'),
              sha1: eb.ref('excluded.sha1'),
              sha256: eb.ref('excluded.sha256'),
              original_path: eb.ref('excluded.original_path'),
              size: eb.ref('excluded.size'),
              quarantined_at: eb.ref('excluded.quarantined_at'),
              state: eb.ref('excluded.state'),
              detail: eb.ref('excluded.detail'),
            })),
          )
          .execute();
      }
    });
  }

  async listVaultItems(machineId: string): Promise<VaultItemRecord[]> {
    const rows = await this.db
      .selectFrom('vault_items')
      .selectAll()
      .where('machine_id', '=', machineId.toLowerCase())
      .orderBy('quarantined_at')
      .orderBy('item_id')
      .execute();
    return rows.map(vaultItemFromRow);
  }

  // ---- audit -----------------------------------------------------------------------------------------------

  async appendAudit(entry: NewAuditEntry): Promise<AuditEntry> {
    // Checked and normalized before queueing, so a bad entry fails alone instead of failing its whole batch.
    return this.auditCommitter.submit(normalizeAuditEntry(entry));
  }

  async listAudit(q: { top: number; skip: number; since?: string; action?: string }): Promise<AuditEntry[]> {
    if (!Number.isSafeInteger(q.top) || q.top < 0) throw new TypeError('top must be a non-negative integer');
    if (!Number.isSafeInteger(q.skip) || q.skip < 0) throw new TypeError('skip must be a non-negative integer');
    if (q.since !== undefined) checkTimestamp('since', q.since);
    const rows = await this.db
      .selectFrom('audit_log')
      .selectAll()
      .$if(q.since !== undefined, (qb) => qb.where('at', '>=', q.since!))
      .$if(q.action !== undefined, (qb) => qb.where('action', '=', q.action!))
      .orderBy('id')
      .limit(q.top)
      .offset(q.skip)
      .execute();
    return rows.map(auditFromRow);
  }

  // ---- users, roles, role assignments ------------------------------------------------------------------------

  async createUser(u: UserRecord): Promise<void> {
    checkTimestamp('createdAt', u.createdAt);
    checkTimestamp('updatedAt', u.updatedAt);
    checkTimestamp('lockedUntil', u.lockedUntil);
    if (!isGuid(u.oid)) throw new TypeError('user oid must be a GUID');
    await this.write((db) => rbacQ.insertUser(db, u));
  }

  getUser(oid: string): Promise<UserRecord | null> {
    return rbacQ.selectUser(this.db, oid);
  }

  findUserByUpn(upn: string): Promise<UserRecord | null> {
    return rbacQ.selectUserByUpn(this.db, upn);
  }

  listUsers(): Promise<UserRecord[]> {
    return rbacQ.selectUsers(this.db);
  }

  async updateUser(oid: string, patch: UserPatch, at: string): Promise<UserRecord | null> {
    checkTimestamp('at', at);
    if (patch.lockedUntil !== undefined) checkTimestamp('lockedUntil', patch.lockedUntil);
    if (patch.failedLogins !== undefined && (!Number.isSafeInteger(patch.failedLogins) || patch.failedLogins < 0)) {
      throw new TypeError('failedLogins must be a non-negative integer');
    }
    return this.write((db) => rbacQ.patchUser(db, oid, patch, at));
  }

  deleteUser(oid: string): Promise<boolean> {
    return this.transaction((trx) => rbacQ.removeUser(trx, oid));
  }

  async recordLoginFailure(oid: string, at: string, maxFailures: number, lockUntil: string): Promise<UserRecord | null> {
    checkTimestamp('at', at);
    checkTimestamp('lockUntil', lockUntil);
    if (!Number.isSafeInteger(maxFailures) || maxFailures < 1) throw new TypeError('maxFailures must be a positive integer');
    return this.transaction((trx) => rbacQ.countLoginFailure(trx, oid, maxFailures, lockUntil));
  }

  async recordLoginSuccess(oid: string, at: string): Promise<void> {
    checkTimestamp('at', at);
    await this.write((db) => rbacQ.clearLoginFailures(db, oid));
  }

  listRoles(): Promise<RoleRecord[]> {
    return rbacQ.selectRoles(this.db);
  }

  getRole(id: string): Promise<RoleRecord | null> {
    return rbacQ.selectRole(this.db, id);
  }

  findRoleByName(name: string): Promise<RoleRecord | null> {
    return rbacQ.selectRoleByName(this.db, name);
  }

  async createRole(r: RoleRecord): Promise<void> {
    if (!isGuid(r.id)) throw new TypeError('role id must be a GUID');
    checkTimestamp('createdAt', r.createdAt);
    checkTimestamp('updatedAt', r.updatedAt);
    await this.write((db) => rbacQ.insertRole(db, { ...r, builtIn: false }));
  }

  async updateRole(
    id: string,
    patch: Partial<Pick<RoleRecord, 'name' | 'description' | 'permissions'>>,
    at: string,
  ): Promise<RoleRecord | null> {
    checkTimestamp('at', at);
    return this.transaction((trx) => rbacQ.patchRole(trx, id, patch, at));
  }

  deleteRole(id: string): Promise<boolean> {
    return this.transaction((trx) => rbacQ.removeRole(trx, id));
  }

  async upsertRoleAssignment(a: RoleAssignmentRecord): Promise<RoleAssignmentRecord> {
    if (!isGuid(a.id)) throw new TypeError('role assignment id must be a GUID');
    if (!['user', 'group', 'upn'].includes(a.assigneeKind)) throw new TypeError(`invalid assignee kind: ${String(a.assigneeKind)}`);
    if (typeof a.assignee !== 'string' || a.assignee === '') throw new TypeError('assignee must be a non-empty string');
    if (!a.deviceGroupIds.every((g) => Number.isSafeInteger(g))) throw new TypeError('deviceGroupIds must be integers');
    checkTimestamp('createdAt', a.createdAt);
    checkTimestamp('updatedAt', a.updatedAt);
    return this.transaction(async (trx) => {
      // Shared with machine writes: a device group cannot vanish between its check and the assignment's insert.
      await this.dialect.lockDeviceGroups(trx, 'shared');
      return rbacQ.upsertAssignment(trx, a);
    });
  }

  listRoleAssignments(filter?: { assigneeKind?: AssigneeKind; assignee?: string; roleId?: string }): Promise<RoleAssignmentRecord[]> {
    return rbacQ.selectAssignments(this.db, filter);
  }

  getRoleAssignment(id: string): Promise<RoleAssignmentRecord | null> {
    return rbacQ.selectAssignment(this.db, id);
  }

  deleteRoleAssignment(id: string): Promise<boolean> {
    return this.transaction((trx) => rbacQ.removeAssignment(trx, id));
  }

  assignmentsFor(who: { userOid?: string; groups?: readonly string[]; upn?: string }): Promise<EffectiveRoleAssignment[]> {
    return rbacQ.effectiveAssignments(this.db, who);
  }

  // ---- device groups -------------------------------------------------------------------------------------------

  listDeviceGroups(): Promise<DeviceGroupRecord[]> {
    return rbacQ.selectDeviceGroups(this.db);
  }

  getDeviceGroup(id: number): Promise<DeviceGroupRecord | null> {
    if (!Number.isSafeInteger(id)) return Promise.resolve(null);
    return rbacQ.selectDeviceGroup(this.db, id);
  }

  /** A group change and the re-placement of every machine, in one transaction under the exclusive rules lock. */
  private regroupTransaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.transaction(async (trx) => {
      await this.dialect.lockDeviceGroups(trx, 'exclusive');
      return fn(trx);
    });
  }

  async createDeviceGroup(g: NewDeviceGroup, at: string): Promise<{ group: DeviceGroupRecord } & RegroupResult> {
    checkTimestamp('at', at);
    if (g.rank !== null && !Number.isSafeInteger(g.rank)) throw new TypeError('rank must be an integer or null');
    return this.regroupTransaction((trx) => rbacQ.insertDeviceGroup(trx, g, at));
  }

  async updateDeviceGroup(id: number, patch: DeviceGroupPatch, at: string): Promise<({ group: DeviceGroupRecord } & RegroupResult) | null> {
    checkTimestamp('at', at);
    if (!Number.isSafeInteger(id)) return null;
    if (patch.rank !== undefined && !Number.isSafeInteger(patch.rank)) throw new TypeError('rank must be an integer');
    return this.regroupTransaction((trx) => rbacQ.patchDeviceGroup(trx, id, patch, at));
  }

  async deleteDeviceGroup(id: number): Promise<RegroupResult | null> {
    if (!Number.isSafeInteger(id)) return null;
    const at = millisToTimestamp(Date.now());
    return this.regroupTransaction((trx) => rbacQ.removeDeviceGroup(trx, id, at));
  }

  // ---- authorization codes -------------------------------------------------------------------------------------

  async createAuthCode(c: AuthCodeRecord): Promise<void> {
    checkTimestamp('createdAt', c.createdAt);
    checkTimestamp('expiresAt', c.expiresAt);
    if (!/^[0-9a-f]{64}$/.test(c.codeHash)) throw new TypeError('codeHash must be sha256 hex');
    await this.transaction((trx) => rbacQ.insertAuthCode(trx, c));
  }

  async redeemAuthCode(codeHash: string, now: string): Promise<AuthCodeRedemption> {
    checkTimestamp('now', now);
    return this.write((db) => rbacQ.redeemCode(db, codeHash, now));
  }

  // ---- cluster: nodes and device connections ------------------------------------------------------------------

  async heartbeatNode(n: NodeRecord): Promise<'registered' | 'refreshed'> {
    clusterQ.checkNodeId(n.nodeId);
    checkTimestamp('startedAt', n.startedAt);
    clusterQ.checkMillis('heartbeatMs', n.heartbeatMs);
    return this.transaction((trx) => clusterQ.upsertNode(trx, n));
  }

  async listNodes(): Promise<NodeRecord[]> {
    return clusterQ.selectNodes(this.db);
  }

  async removeNode(nodeId: string): Promise<void> {
    clusterQ.checkNodeId(nodeId);
    await this.write((db) => clusterQ.deleteNode(db, nodeId));
  }

  async claimConnection(machineId: string, nodeId: string, at: string): Promise<{ previousNode: string | null }> {
    const mid = checkMachineId(machineId);
    clusterQ.checkNodeId(nodeId);
    checkTimestamp('at', at);
    const previousNode = await this.transaction((trx) => clusterQ.claim(trx, mid, nodeId, at));
    return { previousNode };
  }

  async releaseConnection(machineId: string, nodeId: string, at: string): Promise<boolean> {
    const mid = checkMachineId(machineId);
    clusterQ.checkNodeId(nodeId);
    checkTimestamp('at', at);
    return this.transaction((trx) => clusterQ.release(trx, mid, nodeId, at));
  }

  async connectionOwner(machineId: string): Promise<string | null> {
    return clusterQ.ownerOf(this.db, checkMachineId(machineId));
  }

  async reapDeadNodes(deadBeforeMs: number, at: string): Promise<ReapResult> {
    clusterQ.checkMillis('deadBeforeMs', deadBeforeMs);
    checkTimestamp('at', at);
    const out: ReapResult = { nodes: [], machines: [] };
    // One transaction per dead node, so reaping a node with many devices never holds every lock at once.
    for (const nodeId of await clusterQ.deadNodes(this.db, deadBeforeMs)) {
      const r = await this.transaction((trx) => clusterQ.reapNode(trx, nodeId, deadBeforeMs, at, this.dialect.rowLocks));
      out.nodes.push(...r.nodes);
      out.machines.push(...r.machines);
    }
    return out;
  }

  async undeliveredActions(nodeId: string, createdBefore: string, now: string, limit: number): Promise<MachineAction[]> {
    clusterQ.checkNodeId(nodeId);
    checkTimestamp('createdBefore', createdBefore);
    checkTimestamp('now', now);
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new TypeError('limit must be a positive integer');
    return clusterQ.pendingForNode(this.db, nodeId, createdBefore, now, limit);
  }

  // ---- notifications and lifecycle -------------------------------------------------------------------------

  publish(n: StoreNotification): Promise<void> {
    return this.notifier.publish(n);
  }

  subscribe(fn: (n: StoreNotification) => void): () => void {
    return this.notifier.subscribe(fn);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // Everything already accepted is committed (and its caller answered) before the database goes away.
      await Promise.all([this.actionCommitter?.drain(), this.auditCommitter.drain()]);
      await this.notifier.close();
      await this.closeBatches();
      await this.db.destroy();
    })();
    return this.closing;
  }
}
