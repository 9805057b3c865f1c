// The one persistence contract. Every adapter (SQLite, PostgreSQL) implements it with the same Kysely code;
// the same test suite (test/store/) runs against each.
import type { ActionStatus, DeviceResultRecord, MachineAction, Transition } from '../core/actions.ts';
import type { DeviceGroupRule } from '../core/deviceGroups.ts';
import type { Machine } from '../core/machines.ts';
import type { RbacPermission } from '../core/permissions.ts';
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
  /**
   * A public client (native app, web console): holds no secret and may use the delegated grants unauthenticated.
   * Absent means false (confidential).
   */
  publicClient?: boolean;
  /** Where authorization codes may be sent (exact match); absent means none. */
  redirectUris?: string[];
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

/** A local account that signs in with a password (grant_type=password, or the authorize form). */
export interface UserRecord {
  oid: string; // GUID, the `oid` of its tokens
  upn: string; // unique, compared case-insensitively
  displayName: string;
  /** scrypt hash (server/auth/secrets.ts); the password itself is never stored. */
  passwordHash: string;
  enabled: boolean;
  /** Consecutive wrong passwords since the last success or lock. */
  failedLogins: number;
  lockedUntil: string | null;
  createdAt: string;
  updatedAt: string;
}

export type UserPatch = Partial<Pick<UserRecord, 'upn' | 'displayName' | 'passwordHash' | 'enabled' | 'failedLogins' | 'lockedUntil'>>;

export interface RoleRecord {
  id: string; // GUID
  name: string; // unique, compared case-insensitively
  description: string;
  permissions: RbacPermission[];
  builtIn: boolean;
  createdAt: string;
  updatedAt: string;
}

/** 'user': a local user (by oid); 'group': a `groups` claim value of an external token; 'upn': an external UPN. */
export type AssigneeKind = 'user' | 'group' | 'upn';

export interface RoleAssignmentRecord {
  id: string; // GUID
  assigneeKind: AssigneeKind;
  /** The user's oid, the group claim value, or the UPN (lower-cased for 'upn' and GUID group ids). */
  assignee: string;
  roleId: string;
  /** true: every device group, including ones created later; deviceGroupIds is then empty. */
  allGroups: boolean;
  deviceGroupIds: number[];
  createdAt: string;
  updatedAt: string;
}

/** A role assignment together with the permissions its role grants (what access decisions need). */
export interface EffectiveRoleAssignment extends RoleAssignmentRecord {
  roleName: string;
  permissions: RbacPermission[];
}

export interface DeviceGroupRecord {
  id: number;
  name: string;
  description: string;
  /** 1 = tried first. The built-in Ungrouped devices reports the rank after the last group. */
  rank: number;
  /** null only for the built-in Ungrouped devices. */
  rule: DeviceGroupRule | null;
  builtIn: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface NewDeviceGroup {
  name: string;
  description: string;
  /** Where to insert (1 = first); null or beyond the end = last. Later groups move down one. */
  rank: number | null;
  rule: DeviceGroupRule;
}

export type DeviceGroupPatch = Partial<Pick<DeviceGroupRecord, 'name' | 'description' | 'rank'>> & { rule?: DeviceGroupRule };

/** What a change of device groups did to the machines. */
export interface RegroupResult {
  /** Machines whose rbacGroupId or rbacGroupName changed. */
  moved: number;
}

/** A one-time authorization code (authorization-code grant with PKCE), bound to what it was issued for. */
export interface AuthCodeRecord {
  codeHash: string; // sha256 hex
  clientId: string;
  redirectUri: string;
  codeChallenge: string; // S256
  userOid: string;
  audience: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
}

export type AuthCodeRedemption =
  | { outcome: 'redeemed'; code: AuthCodeRecord }
  | { outcome: 'alreadyUsed' | 'expired'; code: AuthCodeRecord }
  | { outcome: 'unknown' };

/** A server node sharing the database (cluster_nodes): alive while its heartbeat is recent. */
export interface NodeRecord {
  nodeId: string;
  startedAt: string;
  /** The node's own clock, epoch milliseconds, at its last heartbeat. */
  heartbeatMs: number;
  detail: unknown;
}

/** What reaping dead nodes did: the nodes removed and the machines whose connection they held (now Inactive). */
export interface ReapResult {
  nodes: string[];
  machines: string[];
}

export interface StoreNotification {
  channel: 'action' | 'machine';
  machineId: string;
  actionId?: string;
}

export interface CreateActionOptions {
  /**
   * Refuse the action (MdeError 404 with this message, nothing written) when its machine has reported a complete
   * file inventory that does not hold the action's file: MDE's rule for StopAndQuarantineFile. Checked inside the
   * insert's transaction, so it costs no read of its own per request.
   */
  fileNotSeenMessage?: string;
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
  /** MDE id → aadDeviceId → computerDnsName (case-insensitive; most recently seen on ties), among visible machines. */
  resolveMachine(idOrName: string, visibility?: Visibility): Promise<Machine | null>;
  listMachines(q: ListQuery, visibility?: Visibility): Promise<ListResult<Machine>>;
  updateMachine(id: string, patch: Partial<Machine>): Promise<Machine | null>;
  /** Remembers that `ip` was seen on the machine at `at` (for findbyip). */
  recordMachineIp(machineId: string, ip: string, at: string): Promise<void>;
  findMachinesByIp(ip: string, from: string, to: string, visibility?: Visibility): Promise<Machine[]>;

