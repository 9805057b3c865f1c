// A parsed OData query, independent of HTTP and of any database: the server's parser produces it and each
// store adapter compiles it (the same Kysely code for SQLite and PostgreSQL).

export type Literal =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'null' }
  /** A date or date-time, already normalized to the stored fixed-width UTC form (time.ts). */
  | { kind: 'datetime'; value: string };

export type ComparisonOp = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le';

export type FilterExpr =
  | { kind: 'compare'; op: ComparisonOp; field: string; value: Literal }
  | { kind: 'in'; field: string; values: Literal[] }
  | { kind: 'startswith'; field: string; value: string }
  /** `machineTags/any(t: t eq 'x')` — a collection field containing a value. */
  | { kind: 'any'; field: string; value: string }
  | { kind: 'and'; left: FilterExpr; right: FilterExpr }
  | { kind: 'or'; left: FilterExpr; right: FilterExpr }
  | { kind: 'not'; expr: FilterExpr };

export interface OrderBy {
  field: string;
  direction: 'asc' | 'desc';
}

/** Field names are the canonical wire names (e.g. `creationDateTimeUtc`), already resolved case-insensitively. */
export interface ListQuery {
  filter: FilterExpr | null;
  orderBy: OrderBy[];
  top: number; // already capped at 10,000
  skip: number;
  count: boolean;
}

export type FieldType = 'string' | 'datetime' | 'number' | 'boolean' | 'stringCollection' | 'enum';

/** Filterable fields per entity set, with their types, so the parser can check literals and the store can map columns. */
export const MACHINE_ACTION_FIELDS: Record<string, FieldType> = {
  id: 'string',
  status: 'enum',
  machineId: 'string',
  type: 'enum',
  requestor: 'string',
  creationDateTimeUtc: 'datetime',
  lastUpdateDateTimeUtc: 'datetime',
  computerDnsName: 'string',
  requestSource: 'string',
  scope: 'string',
  errorHResult: 'number',
  fileIdentifier: 'string', // relatedFileInfo/fileIdentifier
};

export const MACHINE_FIELDS: Record<string, FieldType> = {
  id: 'string',
  computerDnsName: 'string',
  firstSeen: 'datetime',
  lastSeen: 'datetime',
  osPlatform: 'string',
  version: 'string',
  osBuild: 'number',
  deviceValue: 'enum',
  aadDeviceId: 'string',
  machineTags: 'stringCollection',
  exposureLevel: 'enum',
  onboardingStatus: 'string',
  lastIpAddress: 'string',
  lastExternalIpAddress: 'string',
  healthStatus: 'enum',
  riskScore: 'enum',
  rbacGroupId: 'number',
  rbacGroupName: 'string',
  agentVersion: 'string',
  isAadJoined: 'boolean',
  defenderAvStatus: 'string',
};

export const MAX_TOP = 10_000;
