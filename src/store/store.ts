// The one persistence contract. Every adapter (SQLite, PostgreSQL) implements it with the same Kysely code;
// the same test suite (test/store/) runs against each.
import type { ActionStatus, DeviceResultRecord, MachineAction, Transition } from '../core/actions.ts';
import type { Machine } from '../core/machines.ts';
import type { ListQuery } from '../core/query.ts';

export interface Tenant {
  id: string; // GUID
  name: string;
  createdAt: string;
}

export interface AppRecord {
  clientId: string; // GUID
  tenantId: string;
  name: string;
  /** scrypt hash in the form `scrypt$N$r$p$saltB64$hashB64`; the secret itself is never stored. */
  secretHash: string;
  roles: string[];
  createdAt: string;
  disabled: boolean;
}

export interface SigningKeyRecord {
  kid: string;
  alg: 'RS256';
  publicJwk: string; // JSON
  privatePem: string; // PKCS#8 PEM
  createdAt: string;
  /** 'active' signs new tokens; 'retired' only verifies until retiredAt + token lifetime. */
  status: 'active' | 'retired';
  retiredAt: string | null;
}

export interface EnrollTokenRecord {
  id: string; // GUID, public handle for revocation
  tokenHash: string; // sha256 hex of the opaque token
  group: string | null;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  maxUses: number | null;
  uses: number;
}

export interface FileObservation {
  sha1: string; // lower-case
  sha256: string | null;
  path: string;
  size: number;
  /** Publisher / trust: 'Microsoft', 'TrustedPublisher', 'PackageManager', or null when unsigned. */
  signer: string | null;
  trusted: boolean;
  seenAt: string;
}

export interface AuditEntry {
  id: number; // assigned by the store, increasing
  at: string;
  actorType: 'app' | 'user' | 'device' | 'system' | 'cli';
  actorId: string;
  actorName: string | null;
  action: string; // e.g. 'machineAction.create', 'token.issue', 'machineAction.cancel'
  target: string | null;
  result: 'success' | 'failure';
  status: number | null; // HTTP status when it came through the API
  clientIp: string | null;
  correlationId: string | null;
  detail: unknown;
  /** sha256 hex chaining this entry to the previous one, so the log is tamper-evident. */
  prevHash: string;
  hash: string;
}

export type NewAuditEntry = Omit<AuditEntry, 'id' | 'prevHash' | 'hash'>;

export interface ListResult<T> {
  items: T[];
  /** Total matching the filter (ignoring top/skip), present when the query asked for a count. */
  count: number | null;
}

/** Restricts what a delegated caller can see; undefined = everything (application tokens). */
export interface Visibility {
  rbacGroupIds: number[];
}

export interface TransitionResult {
  action: MachineAction;
  /** false when the transition did not apply (final state, out of order): nothing was written. */
  changed: boolean;
}

export interface VaultItemRecord {
  machineId: string;
  itemId: string;
  actionId: string | null;
  sha1: string;
  sha256: string | null;
  originalPath: string;
  size: number;
  quarantinedAt: string;
  state: 'quarantined' | 'restored' | 'purged';
  detail: unknown;
}

export interface StoreNotification {
  channel: 'action' | 'machine';
  machineId: string;
  actionId?: string;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';

  // Tenant (one per data directory / database)
  getOrCreateTenant(create: () => Tenant): Promise<Tenant>;

  // Applications (client-credentials principals)
  createApp(app: AppRecord): Promise<void>;
  getApp(clientId: string): Promise<AppRecord | null>;
  listApps(): Promise<AppRecord[]>;

  // Token signing keys (shared by every node)
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /** Inserts `key`; only one key may be active, so a rotation retires the old key first. */
  insertSigningKey(key: SigningKeyRecord): Promise<void>;
  retireSigningKey(kid: string, at: string): Promise<void>;

