// Domain objects ↔ table rows: the only place that knows how each field is stored (JSON text, 0/1, lower case).
import type { ActionStatus, ActionType, DeviceResultRecord, FileIdentifierType, MachineAction } from '../core/actions.ts';
import type { HealthStatus, IpAddressInfo, Machine, VmMetadata } from '../core/machines.ts';
import type { DeviceGroupRule } from '../core/deviceGroups.ts';
import type { RbacPermission } from '../core/permissions.ts';
import type {
  AppsTable,
  AuditLogTable,
  AuthCodesTable,
  DeviceGroupsTable,
  RbacRolesTable,
  RoleAssignmentsTable,
  UsersTable,
  EnrollTokensTable,
  FileObservationsTable,
  IntBool,
  MachineActionsTable,
  MachinesTable,
  SigningKeysTable,
  TenantTable,
  VaultItemsTable,
} from './schema.ts';
import type {
  AppRecord,
  AuditEntry,
  AuthCodeRecord,
  DeviceGroupRecord,
  RoleAssignmentRecord,
  RoleRecord,
  UserRecord,
  EnrollTokenRecord,
  FileObservation,
  SigningKeyRecord,
  Tenant,
  VaultItemRecord,
} from './store.ts';

export const bool = (b: boolean): IntBool => (b ? 1 : 0);
const fromBool = (v: number): boolean => v === 1;

/** JSON text for a column; `undefined` (absent detail) is stored as null so it reads back the same. */
export function json(v: unknown): string {
  return JSON.stringify(v === undefined ? null : v);
}

function parse<T>(text: string): T {
  return JSON.parse(text) as T;
}

const parseOrNull = <T>(text: string | null): T | null => (text === null ? null : parse<T>(text));

export function tenantFromRow(r: TenantTable): Tenant {
  return { id: r.id, name: r.name, createdAt: r.created_at };
}

export function appToRow(a: AppRecord): AppsTable {
  return {
    client_id: a.clientId,
    tenant_id: a.tenantId,
    name: a.name,
    secret_hash: a.secretHash,
    roles: json(a.roles),
    created_at: a.createdAt,
    disabled: bool(a.disabled),
    public_client: bool(a.publicClient ?? false),
    redirect_uris: json(a.redirectUris ?? []),
  };
}

export function appFromRow(r: AppsTable): AppRecord {
  return {
    clientId: r.client_id,
    tenantId: r.tenant_id,
    name: r.name,
    secretHash: r.secret_hash,
    roles: parse<string[]>(r.roles),
    createdAt: r.created_at,
    disabled: fromBool(r.disabled),
    // The client fields appear only when set, so a confidential app reads back exactly as it was written.
    ...(r.public_client === 1 ? { publicClient: true } : {}),
    ...(r.redirect_uris !== '[]' ? { redirectUris: parse<string[]>(r.redirect_uris) } : {}),
  };
}

export function signingKeyToRow(k: SigningKeyRecord): SigningKeysTable {
  return {
    kid: k.kid,
    alg: k.alg,
    public_jwk: k.publicJwk,
    private_pem: k.privatePem,
    created_at: k.createdAt,
    status: k.status,
    retired_at: k.retiredAt,
  };
}

export function signingKeyFromRow(r: SigningKeysTable): SigningKeyRecord {
  return {
    kid: r.kid,
    alg: r.alg as SigningKeyRecord['alg'],
    publicJwk: r.public_jwk,
    privatePem: r.private_pem,
    createdAt: r.created_at,
    status: r.status,
    retiredAt: r.retired_at,
  };
}

export function enrollTokenToRow(t: EnrollTokenRecord): EnrollTokensTable {
  return {
    id: t.id,
    token_hash: t.tokenHash,
    group_name: t.group,
    created_at: t.createdAt,
    expires_at: t.expiresAt,
    revoked_at: t.revokedAt,
    max_uses: t.maxUses,
    uses: t.uses,
  };
}

export function enrollTokenFromRow(r: EnrollTokensTable): EnrollTokenRecord {
  return {
    id: r.id,
    tokenHash: r.token_hash,
    group: r.group_name,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    maxUses: r.max_uses,
    uses: r.uses,
  };
}

