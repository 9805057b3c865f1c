// MDE's rule for StopAndQuarantineFile on a file the device never saw: refused (404) only when the machine reported a
// complete file inventory (file_inventories) and no sighting of the file (file_observations). Its two reads, written
// once for the store's single question and for a group-commit batch's check.
import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/** The machines among `machineIds` that reported a complete file inventory. */
export async function inventoriedMachines(db: Kysely<Database>, machineIds: string[]): Promise<Set<string>> {
  const rows = await db.selectFrom('file_inventories').select('machine_id').where('machine_id', 'in', machineIds).execute();
  return new Set(rows.map((r) => r.machine_id));
}

/** The (machine, SHA-1) pairs among `machineIds` × `sha1s` that were seen, as sightingKey strings. */
export async function sightedPairs(db: Kysely<Database>, machineIds: string[], sha1s: string[]): Promise<Set<string>> {
  const rows = await db
    .selectFrom('file_observations')
    .select(['machine_id', 'sha1'])
    .distinct()
    .where('machine_id', 'in', machineIds)
    .where('sha1', 'in', sha1s)
    .execute();
  return new Set(rows.map((r) => sightingKey(r.machine_id, r.sha1)));
}

export function sightingKey(machineId: string, sha1: string): string {
  return `${machineId} ${sha1}`;
}
