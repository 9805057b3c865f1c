// Compiles the OData ListQuery AST (core/query.ts) into SQL fragments that mean the same on SQLite and
// PostgreSQL. Semantics follow OData, not SQL: comparisons are two-valued (`x ne 'a'` holds when x is null,
// `not (x eq 'a')` likewise), so every predicate is built to be true or false, never NULL.
import { sql } from 'kysely';
import type { Expression, RawBuilder, SqlBool } from 'kysely';
import { ODataQueryError } from '../core/errors.ts';
import type { FieldType, FilterExpr, ListQuery, Literal, OrderBy } from '../core/query.ts';
import { MACHINE_ACTION_FIELDS, MACHINE_FIELDS, MAX_TOP } from '../core/query.ts';
import { normalizeTimestamp } from '../core/time.ts';

/**
 * How a string field matches: `exact`; `caseInsensitive` (lower() on both sides, as MDE does for DNS names);
 * `lowerLiteral` for hex ids that are always stored in lower case — exact, but an upper-case literal still
 * finds its row, and the plain column index stays usable.
 */
type Matching = 'exact' | 'caseInsensitive' | 'lowerLiteral';

interface Field {
  column: string; // qualified, e.g. a.status
  type: FieldType;
  nullable: boolean;
  matching: Matching;
  /** For collections: the child table holding one row per element. */
  collection?: { table: string; ownerColumn: string; valueColumn: string; parentKey: string };
}

export interface EntityFields {
  entity: string;
  fields: Readonly<Record<string, Field>>;
  defaultOrder: readonly OrderBy[];
  /** Appended to every order so paging is stable when sort keys tie. */
  tieBreaker: string;
}

function field(column: string, type: FieldType, nullable: boolean, matching: Matching = 'exact'): Field {
  return { column, type, nullable, matching };
}

const ACTION_COLUMNS: Record<string, Field> = {
  id: field('a.id', 'string', false, 'lowerLiteral'),
  status: field('a.status', 'enum', false),
  machineId: field('a.machine_id', 'string', false, 'lowerLiteral'),
  type: field('a.type', 'enum', false),
  requestor: field('a.requestor', 'string', false),
  creationDateTimeUtc: field('a.creation_date_time_utc', 'datetime', false),
  lastUpdateDateTimeUtc: field('a.last_update_date_time_utc', 'datetime', false),
  computerDnsName: field('a.computer_dns_name', 'string', true, 'caseInsensitive'),
  requestSource: field('a.request_source', 'string', false),
  scope: field('a.scope', 'string', true),
  errorHResult: field('a.error_h_result', 'number', false),
  fileIdentifier: field('a.file_identifier', 'string', true, 'lowerLiteral'),
};

const MACHINE_COLUMNS: Record<string, Field> = {
  id: field('m.id', 'string', false, 'lowerLiteral'),
  computerDnsName: field('m.computer_dns_name', 'string', false, 'caseInsensitive'),
  firstSeen: field('m.first_seen', 'datetime', false),
  lastSeen: field('m.last_seen', 'datetime', false),
  osPlatform: field('m.os_platform', 'string', false),
  version: field('m.version', 'string', true),
  osBuild: field('m.os_build', 'number', true),
  deviceValue: field('m.device_value', 'enum', true),
  aadDeviceId: field('m.aad_device_id', 'string', true, 'caseInsensitive'),
  machineTags: {
    ...field('m.machine_tags', 'stringCollection', false),
    collection: { table: 'machine_tags', ownerColumn: 'machine_id', valueColumn: 'tag', parentKey: 'm.id' },
  },
  exposureLevel: field('m.exposure_level', 'enum', true),
  onboardingStatus: field('m.onboarding_status', 'string', false),
  lastIpAddress: field('m.last_ip_address', 'string', true),
  lastExternalIpAddress: field('m.last_external_ip_address', 'string', true),
  healthStatus: field('m.health_status', 'enum', false),
  riskScore: field('m.risk_score', 'enum', true),
  rbacGroupId: field('m.rbac_group_id', 'number', false),
  rbacGroupName: field('m.rbac_group_name', 'string', true),
  agentVersion: field('m.agent_version', 'string', true),
  isAadJoined: field('m.is_aad_joined', 'boolean', false),
  defenderAvStatus: field('m.defender_av_status', 'string', true),
};

function checkCovers(entity: string, declared: Record<string, FieldType>, mapped: Record<string, Field>): void {
  for (const [name, type] of Object.entries(declared)) {
    if (mapped[name]?.type !== type) throw new Error(`${entity}: field ${name} (${type}) has no matching column`);
  }
}
// The field lists in core are the contract with the parser: fail at startup, not per request, if they drift.
checkCovers('machineActions', MACHINE_ACTION_FIELDS, ACTION_COLUMNS);
checkCovers('machines', MACHINE_FIELDS, MACHINE_COLUMNS);

