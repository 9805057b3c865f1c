// What the store refuses before touching the database: malformed ids, hashes, sizes and timestamps are
// programming errors in the caller (the API validates client input first), reported as TypeError.
import type { MachineAction } from '../core/actions.ts';
import { ACTION_STATUSES, ACTION_TYPES } from '../core/actions.ts';
import type { Machine } from '../core/machines.ts';
import { MACHINE_ID_RE } from '../core/machines.ts';
import { isGuid, isSha1 } from '../core/validation.ts';
import type { FileObservation, VaultItemRecord, Visibility } from './store.ts';

/**
 * Every timestamp the store writes or compares must be the fixed-width form of core/time.ts: that is what makes
 * string order time order in both databases (a 3-digit ISO string sorts after its 7-digit twin).
 */
const STORED_TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/;

export function checkTimestamp(name: string, v: string | null): void {
  if (v !== null && (typeof v !== 'string' || !STORED_TIMESTAMP_RE.test(v))) {
    throw new TypeError(`${name} must be a stored-form timestamp (YYYY-MM-DDTHH:MM:SS.fffffffZ): ${String(v)}`);
  }
}

export function checkMachineId(id: string): string {
  if (typeof id !== 'string' || !MACHINE_ID_RE.test(id)) throw new TypeError(`invalid machine id: ${String(id)}`);
  return id.toLowerCase();
}

export function checkVisibility(v: Visibility | undefined): void {
  if (v && !v.rbacGroupIds.every((g) => Number.isSafeInteger(g))) throw new TypeError('rbacGroupIds must be integers');
}

export function checkAction(a: MachineAction, duplicateKey: string): void {
  if (!isGuid(a.id)) throw new TypeError(`invalid action id: ${String(a.id)}`);
  checkMachineId(a.machineId);
  if (!ACTION_TYPES.includes(a.type)) throw new TypeError(`invalid action type: ${String(a.type)}`);
  if (!ACTION_STATUSES.includes(a.status)) throw new TypeError(`invalid action status: ${String(a.status)}`);
  if (!Number.isSafeInteger(a.errorHResult)) throw new TypeError('errorHResult must be an integer');
  if (typeof duplicateKey !== 'string' || duplicateKey === '') throw new TypeError('duplicateKey must be a non-empty string');
  checkTimestamp('creationDateTimeUtc', a.creationDateTimeUtc);
  checkTimestamp('lastUpdateDateTimeUtc', a.lastUpdateDateTimeUtc);
  checkTimestamp('cancellationDateTimeUtc', a.cancellationDateTimeUtc);
  checkTimestamp('expiresAt', a.expiresAt);
}

export function checkMachine(m: Machine): void {
  checkMachineId(m.id);
  checkTimestamp('firstSeen', m.firstSeen);
  checkTimestamp('lastSeen', m.lastSeen);
  if (!Array.isArray(m.machineTags) || !m.machineTags.every((t) => typeof t === 'string')) {
    throw new TypeError('machineTags must be an array of strings');
  }
  if (!Number.isSafeInteger(m.rbacGroupId)) throw new TypeError('rbacGroupId must be an integer');
}

export function checkObservation(o: FileObservation): void {
  if (!isSha1(o.sha1)) throw new TypeError(`invalid sha1: ${String(o.sha1)}`);
  if (typeof o.path !== 'string' || o.path === '') throw new TypeError('observation path must be a non-empty string');
  if (!Number.isSafeInteger(o.size) || o.size < 0) throw new TypeError('observation size must be a non-negative integer');
  checkTimestamp('seenAt', o.seenAt);
}

export function checkVaultItem(v: VaultItemRecord): void {
  checkMachineId(v.machineId);
  if (typeof v.itemId !== 'string' || v.itemId === '') throw new TypeError('vault itemId must be a non-empty string');
  if (!isSha1(v.sha1)) throw new TypeError(`invalid sha1: ${String(v.sha1)}`);
  if (!['quarantined', 'restored', 'purged'].includes(v.state)) throw new TypeError(`invalid vault state: ${String(v.state)}`);
  if (!Number.isSafeInteger(v.size) || v.size < 0) throw new TypeError('vault size must be a non-negative integer');
  checkTimestamp('quarantinedAt', v.quarantinedAt);
}