  // Machine actions
  /**
   * Inserts the action durably (committed before the promise resolves), with its audit entry in the same
   * transaction when given: no action exists without its record. Throws MdeError ActiveRequestAlreadyExists
   * when an action with the same duplicate key is Pending or InProgress (and then writes no audit entry).
   * An action about a file is held unique per file and key, so its key must determine the file (one key is never
   * used with two files): core's duplicateKey names the SHA-1 or the vault item, each of which does.
   */
  createAction(action: MachineAction, duplicateKey: string, audit?: NewAuditEntry, opts?: CreateActionOptions): Promise<MachineAction>;
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
  /**
   * A device's result: the lifecycle move it makes (with its error code) and its record, in one write, so no reader
   * sees the final status without the record. `applied` is whether it moved the status (false once final).
   */
  applyDeviceResult(id: string, at: string, result: Omit<DeviceResultRecord, 'applied'>): Promise<TransitionResult | null>;
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

  // Users (local accounts). createUser/updateUser throw RbacConflictError('duplicate') on a UPN already taken.
  createUser(u: UserRecord): Promise<void>;
  getUser(oid: string): Promise<UserRecord | null>;
  findUserByUpn(upn: string): Promise<UserRecord | null>;
  listUsers(): Promise<UserRecord[]>;
  updateUser(oid: string, patch: UserPatch, at: string): Promise<UserRecord | null>;
  /** Deletes the user and its role assignments; false when there was no such user. */
  deleteUser(oid: string): Promise<boolean>;
  /**
   * Counts one wrong password (atomically, across nodes); at `maxFailures` consecutive failures the account is
   * locked until `lockUntil` and the count restarts. Returns the row after the update, null for an unknown oid.
   */
  recordLoginFailure(oid: string, at: string, maxFailures: number, lockUntil: string): Promise<UserRecord | null>;
  /** A right password: the failure count restarts (a lock, if any, has already expired). */
  recordLoginSuccess(oid: string, at: string): Promise<void>;

  // Roles. Built-in roles are rows too but cannot be changed or deleted (RbacConflictError('builtIn')).
  listRoles(): Promise<RoleRecord[]>;
  getRole(id: string): Promise<RoleRecord | null>;
  findRoleByName(name: string): Promise<RoleRecord | null>;
  createRole(r: RoleRecord): Promise<void>;
  updateRole(id: string, patch: Partial<Pick<RoleRecord, 'name' | 'description' | 'permissions'>>, at: string): Promise<RoleRecord | null>;
  /** Refuses (RbacConflictError('inUse')) while assignments use the role. */
  deleteRole(id: string): Promise<boolean>;

  // Role assignments: one per (assignee, role); assigning again replaces its device groups.
  upsertRoleAssignment(a: RoleAssignmentRecord): Promise<RoleAssignmentRecord>;
  listRoleAssignments(filter?: { assigneeKind?: AssigneeKind; assignee?: string; roleId?: string }): Promise<RoleAssignmentRecord[]>;
  getRoleAssignment(id: string): Promise<RoleAssignmentRecord | null>;
  deleteRoleAssignment(id: string): Promise<boolean>;
  /** Every assignment that applies to a caller: its local oid, any of its group claim values, its external UPN. */
  assignmentsFor(who: { userOid?: string; groups?: readonly string[]; upn?: string }): Promise<EffectiveRoleAssignment[]>;

  // Device groups. Every change re-places all machines; upsertMachine/updateMachine place the machine they write.
  // While no group but the built-in Ungrouped devices exists, machine writes keep the rbacGroupId/Name given.
  listDeviceGroups(): Promise<DeviceGroupRecord[]>;
  getDeviceGroup(id: number): Promise<DeviceGroupRecord | null>;
  createDeviceGroup(g: NewDeviceGroup, at: string): Promise<{ group: DeviceGroupRecord } & RegroupResult>;
  updateDeviceGroup(id: number, patch: DeviceGroupPatch, at: string): Promise<({ group: DeviceGroupRecord } & RegroupResult) | null>;
  deleteDeviceGroup(id: number): Promise<RegroupResult | null>;

  // Authorization codes: single use, checked and consumed in one statement.
  createAuthCode(c: AuthCodeRecord): Promise<void>;
  redeemAuthCode(codeHash: string, now: string): Promise<AuthCodeRedemption>;

  // Cluster: node liveness and which node holds each device's one live connection (issue 5)
  /** Registers the node or refreshes its heartbeat; 'registered' when its row was missing (new, or reaped). */
  heartbeatNode(n: NodeRecord): Promise<'registered' | 'refreshed'>;
  listNodes(): Promise<NodeRecord[]>;
  /** Forgets a node that is shutting down (its connections must have been released first). */
  removeNode(nodeId: string): Promise<void>;
  /** `nodeId` now holds the machine's connection; returns the node that held it before, if any. */
  claimConnection(machineId: string, nodeId: string, at: string): Promise<{ previousNode: string | null }>;
  /**
   * Only while `nodeId` still holds the machine's connection: forgets it and marks the machine Inactive (lastSeen
   * `at`), atomically, so a device that has already moved to another node is never marked Inactive. True if it did.
   */
  releaseConnection(machineId: string, nodeId: string, at: string): Promise<boolean>;
  connectionOwner(machineId: string): Promise<string | null>;
  /** Nodes with a heartbeat before `deadBeforeMs`: their connections are dropped and machines marked Inactive. */
  reapDeadNodes(deadBeforeMs: number, at: string): Promise<ReapResult>;
  /**
   * Pending actions created at or before `createdBefore` and unexpired at `now`, of machines whose connection
   * `nodeId` holds, oldest first: the safety net for a lost notification.
   */
  undeliveredActions(nodeId: string, createdBefore: string, now: string, limit: number): Promise<MachineAction[]>;

  // Cross-node notifications (in-process for SQLite, LISTEN/NOTIFY for PostgreSQL)
  publish(n: StoreNotification): Promise<void>;
  subscribe(fn: (n: StoreNotification) => void): () => void;

  close(): Promise<void>;
}