export const ACTION_ENTITY: EntityFields = {
  entity: 'MachineAction',
  fields: ACTION_COLUMNS,
  defaultOrder: [{ field: 'creationDateTimeUtc', direction: 'desc' }],
  tieBreaker: 'a.id',
};

export const MACHINE_ENTITY: EntityFields = {
  entity: 'Machine',
  fields: MACHINE_COLUMNS,
  defaultOrder: [{ field: 'lastSeen', direction: 'desc' }],
  tieBreaker: 'm.id',
};

const TRUE = sql<SqlBool>`1 = 1`;
const FALSE = sql<SqlBool>`1 = 0`;

function lookup(e: EntityFields, name: string): Field {
  const f = Object.hasOwn(e.fields, name) ? e.fields[name] : undefined;
  if (!f) throw new ODataQueryError(`Could not find a property named '${name}' on type '${e.entity}'.`);
  return f;
}

function describe(l: Literal): string {
  return l.kind === 'null' ? 'null' : `${l.kind} ${JSON.stringify(l.value)}`;
}

/** The bound value for a literal compared with `f`, or null for the null literal; rejects type mismatches. */
function sqlValue(name: string, f: Field, l: Literal): string | number | null {
  if (l.kind === 'null') return null;
  const mismatch = () =>
    new ODataQueryError(`A binary operator with incompatible types was detected: '${name}' (${f.type}) and ${describe(l)}.`);
  switch (f.type) {
    case 'string':
    case 'enum':
      if (l.kind !== 'string') throw mismatch();
      return f.matching === 'lowerLiteral' ? l.value.toLowerCase() : l.value;
    case 'number':
      if (l.kind !== 'number' || !Number.isFinite(l.value)) throw mismatch();
      return l.value;
    case 'boolean':
      if (l.kind !== 'boolean') throw mismatch();
      return l.value ? 1 : 0;
    case 'datetime': {
      if (l.kind === 'datetime') return l.value;
      const ts = l.kind === 'string' ? normalizeTimestamp(l.value) : null;
      if (ts === null) throw mismatch();
      return ts;
    }
    case 'stringCollection':
      throw new ODataQueryError(`The property '${name}' is a collection; use ${name}/any(...).`);
  }
}

const OPS = { eq: '=', ne: '<>', gt: '>', ge: '>=', lt: '<', le: '<=' } as const;

/** The column, lowered when the field compares case-insensitively. */
function lhs(f: Field): RawBuilder<unknown> {
  return f.matching === 'caseInsensitive' ? sql`lower(${sql.ref(f.column)})` : sql`${sql.ref(f.column)}`;
}

function rhs(f: Field, v: string | number): RawBuilder<unknown> {
  if (typeof v === 'number') {
    // Integer columns: a fractional (or huge) literal is compared as a double, which both databases accept;
    // binding 1.5 against a PostgreSQL bigint would be a type error instead of an answer.
    return Number.isSafeInteger(v) ? sql`${v}` : sql`cast(${v} as double precision)`;
  }
  return f.matching === 'caseInsensitive' ? sql`lower(${v})` : sql`${v}`;
}

/** Makes a predicate on the column false (not NULL) when the column is NULL. */
function guardNull(f: Field, p: RawBuilder<SqlBool>): RawBuilder<SqlBool> {
  return f.nullable ? sql<SqlBool>`(${sql.ref(f.column)} is not null and ${p})` : p;
}

function compileCompare(e: EntityFields, x: Extract<FilterExpr, { kind: 'compare' }>): RawBuilder<SqlBool> {
  const f = lookup(e, x.field);
  const v = sqlValue(x.field, f, x.value);
  if (v === null) {
    // OData: null eq null is true, anything ordered against null is false.
    if (x.op === 'eq') return f.nullable ? sql<SqlBool>`${sql.ref(f.column)} is null` : FALSE;
    if (x.op === 'ne') return f.nullable ? sql<SqlBool>`${sql.ref(f.column)} is not null` : TRUE;
    return FALSE;
  }
  const cmp = sql<SqlBool>`${lhs(f)} ${sql.raw(OPS[x.op])} ${rhs(f, v)}`;
  if (x.op === 'ne') return f.nullable ? sql<SqlBool>`(${sql.ref(f.column)} is null or ${cmp})` : cmp;
  return guardNull(f, cmp);
}