  // Enroll tokens
  createEnrollToken(t: EnrollTokenRecord): Promise<void>;
  findEnrollTokenByHash(tokenHash: string): Promise<EnrollTokenRecord | null>;
  /** Counts one use and returns the token; null when it is unknown, revoked, expired at `now` or used up (atomic). */
  consumeEnrollToken(tokenHash: string, now: string): Promise<EnrollTokenRecord | null>;
  revokeEnrollToken(id: string, at: string): Promise<boolean>;

  // Machines
  upsertMachine(m: Machine): Promise<void>;
  getMachine(id: string): Promise<Machine | null>;
  /** MDE id → aadDeviceId → computerDnsName (case-insensitive; most recently seen on ties). */
  resolveMachine(idOrName: string): Promise<Machine | null>;
  listMachines(q: ListQuery, visibility?: Visibility): Promise<ListResult<Machine>>;
  updateMachine(id: string, patch: Partial<Machine>): Promise<Machine | null>;
  /** Remembers that `ip` was seen on the machine at `at` (for findbyip). */
  recordMachineIp(machineId: string, ip: string, at: string): Promise<void>;
  findMachinesByIp(ip: string, from: string, to: string, visibility?: Visibility): Promise<Machine[]>;

  // Machine actions
  /**
   * Inserts the action durably (committed before the promise resolves). Throws MdeError
   * ActiveRequestAlreadyExists when an action with the same duplicate key is Pending or InProgress.
   */
  createAction(action: MachineAction, duplicateKey: string): Promise<MachineAction>;
  getAction(id: string): Promise<MachineAction | null>;
  listActions(q: ListQuery, visibility?: Visibility): Promise<ListResult<MachineAction>>;
  /** Applies the lifecycle rule atomically (compare-and-set on status); `patch` is written only on change. */
  transitionAction(
    id: string,
    t: Transition,
    at: string,
    patch?: Partial<Pick<MachineAction, 'errorHResult' | 'cancellationRequestor' | 'cancellationComment' | 'cancellationDateTimeUtc'>>,
  ): Promise<TransitionResult | null>;
  /** Stores a device's result record whether or not it changed the status (late results are kept). */
  recordDeviceResult(id: string, result: DeviceResultRecord): Promise<void>;
  /** Pending and InProgress actions of one machine, oldest first: what a (re)connecting device must get. */
  activeActionsForMachine(machineId: string): Promise<MachineAction[]>;
  /** Moves every active action whose expiresAt ≤ now to TimeOut, each exactly once; returns those moved. */
  expireDueActions(now: string, limit: number): Promise<MachineAction[]>;
  countActionsByStatus(): Promise<Record<ActionStatus, number>>;

  // File observations (sha1 ↔ machine ↔ path)
  recordFileObservations(machineId: string, obs: FileObservation[], completeInventory: boolean): Promise<void>;
  machinesForFile(sha1: string, visibility?: Visibility): Promise<Machine[]>;
  /** 'seen' / 'notSeen' (the device sent a complete inventory without it) / 'unknown'. */
  fileSeenOnMachine(machineId: string, sha1: string): Promise<'seen' | 'notSeen' | 'unknown'>;
  fileObservationsForMachine(machineId: string, sha1: string): Promise<FileObservation[]>;

  // Quarantine vault inventory reported by agents
  upsertVaultItems(items: VaultItemRecord[]): Promise<void>;
  listVaultItems(machineId: string): Promise<VaultItemRecord[]>;

  // Audit (append-only, hash-chained)
  appendAudit(entry: NewAuditEntry): Promise<AuditEntry>;
  listAudit(q: { top: number; skip: number; since?: string; action?: string }): Promise<AuditEntry[]>;

  // Cross-node notifications (in-process for SQLite, LISTEN/NOTIFY for PostgreSQL)
  publish(n: StoreNotification): Promise<void>;
  subscribe(fn: (n: StoreNotification) => void): () => void;

  close(): Promise<void>;
}