export function machineToRow(m: Machine): MachinesTable {
  return {
    id: m.id.toLowerCase(),
    merged_into_machine_id: m.mergedIntoMachineId,
    is_potential_duplication: bool(m.isPotentialDuplication),
    is_excluded: bool(m.isExcluded),
    exclusion_reason: m.exclusionReason,
    computer_dns_name: m.computerDnsName,
    first_seen: m.firstSeen,
    last_seen: m.lastSeen,
    os_platform: m.osPlatform,
    os_version: m.osVersion,
    os_processor: m.osProcessor,
    version: m.version,
    last_ip_address: m.lastIpAddress,
    last_external_ip_address: m.lastExternalIpAddress,
    agent_version: m.agentVersion,
    os_build: m.osBuild,
    health_status: m.healthStatus,
    device_value: m.deviceValue,
    rbac_group_id: m.rbacGroupId,
    rbac_group_name: m.rbacGroupName,
    risk_score: m.riskScore,
    exposure_level: m.exposureLevel,
    is_aad_joined: bool(m.isAadJoined),
    aad_device_id: m.aadDeviceId,
    machine_tags: json(m.machineTags),
    defender_av_status: m.defenderAvStatus,
    onboarding_status: m.onboardingStatus,
    os_architecture: m.osArchitecture,
    managed_by: m.managedBy,
    managed_by_status: m.managedByStatus,
    ip_addresses: json(m.ipAddresses),
    vm_metadata: m.vmMetadata === null ? null : json(m.vmMetadata),
    device_public_key: m.devicePublicKey,
    protection_running: bool(m.protectionRunning),
    capabilities: json(m.capabilities),
    enroll_group: m.enrollGroup,
    domain: m.domain,
    offboarded: bool(m.offboarded),
    simulated: bool(m.simulated),
  };
}

export function machineFromRow(r: MachinesTable): Machine {
  return {
    id: r.id,
    mergedIntoMachineId: r.merged_into_machine_id,
    isPotentialDuplication: fromBool(r.is_potential_duplication),
    isExcluded: fromBool(r.is_excluded),
    exclusionReason: r.exclusion_reason,
    computerDnsName: r.computer_dns_name,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    osPlatform: r.os_platform,
    osVersion: r.os_version,
    osProcessor: r.os_processor,
    version: r.version,
    lastIpAddress: r.last_ip_address,
    lastExternalIpAddress: r.last_external_ip_address,
    agentVersion: r.agent_version,
    osBuild: r.os_build,
    healthStatus: r.health_status as HealthStatus,
    deviceValue: r.device_value as Machine['deviceValue'],
    rbacGroupId: r.rbac_group_id,
    rbacGroupName: r.rbac_group_name,
    riskScore: r.risk_score as Machine['riskScore'],
    exposureLevel: r.exposure_level as Machine['exposureLevel'],
    isAadJoined: fromBool(r.is_aad_joined),
    aadDeviceId: r.aad_device_id,
    machineTags: parse<string[]>(r.machine_tags),
    defenderAvStatus: r.defender_av_status,
    onboardingStatus: r.onboarding_status,
    osArchitecture: r.os_architecture,
    managedBy: r.managed_by,
    managedByStatus: r.managed_by_status,
    ipAddresses: parse<IpAddressInfo[]>(r.ip_addresses),
    vmMetadata: parseOrNull<VmMetadata>(r.vm_metadata),
    devicePublicKey: r.device_public_key,
    protectionRunning: fromBool(r.protection_running),
    capabilities: parse<string[]>(r.capabilities),
    enrollGroup: r.enroll_group,
    domain: r.domain,
    offboarded: fromBool(r.offboarded),
    simulated: fromBool(r.simulated),
  };
}