function compileIn(e: EntityFields, x: Extract<FilterExpr, { kind: 'in' }>): RawBuilder<SqlBool> {
  const f = lookup(e, x.field);
  const values = x.values.map((l) => sqlValue(x.field, f, l));
  const present = values.filter((v): v is string | number => v !== null);
  const parts: RawBuilder<SqlBool>[] = [];
  if (present.length > 0) {
    parts.push(guardNull(f, sql<SqlBool>`${lhs(f)} in (${sql.join(present.map((v) => rhs(f, v)))})`));
  }
  if (present.length < values.length && f.nullable) parts.push(sql<SqlBool>`${sql.ref(f.column)} is null`);
  if (parts.length === 0) return FALSE;
  return parts.length === 1 ? parts[0]! : sql<SqlBool>`(${sql.join(parts, sql` or `)})`;
}

function compileStartsWith(e: EntityFields, x: Extract<FilterExpr, { kind: 'startswith' }>): RawBuilder<SqlBool> {
  const f = lookup(e, x.field);
  if (f.type !== 'string' && f.type !== 'enum') {
    throw new ODataQueryError(`startswith requires a string property; '${x.field}' is ${f.type}.`);
  }
  if (typeof x.value !== 'string') throw new ODataQueryError('startswith requires a string literal.');
  const prefix = f.matching === 'lowerLiteral' ? x.value.toLowerCase() : x.value;
  if (prefix === '') return guardNull(f, TRUE);
  // substr, not LIKE: LIKE's case rules and wildcards differ between the two databases; substr is exact in both.
  // Both databases count characters (code points) in substr, not UTF-16 units.
  const head = sql`substr(${sql.ref(f.column)}, 1, ${[...prefix].length})`;
  const p =
    f.matching === 'caseInsensitive'
      ? sql<SqlBool>`lower(${head}) = lower(${prefix})`
      : sql<SqlBool>`${head} = ${prefix}`;
  return guardNull(f, p);
}

function compileAny(e: EntityFields, x: Extract<FilterExpr, { kind: 'any' }>): RawBuilder<SqlBool> {
  const f = lookup(e, x.field);
  const c = f.collection;
  if (!c) throw new ODataQueryError(`The property '${x.field}' is not a collection; any() does not apply.`);
  if (typeof x.value !== 'string') throw new ODataQueryError('any() requires a string literal.');
  return sql<SqlBool>`exists (select 1 from ${sql.table(c.table)} as c where c.${sql.ref(c.ownerColumn)} = ${sql.ref(
    c.parentKey,
  )} and c.${sql.ref(c.valueColumn)} = ${x.value})`;
}

/** Nested filters deeper than this are refused: a hostile $filter must not exhaust the stack or the planner. */
const MAX_DEPTH = 100;

export function compileFilter(e: EntityFields, x: FilterExpr, depth = 0): RawBuilder<SqlBool> {
  if (depth > MAX_DEPTH) throw new ODataQueryError('The $filter expression is nested too deeply.');
  switch (x.kind) {
    case 'compare':
      return compileCompare(e, x);
    case 'in':
      return compileIn(e, x);
    case 'startswith':
      return compileStartsWith(e, x);
    case 'any':
      return compileAny(e, x);
    case 'and':
      return sql<SqlBool>`(${compileFilter(e, x.left, depth + 1)} and ${compileFilter(e, x.right, depth + 1)})`;
    case 'or':
      return sql<SqlBool>`(${compileFilter(e, x.left, depth + 1)} or ${compileFilter(e, x.right, depth + 1)})`;
    case 'not':
      return sql<SqlBool>`(not ${compileFilter(e, x.expr, depth + 1)})`;
    default:
      throw new ODataQueryError('Unsupported $filter expression.');
  }
}

/** ORDER BY terms; NULLs sort as the lowest value in both databases (first ascending, last descending). */
export function compileOrder(e: EntityFields, orderBy: readonly OrderBy[]): Expression<unknown>[] {
  const terms = (orderBy.length > 0 ? orderBy : e.defaultOrder).map((o) => {
    const f = lookup(e, o.field);
    if (f.collection) throw new ODataQueryError(`The property '${o.field}' is a collection and cannot be ordered.`);
    if (o.direction !== 'asc' && o.direction !== 'desc') throw new ODataQueryError('Order direction must be asc or desc.');
    const nulls = f.nullable ? (o.direction === 'asc' ? sql` nulls first` : sql` nulls last`) : sql``;
    return sql`${sql.ref(f.column)} ${sql.raw(o.direction)}${nulls}`;
  });
  terms.push(sql`${sql.ref(e.tieBreaker)} asc`);
  return terms;
}

/** Rejects paging values the parser should already have refused (defence in depth: they reach SQL). */
export function checkPaging(q: ListQuery): void {
  if (!Number.isSafeInteger(q.top) || q.top < 0 || q.top > MAX_TOP) {
    throw new ODataQueryError(`The limit of '${MAX_TOP}' for Top query has been exceeded or $top is not valid.`);
  }
  if (!Number.isSafeInteger(q.skip) || q.skip < 0) throw new ODataQueryError('$skip must be a non-negative integer.');
}
