// Who may call what. Requirements are "all of these groups, any one permission from each group", for
// application tokens (`roles`) and delegated tokens (`scp`) separately, with the RBAC permission a delegated
// user's role must grant. The table mirrors MDE's documented (and observed) permissions.

export type RbacPermission =
  | 'View data'
  | 'Alerts investigation'
  | 'Active remediation actions'
  | 'Manage security settings'
  | 'Manage portal system settings';

export interface Requirement {
  /** Every inner list must be satisfied by at least one of its entries. */
  app: string[][];
  delegated: string[][];
  rbac: RbacPermission | null;
}

const READ_APP = ['Machine.Read.All', 'Machine.ReadWrite.All'];
const READ_DELEGATED = ['Machine.Read', 'Machine.ReadWrite'];
const ACTION_PERMISSIONS = [
  'Machine.Isolate',
  'Machine.CollectForensics',
  'Machine.CollectForensic', // the misspelling the live service once demanded (m365#6062); both are honoured
  'Machine.Scan',
  'Machine.RestrictExecution',
  'Machine.StopAndQuarantine',
  'Machine.Offboard',
  'Machine.LiveResponse',
];

/** An action POST needs its own permission and, for applications, one of the read roles too (m365#6055). */
function action(permission: string[], rbac: RbacPermission = 'Active remediation actions'): Requirement {
  return { app: [permission, READ_APP], delegated: [permission], rbac };
}

export const ROUTE_PERMISSIONS = {
  StopAndQuarantineFile: action(['Machine.StopAndQuarantine']),
  Isolate: action(['Machine.Isolate']),
  Unisolate: action(['Machine.Isolate']),
  RunAntiVirusScan: action(['Machine.Scan']),
  RestrictCodeExecution: action(['Machine.RestrictExecution']),
  UnrestrictCodeExecution: action(['Machine.RestrictExecution']),
  CollectInvestigationPackage: action(['Machine.CollectForensics', 'Machine.CollectForensic'], 'Alerts investigation'),
  Offboard: action(['Machine.Offboard']),
  LiveResponse: action(['Machine.LiveResponse']),
  cancelAction: { app: [ACTION_PERMISSIONS], delegated: [ACTION_PERMISSIONS], rbac: 'Active remediation actions' },
  readActions: { app: [READ_APP], delegated: [READ_DELEGATED], rbac: 'View data' },
  readMachines: { app: [READ_APP], delegated: [READ_DELEGATED], rbac: 'View data' },
  readFiles: { app: [READ_APP], delegated: [READ_DELEGATED], rbac: 'View data' },
  getPackageUri: {
    app: [READ_APP],
    delegated: [['Machine.CollectForensics', 'Machine.CollectForensic']],
    rbac: 'Alerts investigation',
  },
  readAlerts: {
    app: [['Alert.Read.All', 'Alert.ReadWrite.All']],
    delegated: [['Alert.Read', 'Alert.ReadWrite']],
    rbac: 'View data',
  },
  /** Tourniquet's own extension routes outside /api. */
  readAudit: { app: [['Tourniquet.Audit.Read']], delegated: [['Tourniquet.Audit.Read']], rbac: 'Manage portal system settings' },
  manageVault: {
    app: [['Machine.StopAndQuarantine'], READ_APP],
    delegated: [['Machine.StopAndQuarantine']],
    rbac: 'Active remediation actions',
  },
  readVault: { app: [READ_APP], delegated: [READ_DELEGATED], rbac: 'View data' },
  /** Users, roles, role assignments and device groups (issue 6). */
  readRbac: {
    app: [['Tourniquet.Rbac.Read', 'Tourniquet.Rbac.Manage']],
    delegated: [['Tourniquet.Rbac.Read', 'Tourniquet.Rbac.Manage']],
    rbac: 'Manage security settings',
  },
  manageRbac: { app: [['Tourniquet.Rbac.Manage']], delegated: [['Tourniquet.Rbac.Manage']], rbac: 'Manage security settings' },
} satisfies Record<string, Requirement>;

export type RouteName = keyof typeof ROUTE_PERMISSIONS;

/** Every application permission an app may be granted through `apps create --roles`. */
export const KNOWN_APP_ROLES: readonly string[] = [
  ...new Set([
    ...READ_APP,
    ...ACTION_PERMISSIONS,
    'Alert.Read.All',
    'Alert.ReadWrite.All',
    'Ti.ReadWrite',
    'Ti.ReadWrite.All',
    'File.Read.All',
    'Ip.Read.All',
    'Url.Read.All',
    'User.Read.All',
    'Vulnerability.Read.All',
    'Software.Read.All',
    'AdvancedQuery.Read.All',
    'Score.Read.All',
    'SecurityRecommendation.Read.All',
    'Tourniquet.Audit.Read',
    'Tourniquet.Rbac.Read',
    'Tourniquet.Rbac.Manage',
  ]),
];

/** The first unsatisfied group, or null when the granted permissions satisfy them all. */
export function missingGroup(groups: string[][], granted: readonly string[]): string[] | null {
  const have = new Set(granted);
  for (const g of groups) if (!g.some((p) => have.has(p))) return g;
  return null;
}

/** 403 text in the live 2026 form, naming the missing group and what the token holds. */
export function forbiddenMessage(kind: 'app' | 'delegated', missing: string[], granted: readonly string[]): string {
  return kind === 'app'
    ? `Missing application roles. API required roles: ${missing.join(',')}, application roles: ${granted.join(',')}.`
    : `Missing delegated scopes. API required scopes: ${missing.join(',')}, delegated scopes: ${granted.join(',')}.`;
}