export function actionToRow(a: MachineAction, activeKey: string | null): MachineActionsTable {
  return {
    id: a.id.toLowerCase(),
    type: a.type,
    title: a.title,
    requestor: a.requestor,
    requestor_comment: a.requestorComment,
    status: a.status,
    machine_id: a.machineId.toLowerCase(),
    computer_dns_name: a.computerDnsName,
    creation_date_time_utc: a.creationDateTimeUtc,
    last_update_date_time_utc: a.lastUpdateDateTimeUtc,
    cancellation_requestor: a.cancellationRequestor,
    cancellation_comment: a.cancellationComment,
    cancellation_date_time_utc: a.cancellationDateTimeUtc,
    error_h_result: a.errorHResult,
    scope: a.scope,
    external_id: a.externalId,
    request_source: a.requestSource,
    file_identifier: a.relatedFileInfo ? a.relatedFileInfo.fileIdentifier.toLowerCase() : null,
    file_identifier_type: a.relatedFileInfo ? a.relatedFileInfo.fileIdentifierType : null,
    commands: json(a.commands),
    troubleshoot_info: a.troubleshootInfo === null ? null : json(a.troubleshootInfo),
    requestor_id: a.requestorId,
    device_result: a.deviceResult === null ? null : json(a.deviceResult),
    expires_at: a.expiresAt,
    active_key: activeKey,
  };
}

export function actionFromRow(r: MachineActionsTable): MachineAction {
  return {
    id: r.id,
    type: r.type as ActionType,
    title: r.title,
    requestor: r.requestor,
    requestorComment: r.requestor_comment,
    status: r.status as ActionStatus,
    machineId: r.machine_id,
    computerDnsName: r.computer_dns_name,
    creationDateTimeUtc: r.creation_date_time_utc,
    lastUpdateDateTimeUtc: r.last_update_date_time_utc,
    cancellationRequestor: r.cancellation_requestor,
    cancellationComment: r.cancellation_comment,
    cancellationDateTimeUtc: r.cancellation_date_time_utc,
    errorHResult: r.error_h_result,
    scope: r.scope,
    externalId: r.external_id,
    requestSource: r.request_source,
    relatedFileInfo:
      r.file_identifier === null
        ? null
        : { fileIdentifier: r.file_identifier, fileIdentifierType: r.file_identifier_type as FileIdentifierType },
    commands: parse<unknown[]>(r.commands),
    troubleshootInfo: parseOrNull<unknown>(r.troubleshoot_info),
    requestorId: r.requestor_id,
    deviceResult: parseOrNull<DeviceResultRecord>(r.device_result),
    expiresAt: r.expires_at,
  };
}

export function observationToRow(machineId: string, o: FileObservation): FileObservationsTable {
  return {
    machine_id: machineId,
    sha1: o.sha1.toLowerCase(),
    path: o.path,
    sha256: o.sha256 === null ? null : o.sha256.toLowerCase(),
    size: o.size,
    signer: o.signer,
    trusted: bool(o.trusted),
    seen_at: o.seenAt,
  };
}

export function observationFromRow(r: FileObservationsTable): FileObservation {
  return {
    sha1: r.sha1,
    sha256: r.sha256,
    path: r.path,
    size: r.size,
    signer: r.signer,
    trusted: fromBool(r.trusted),
    seenAt: r.seen_at,
  };
}

export function vaultItemToRow(v: VaultItemRecord): VaultItemsTable {
  return {
    machine_id: v.machineId.toLowerCase(),
    item_id: v.itemId,
    action_id: v.actionId,
    sha1: v.sha1.toLowerCase(),
    sha256: v.sha256 === null ? null : v.sha256.toLowerCase(),
    original_path: v.originalPath,
    size: v.size,
    quarantined_at: v.quarantinedAt,
    state: v.state,
    detail: json(v.detail),
  };
}

export function vaultItemFromRow(r: VaultItemsTable): VaultItemRecord {
  return {
    machineId: r.machine_id,
    itemId: r.item_id,
    actionId: r.action_id,
    sha1: r.sha1,
    sha256: r.sha256,
    originalPath: r.original_path,
    size: r.size,
    quarantinedAt: r.quarantined_at,
    state: r.state,
    detail: parse<unknown>(r.detail),
  };
}

