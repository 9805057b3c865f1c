// The machineAction domain: types, statuses and the lifecycle every part of Tourniquet obeys.

/** The action types of MDE's public API, in the EDM enum's order. */
export const MDE_ACTION_TYPES = [
  'RunAntiVirusScan',
  'Offboard',
  'LiveResponse',
  'CollectInvestigationPackage',
  'Isolate',
  'Unisolate',
  'StopAndQuarantineFile',
  'RestrictCodeExecution',
  'UnrestrictCodeExecution',
] as const;
/** Tourniquet's own actions (restore from the vault: what MDE lacks); created outside /api and never listed there. */
export const EXTENSION_ACTION_TYPES = ['RestoreQuarantinedFile'] as const;
export const ACTION_TYPES = [...MDE_ACTION_TYPES, ...EXTENSION_ACTION_TYPES] as const;
export type ActionType = (typeof ACTION_TYPES)[number];
export type MdeActionType = (typeof MDE_ACTION_TYPES)[number];

export const ACTION_STATUSES = ['Pending', 'InProgress', 'Succeeded', 'Failed', 'TimeOut', 'Cancelled'] as const;
export type ActionStatus = (typeof ACTION_STATUSES)[number];

export const FINAL_STATUSES: ReadonlySet<ActionStatus> = new Set(['Succeeded', 'Failed', 'TimeOut', 'Cancelled']);
export const ACTIVE_STATUSES: readonly ActionStatus[] = ['Pending', 'InProgress'];

export function isFinal(status: ActionStatus): boolean {
  return FINAL_STATUSES.has(status);
}

/** Who or what moves an action, so the state machine can refuse moves that belong to someone else. */
export type Transition =
  | { kind: 'deviceAck' } // the device has the action and starts it
  | { kind: 'deviceResult'; outcome: 'Succeeded' | 'Failed' }
  | { kind: 'cancel' }
  | { kind: 'expire' };

const ALLOWED: Record<Transition['kind'], readonly ActionStatus[]> = {
  deviceAck: ['Pending'],
  // A result may arrive without a separate ack (a fast device), so Pending is a valid start.
  deviceResult: ['Pending', 'InProgress'],
  cancel: ['Pending', 'InProgress'],
  expire: ['Pending', 'InProgress'],
};

/**
 * The next status for a transition, or null when the transition does not apply (the action is final
 * or the move is out of order). Final states are absorbing: a late device result never changes them.
 */
export function nextStatus(current: ActionStatus, t: Transition): ActionStatus | null {
  if (!ALLOWED[t.kind].includes(current)) return null;
  switch (t.kind) {
    case 'deviceAck':
      return 'InProgress';
    case 'deviceResult':
      return t.outcome;
    case 'cancel':
      return 'Cancelled';
    case 'expire':
      return 'TimeOut';
  }
}

/** HRESULT-style codes stored in errorHResult for failures chosen by the server or reported by devices. */
export const HRESULT = {
  ok: 0,
  timeout: -2147023436, // 0x800705B4 ERROR_TIMEOUT
  fileNotFound: -2147024894, // 0x80070002 ERROR_FILE_NOT_FOUND
  accessDenied: -2147024891, // 0x80070005 E_ACCESSDENIED
  protectedFile: -2147019873, // 0x8007139F ERROR_INVALID_STATE: refused, the file is protected
  fail: -2147467259, // 0x80004005 E_FAIL
} as const;

export type FileIdentifierType = 'Sha1' | 'Sha256' | 'Md5';

export interface RelatedFileInfo {
  fileIdentifier: string;
  fileIdentifierType: FileIdentifierType;
}

/** One machineAction as the store holds it. Timestamps are 7-digit-fraction UTC strings (see time.ts). */
export interface MachineAction {
  id: string; // lower-case GUID
  type: ActionType;
  title: string | null;
  requestor: string;
  requestorComment: string;
  status: ActionStatus;
  machineId: string;
  computerDnsName: string | null;
  creationDateTimeUtc: string;
  lastUpdateDateTimeUtc: string;
  cancellationRequestor: string | null;
  cancellationComment: string | null;
  cancellationDateTimeUtc: string | null;
  errorHResult: number;
  scope: string | null;
  externalId: string | null;
  requestSource: string;
  relatedFileInfo: RelatedFileInfo | null;
  commands: unknown[];
  troubleshootInfo: unknown | null;
  /** Internal: the app or user that created it (appid/oid), for audit and delegated visibility. */
  requestorId: string;
  /** Internal: the last device result, kept even when the public status is final (late results). */
  deviceResult: DeviceResultRecord | null;
  /** Internal: when a Pending/InProgress action becomes TimeOut. */
  expiresAt: string;
}

/** What a device reported, stored verbatim for inventory and audit (per-process, per-copy items). */
export interface DeviceResultRecord {
  outcome: 'Succeeded' | 'Failed';
  errorHResult: number;
  reason: string | null;
  reportedAt: string;
  applied: boolean; // false when it arrived after the action was final
  detail: unknown;
}

/**
 * Key that makes two in-flight actions duplicates of each other (ActiveRequestAlreadyExists): per file for
 * StopAndQuarantineFile (its SHA-1) and RestoreQuarantinedFile (the vault item), per machine and type otherwise.
 */
export function duplicateKey(machineId: string, type: ActionType, subject: string | null): string {
  return type === 'StopAndQuarantineFile' || type === 'RestoreQuarantinedFile'
    ? `${machineId}|${type}|${subject ?? ''}`
    : `${machineId}|${type}`;
}
