// Role-based access for delegated (user) callers, as MDE's RBAC: roles are sets of permissions, and each role
// assignment reaches all device groups or a list of them. What a user may do on a route is the union of the
// assignments whose role grants the route's permission; which devices they may do it on is the union of those
// assignments' device groups.
import type { RbacPermission } from './permissions.ts';

export const RBAC_PERMISSIONS: readonly RbacPermission[] = [
  'View data',
  'Alerts investigation',
  'Active remediation actions',
  'Manage security settings',
  'Manage portal system settings',
];

export function isRbacPermission(v: unknown): v is RbacPermission {
  return typeof v === 'string' && (RBAC_PERMISSIONS as readonly string[]).includes(v);
}

export interface RoleDefinition {
  id: string;
  name: string;
  description: string;
  permissions: RbacPermission[];
  builtIn: boolean;
}

/** Fixed ids, so built-in roles are the same row in every deployment and can be named in scripts. */
export const BUILT_IN_ROLE_IDS = {
  administrator: '6b1f3c52-9d1e-4b7a-8f0e-3a9c1d2e0001',
  reader: '6b1f3c52-9d1e-4b7a-8f0e-3a9c1d2e0002',
  responder: '6b1f3c52-9d1e-4b7a-8f0e-3a9c1d2e0003',
} as const;

export const BUILT_IN_ROLES: readonly RoleDefinition[] = [
  {
    id: BUILT_IN_ROLE_IDS.administrator,
    name: 'Tourniquet Administrator',
    description: 'Every permission, on the device groups it is assigned for.',
    permissions: [...RBAC_PERMISSIONS],
    builtIn: true,
  },
  {
    id: BUILT_IN_ROLE_IDS.reader,
    name: 'Security reader',
    description: 'Read-only analyst: sees devices and actions, changes nothing.',
    permissions: ['View data'],
    builtIn: true,
  },
  {
    id: BUILT_IN_ROLE_IDS.responder,
    name: 'Security responder',
    description: 'Investigates and remediates: stop and quarantine, isolate, scan, collect.',
    permissions: ['View data', 'Alerts investigation', 'Active remediation actions'],
    builtIn: true,
  },
];

/**
 * The delegated permissions (`scp`) a role permission brings into a user's token. Each route's delegated scope
 * requirement (core/permissions.ts) is met by the scopes of the role permission that route demands.
 */
export const DELEGATED_SCOPES: Readonly<Record<RbacPermission, readonly string[]>> = {
  'View data': ['Machine.Read', 'Alert.Read'],
  'Alerts investigation': ['Alert.ReadWrite', 'Machine.CollectForensics'],
  'Active remediation actions': [
    'Machine.ReadWrite',
    'Machine.StopAndQuarantine',
    'Machine.Isolate',
    'Machine.Scan',
    'Machine.RestrictExecution',
    'Machine.Offboard',
    'Machine.LiveResponse',
    'Ti.ReadWrite',
  ],
  'Manage security settings': ['Tourniquet.Rbac.Read', 'Tourniquet.Rbac.Manage'],
  'Manage portal system settings': ['Tourniquet.Audit.Read'],
};

/** Every delegated permission a token of ours may carry, in a stable order. */
export const ALL_DELEGATED_SCOPES: readonly string[] = [...new Set(RBAC_PERMISSIONS.flatMap((p) => DELEGATED_SCOPES[p]))];

/** `scp` values for a set of role permissions, in the stable order of ALL_DELEGATED_SCOPES. */
export function delegatedScopesFor(permissions: Iterable<RbacPermission>): string[] {
  const wanted = new Set<string>();
  for (const p of permissions) for (const s of DELEGATED_SCOPES[p]) wanted.add(s);
  return ALL_DELEGATED_SCOPES.filter((s) => wanted.has(s));
}

/** One assignment as the decision needs it: what the role grants, and where. */
export interface EffectiveAssignment {
  permissions: readonly RbacPermission[];
  allGroups: boolean;
  deviceGroupIds: readonly number[];
}

export type RbacDecision =
  /** visibility undefined: every device group, including ones created later. */
  | { ok: true; visibility: { rbacGroupIds: number[] } | undefined }
  | { ok: false; reason: 'noRole' | 'missingPermission'; granted: RbacPermission[] };

/** Whether the assignments allow `permission`, and on which device groups. */
export function decide(assignments: readonly EffectiveAssignment[], permission: RbacPermission): RbacDecision {
  if (assignments.length === 0) return { ok: false, reason: 'noRole', granted: [] };
  const relevant = assignments.filter((a) => a.permissions.includes(permission));
  if (relevant.length === 0) return { ok: false, reason: 'missingPermission', granted: permissionsOf(assignments) };
  if (relevant.some((a) => a.allGroups)) return { ok: true, visibility: undefined };
  const ids = [...new Set(relevant.flatMap((a) => a.deviceGroupIds))].sort((x, y) => x - y);
  return { ok: true, visibility: { rbacGroupIds: ids } };
}

/** Union of the permissions the assignments grant, in the canonical order. */
export function permissionsOf(assignments: readonly Pick<EffectiveAssignment, 'permissions'>[]): RbacPermission[] {
  const have = new Set(assignments.flatMap((a) => a.permissions));
  return RBAC_PERMISSIONS.filter((p) => have.has(p));
}

/** The 403 text for a delegated caller whose roles do not grant what the route needs. */
export function rbacForbiddenMessage(permission: RbacPermission, decision: Extract<RbacDecision, { ok: false }>): string {
  if (decision.reason === 'noRole') {
    return `The user has no role assigned. API requires the role permission "${permission}".`;
  }
  return `Missing role permission. API requires the role permission "${permission}", user's role permissions: ${decision.granted.join(',')}.`;
}

export const MAX_ROLE_NAME_LENGTH = 128;
export const MAX_DESCRIPTION_LENGTH = 1024;

/** Role and group names are shown in lists and split on commas by the CLI: printable, no commas, trimmed. */
export function displayNameProblem(name: unknown, what: string, max = MAX_ROLE_NAME_LENGTH): string | null {
  if (typeof name !== 'string') return `${what} must be a string`;
  if (name.trim() !== name || name.length === 0) return `${what} must be non-empty and have no leading or trailing spaces`;
  if (name.length > max) return `${what} must be at most ${max} characters`;
  if (/[\u0000-\u001f\u007f,]/.test(name)) return `${what} must not contain commas or control characters`;
  return null;
}

/** Role permissions from untrusted input: a non-empty list of known names, duplicates folded. */
export function parsePermissions(input: unknown): RbacPermission[] | string {
  if (!Array.isArray(input) || input.length === 0) return 'permissions must be a non-empty array';
  const unknown = input.filter((p) => !isRbacPermission(p));
  if (unknown.length > 0) {
    return `unknown permission(s): ${unknown.map((u) => String(u)).join(', ')}. Known: ${RBAC_PERMISSIONS.join(', ')}`;
  }
  const have = new Set(input as RbacPermission[]);
  return RBAC_PERMISSIONS.filter((p) => have.has(p));
}
