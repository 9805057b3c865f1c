// The cluster tables (cluster_nodes, device_connections) as queries over one connection or transaction.
// KyselyStore decides the transaction boundaries; these functions only read and write rows, the same on SQLite
// and PostgreSQL. The tables are typed here, beside the only queries that use them.
import type { Kysely } from 'kysely';
import type { MachineAction } from '../core/actions.ts';
import { actionFromRow } from './rowMapping.ts';
import type { Database } from './schema.ts';
import type { NodeRecord, ReapResult } from './store.ts';

export interface ClusterNodesTable {
  node_id: string;
  started_at: string;
  heartbeat_ms: number;
  detail: string; // JSON
}

export interface DeviceConnectionsTable {
  machine_id: string;
  node_id: string;
  connected_at: string;
}

type ClusterDb = Kysely<Database & { cluster_nodes: ClusterNodesTable; device_connections: DeviceConnectionsTable }>;

const cluster = (db: Kysely<Database>): ClusterDb => db as unknown as ClusterDb;

/** Node ids go into logs and rows: short, printable, no separators of our own formats. */
const NODE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;

export function checkNodeId(nodeId: string): string {
  if (typeof nodeId !== 'string' || !NODE_ID_RE.test(nodeId)) throw new TypeError(`invalid node id: ${String(nodeId)}`);
  return nodeId;
}

export function checkMillis(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`${name} must be a non-negative integer (epoch ms)`);
}

export async function upsertNode(db: Kysely<Database>, n: NodeRecord): Promise<'registered' | 'refreshed'> {
  const c = cluster(db);
  const detail = JSON.stringify(n.detail ?? null);
  const updated = await c
    .updateTable('cluster_nodes')
    .set({ heartbeat_ms: n.heartbeatMs, detail })
    .where('node_id', '=', n.nodeId)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) > 0) return 'refreshed';
  await c
    .insertInto('cluster_nodes')
    .values({ node_id: n.nodeId, started_at: n.startedAt, heartbeat_ms: n.heartbeatMs, detail })
    .onConflict((oc) => oc.column('node_id').doUpdateSet({ heartbeat_ms: n.heartbeatMs, detail }))
    .execute();
  return 'registered';
}

export async function selectNodes(db: Kysely<Database>): Promise<NodeRecord[]> {
  const rows = await cluster(db).selectFrom('cluster_nodes').selectAll().orderBy('node_id').execute();
  return rows.map((r) => ({
    nodeId: r.node_id,
    startedAt: r.started_at,
    heartbeatMs: Number(r.heartbeat_ms),
    detail: JSON.parse(r.detail) as unknown,
  }));
}

export async function deleteNode(db: Kysely<Database>, nodeId: string): Promise<void> {
  await cluster(db).deleteFrom('cluster_nodes').where('node_id', '=', nodeId).execute();
}

export async function claim(db: Kysely<Database>, machineId: string, nodeId: string, at: string): Promise<string | null> {
  const c = cluster(db);
  const before = await c
    .selectFrom('device_connections')
    .select('node_id')
    .where('machine_id', '=', machineId)
    .executeTakeFirst();
  await c
    .insertInto('device_connections')
    .values({ machine_id: machineId, node_id: nodeId, connected_at: at })
    .onConflict((oc) => oc.column('machine_id').doUpdateSet({ node_id: nodeId, connected_at: at }))
    .execute();
  return before?.node_id ?? null;
}

/** Inside a transaction: deletes the connection row if `nodeId` holds it, and then marks the machine Inactive. */
export async function release(db: Kysely<Database>, machineId: string, nodeId: string, at: string): Promise<boolean> {
  const deleted = await cluster(db)
    .deleteFrom('device_connections')
    .where('machine_id', '=', machineId)
    .where('node_id', '=', nodeId)
    .executeTakeFirst();
  if (Number(deleted.numDeletedRows) === 0) return false;
  await markInactive(db, [machineId], at);
  return true;
}

export async function ownerOf(db: Kysely<Database>, machineId: string): Promise<string | null> {
  const row = await cluster(db)
    .selectFrom('device_connections')
    .select('node_id')
    .where('machine_id', '=', machineId)
    .executeTakeFirst();
  return row?.node_id ?? null;
}

export async function deadNodes(db: Kysely<Database>, deadBeforeMs: number): Promise<string[]> {
  const rows = await cluster(db)
    .selectFrom('cluster_nodes')
    .select('node_id')
    .where('heartbeat_ms', '<', deadBeforeMs)
    .orderBy('node_id')
    .execute();
  return rows.map((r) => r.node_id);
}

/**
 * Inside a transaction: removes one dead node and the connections it held, and marks those machines Inactive.
 * The heartbeat is checked again under the row lock, so a node that came back meanwhile is left alone.
 */
export async function reapNode(db: Kysely<Database>, nodeId: string, deadBeforeMs: number, at: string, rowLocks: boolean): Promise<ReapResult> {
  const c = cluster(db);
  const node = await c
    .selectFrom('cluster_nodes')
    .select('heartbeat_ms')
    .where('node_id', '=', nodeId)
    .$if(rowLocks, (qb) => qb.forUpdate().skipLocked())
    .executeTakeFirst();
  if (!node || Number(node.heartbeat_ms) >= deadBeforeMs) return { nodes: [], machines: [] };
  const held = await c
    .deleteFrom('device_connections')
    .where('node_id', '=', nodeId)
    .returning('machine_id')
    .execute();
  const machines = held.map((r) => r.machine_id);
  await markInactive(db, machines, at);
  await c.deleteFrom('cluster_nodes').where('node_id', '=', nodeId).execute();
  return { nodes: [nodeId], machines };
}

/**
 * Health and lastSeen only, written directly: neither decides device-group placement, so the rules lock and the
 * full machine rewrite of updateMachine are not needed here.
 */
async function markInactive(db: Kysely<Database>, machineIds: string[], at: string): Promise<void> {
  for (let i = 0; i < machineIds.length; i += 500) {
    await db
      .updateTable('machines')
      .set({ health_status: 'Inactive', last_seen: at })
      .where('id', 'in', machineIds.slice(i, i + 500))
      .execute();
  }
}

export async function pendingForNode(
  db: Kysely<Database>,
  nodeId: string,
  createdBefore: string,
  now: string,
  limit: number,
): Promise<MachineAction[]> {
  const rows = await cluster(db)
    .selectFrom('machine_actions as a')
    .innerJoin('device_connections as c', 'c.machine_id', 'a.machine_id')
    .selectAll('a')
    .where('c.node_id', '=', nodeId)
    .where('a.status', '=', 'Pending')
    .where('a.creation_date_time_utc', '<=', createdBefore)
    .where('a.expires_at', '>', now)
    .orderBy('a.creation_date_time_utc')
    .orderBy('a.id')
    .limit(limit)
    .execute();
  return rows.map((r) => actionFromRow(r));
}