export function auditToRow(e: AuditEntry): AuditLogTable {
  return {
    id: e.id,
    at: e.at,
    actor_type: e.actorType,
    actor_id: e.actorId,
    actor_name: e.actorName,
    action: e.action,
    target: e.target,
    result: e.result,
    status: e.status,
    client_ip: e.clientIp,
    correlation_id: e.correlationId,
    detail: json(e.detail),
    prev_hash: e.prevHash,
    hash: e.hash,
  };
}

export function auditFromRow(r: AuditLogTable): AuditEntry {
  return {
    id: r.id,
    at: r.at,
    actorType: r.actor_type as AuditEntry['actorType'],
    actorId: r.actor_id,
    actorName: r.actor_name,
    action: r.action,
    target: r.target,
    result: r.result as AuditEntry['result'],
    status: r.status,
    clientIp: r.client_ip,
    correlationId: r.correlation_id,
    detail: parse<unknown>(r.detail),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export function userToRow(u: UserRecord): UsersTable {
  return {
    oid: u.oid.toLowerCase(),
    upn: u.upn,
    display_name: u.displayName,
    password_hash: u.passwordHash,
    enabled: bool(u.enabled),
    failed_logins: u.failedLogins,
    locked_until: u.lockedUntil,
    created_at: u.createdAt,
    updated_at: u.updatedAt,
  };
}

export function userFromRow(r: UsersTable): UserRecord {
  return {
    oid: r.oid,
    upn: r.upn,
    displayName: r.display_name,
    passwordHash: r.password_hash,
    enabled: fromBool(r.enabled),
    failedLogins: Number(r.failed_logins),
    lockedUntil: r.locked_until,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function roleToRow(r: RoleRecord): RbacRolesTable {
  return {
    id: r.id.toLowerCase(),
    name: r.name,
    description: r.description,
    permissions: json(r.permissions),
    built_in: bool(r.builtIn),
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  };
}

export function roleFromRow(r: RbacRolesTable): RoleRecord {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    permissions: parse<RbacPermission[]>(r.permissions),
    builtIn: fromBool(r.built_in),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function assignmentToRow(a: RoleAssignmentRecord): RoleAssignmentsTable {
  return {
    id: a.id.toLowerCase(),
    assignee_kind: a.assigneeKind,
    assignee: a.assignee,
    role_id: a.roleId.toLowerCase(),
    all_groups: bool(a.allGroups),
    created_at: a.createdAt,
    updated_at: a.updatedAt,
  };
}

export function assignmentFromRow(r: RoleAssignmentsTable, groupIds: number[]): RoleAssignmentRecord {
  return {
    id: r.id,
    assigneeKind: r.assignee_kind,
    assignee: r.assignee,
    roleId: r.role_id,
    allGroups: fromBool(r.all_groups),
    deviceGroupIds: [...groupIds].sort((a, b) => a - b),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** `ungroupedRank`: the rank the built-in group reports (after the last real group). */
export function deviceGroupFromRow(r: DeviceGroupsTable, ungroupedRank: number): DeviceGroupRecord {
  return {
    id: Number(r.id),
    name: r.name,
    description: r.description,
    rank: r.rank === null ? ungroupedRank : Number(r.rank),
    rule: parseOrNull<DeviceGroupRule>(r.rule),
    builtIn: fromBool(r.built_in),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function authCodeToRow(c: AuthCodeRecord): AuthCodesTable {
  return {
    code_hash: c.codeHash,
    client_id: c.clientId,
    redirect_uri: c.redirectUri,
    code_challenge: c.codeChallenge,
    user_oid: c.userOid,
    audience: c.audience,
    scopes: json(c.scopes),
    created_at: c.createdAt,
    expires_at: c.expiresAt,
    used_at: c.usedAt,
  };
}

export function authCodeFromRow(r: AuthCodesTable): AuthCodeRecord {
  return {
    codeHash: r.code_hash,
    clientId: r.client_id,
    redirectUri: r.redirect_uri,
    codeChallenge: r.code_challenge,
    userOid: r.user_oid,
    audience: r.audience,
    scopes: parse<string[]>(r.scopes),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    usedAt: r.used_at,
  };
}
