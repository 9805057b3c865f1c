// Table types for Kysely, identical on SQLite and PostgreSQL. Conventions that make one schema serve both:
// JSON is text, booleans are integers 0/1, timestamps are the fixed-width 7-digit UTC text of core/time.ts
// (so string order is time order), and 64-bit integers come back as JS numbers (the PostgreSQL pool parses int8).

/** 0 or 1: booleans as integers so both databases store and compare them the same way. */
export type IntBool = 0 | 1;

export interface TenantTable {
  id: string;
  /** Always 1: the unique singleton makes "create the tenant" idempotent across racing nodes. */
  singleton: number;
  name: string;
  created_at: string;
}

export interface AppsTable {
  client_id: string;
  tenant_id: string;
  name: string;
  secret_hash: string;
  roles: string; // JSON string[]
  created_at: string;
  disabled: IntBool;
  /** A public client (no secret): may use the password and authorization-code grants without authenticating. */
  public_client: IntBool;
  redirect_uris: string; // JSON string[]
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: string;
  private_pem: string;
  created_at: string;
  status: 'active' | 'retired';
  retired_at: string | null;
}

export interface EnrollTokensTable {
  id: string;
  token_hash: string;
  group_name: string | null;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  max_uses: number | null;
  uses: number;
}

export interface MachinesTable {
  id: string;
  merged_into_machine_id: string | null;
  is_potential_duplication: IntBool;
  is_excluded: IntBool;
  exclusion_reason: string | null;
  computer_dns_name: string;
  first_seen: string;
  last_seen: string;
  os_platform: string;
  os_version: string | null;
  os_processor: string | null;
  version: string | null;
  last_ip_address: string | null;
  last_external_ip_address: string | null;
  agent_version: string | null;
  os_build: number | null;
  health_status: string;
  device_value: string | null;
  rbac_group_id: number;
  rbac_group_name: string | null;
  risk_score: string | null;
  exposure_level: string | null;
  is_aad_joined: IntBool;
  aad_device_id: string | null;
  machine_tags: string; // JSON string[]; machine_tags table mirrors it for `any` filters
  defender_av_status: string | null;
  onboarding_status: string;
  os_architecture: string | null;
  managed_by: string | null;
  managed_by_status: string | null;
  ip_addresses: string; // JSON IpAddressInfo[]
  vm_metadata: string | null; // JSON VmMetadata
  device_public_key: string | null;
  protection_running: IntBool;
  capabilities: string; // JSON string[]
  enroll_group: string | null;
  domain: string | null;
  offboarded: IntBool;
  simulated: IntBool;
}

export interface MachineTagsTable {
  machine_id: string;
  tag: string;
}

/** One row per (machine, ip) sighting interval: bounded growth, and findbyip is an interval overlap. */
export interface MachineIpsTable {
  machine_id: string;
  ip: string;
  first_seen: string;
  last_seen: string;
}

export interface MachineActionsTable {
  id: string;
  type: string;
  title: string | null;
  requestor: string;
  requestor_comment: string;
  status: string;
  machine_id: string;
  computer_dns_name: string | null;
  creation_date_time_utc: string;
  last_update_date_time_utc: string;
  cancellation_requestor: string | null;
  cancellation_comment: string | null;
  cancellation_date_time_utc: string | null;
  error_h_result: number;
  scope: string | null;
  external_id: string | null;
  request_source: string;
  /** relatedFileInfo.fileIdentifier (the lower-case SHA-1 for StopAndQuarantineFile). */
  file_identifier: string | null;
  file_identifier_type: string | null;
  commands: string; // JSON
  troubleshoot_info: string | null; // JSON
  requestor_id: string;
  device_result: string | null; // JSON DeviceResultRecord
  expires_at: string;
  /** The duplicate key while Pending/InProgress, NULL once final; UNIQUE, so the database enforces the rule. */
  active_key: string | null;
}

export interface FileObservationsTable {
  machine_id: string;
  sha1: string;
  path: string;
  sha256: string | null;
  size: number;
  signer: string | null;
  trusted: IntBool;
  seen_at: string;
}

/** Machines that have sent a complete file inventory: absence from it means "not seen", not "unknown". */
export interface FileInventoriesTable {
  machine_id: string;
  completed_at: string;
}

export interface VaultItemsTable {
  machine_id: string;
  item_id: string;
  action_id: string | null;
  sha1: string;
  sha256: string | null;
  original_path: string;
  size: number;
  quarantined_at: string;
  state: 'quarantined' | 'restored' | 'purged';
  detail: string; // JSON
}

export interface AuditLogTable {
  id: number;
  at: string;
  actor_type: string;
  actor_id: string;
  actor_name: string | null;
  action: string;
  target: string | null;
  result: string;
  status: number | null;
  client_ip: string | null;
  correlation_id: string | null;
  detail: string; // JSON
  prev_hash: string;
  hash: string;
}

export interface UsersTable {
  oid: string;
  upn: string;
  display_name: string;
  password_hash: string;
  enabled: IntBool;
  /** Consecutive wrong passwords since the last success or lock. */
  failed_logins: number;
  locked_until: string | null;
  created_at: string;
  updated_at: string;
}

export interface RbacRolesTable {
  id: string;
  name: string;
  description: string;
  permissions: string; // JSON RbacPermission[]
  built_in: IntBool;
  created_at: string;
  updated_at: string;
}

export interface DeviceGroupsTable {
  id: number;
  name: string;
  description: string;
  rank: number | null;
  rule: string | null; // JSON DeviceGroupRule
  built_in: IntBool;
  created_at: string;
  updated_at: string;
}

export interface IdCountersTable {
  name: string;
  value: number;
}

export interface RoleAssignmentsTable {
  id: string;
  assignee_kind: 'user' | 'group' | 'upn';
  assignee: string;
  role_id: string;
  all_groups: IntBool;
  created_at: string;
  updated_at: string;
}

export interface RoleAssignmentGroupsTable {
  assignment_id: string;
  group_id: number;
}

export interface AuthCodesTable {
  /** sha256 hex of the code; the code itself is never stored. */
  code_hash: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  user_oid: string;
  audience: string;
  scopes: string; // JSON string[]
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface Database {
  tenant: TenantTable;
  apps: AppsTable;
  signing_keys: SigningKeysTable;
  enroll_tokens: EnrollTokensTable;
  machines: MachinesTable;
  machine_tags: MachineTagsTable;
  machine_ips: MachineIpsTable;
  machine_actions: MachineActionsTable;
  file_observations: FileObservationsTable;
  file_inventories: FileInventoriesTable;
  vault_items: VaultItemsTable;
  audit_log: AuditLogTable;
  users: UsersTable;
  rbac_roles: RbacRolesTable;
  device_groups: DeviceGroupsTable;
  id_counters: IdCountersTable;
  role_assignments: RoleAssignmentsTable;
  role_assignment_groups: RoleAssignmentGroupsTable;
  auth_codes: AuthCodesTable;
}
