// The query options of a list route ($filter, $top, $skip, $orderby, $count, $select, …) → a ListQuery.
// Input is the query object Fastify has already URL-decoded (`%24filter` → `$filter`, `+` → space).
import { MAX_TOP, type FieldType, type ListQuery, type OrderBy } from '../../../core/query.ts';
import { entityTypeOf, FieldResolver, unknownProperty } from './fields.ts';
import { FILTER_LIMITS, parseFilter, type FilterLimits } from './filter.ts';
import { invalidQuery } from './invalid.ts';

export interface ParsedListQuery extends ListQuery {
  /** Canonical property names from `$select`, in the order given; absent when all properties are wanted. */
  select?: string[];
  /** Whether the client sent `$top`: without it, a full page earns an @odata.nextLink (mde-api.md D15). */
  topSpecified: boolean;
}

export interface ListQueryOptions {
  /** Page size when the client sends no $top; never above MAX_TOP. */
  defaultTop?: number;
  /** Every property of the entity, for `$select` (filterable fields are often a subset). Default: the fields. */
  selectable?: readonly string[];
  /** The entity type named in error messages; derived from the field table when omitted. */
  entityType?: string;
  filterLimits?: FilterLimits;
}

/** Largest $skip accepted: the live service's Int32 bound, and a safe OFFSET for every database. */
export const MAX_SKIP = 2_147_483_647;

/** System query options that exist in OData but that these entity sets do not offer. */
const NOT_ALLOWED: ReadonlyMap<string, string> = new Map([
  ['$expand', 'Expand'],
  ['$search', 'Search'],
  ['$apply', 'Apply'],
  ['$compute', 'Compute'],
  ['$skiptoken', 'SkipToken'],
  ['$deltatoken', 'DeltaToken'],
  ['$levels', 'Levels'],
  ['$index', 'Index'],
  ['$schemaversion', 'SchemaVersion'],
  ['$id', 'Id'],
]);

const SUPPORTED = new Set(['$filter', '$top', '$skip', '$orderby', '$count', '$select', '$format']);

type QueryInput = Record<string, string | string[] | undefined>;

export function parseListQuery(query: QueryInput, fields: Record<string, FieldType>, opts: ListQueryOptions = {}): ParsedListQuery {
  const options = collectOptions(query);
  const resolver = new FieldResolver(fields, opts.entityType ?? entityTypeOf(fields));

  const filterText = options.get('$filter');
  const topText = options.get('$top');
  const skipText = options.get('$skip');
  const orderByText = options.get('$orderby');
  const countText = options.get('$count');
  const selectText = options.get('$select');
  const formatText = options.get('$format');

  const result: ParsedListQuery = {
    filter: filterText === undefined ? null : parseFilter(filterText, resolver, opts.filterLimits ?? FILTER_LIMITS),
    orderBy: orderByText === undefined ? [] : parseOrderBy(orderByText, resolver),
    top: topText === undefined ? Math.min(opts.defaultTop ?? MAX_TOP, MAX_TOP) : parseTop(topText),
    skip: skipText === undefined ? 0 : parseSkip(skipText),
    count: countText === undefined ? false : parseCount(countText),
    topSpecified: topText !== undefined,
  };
  if (selectText !== undefined) {
    const select = parseSelect(selectText, opts.selectable ?? Object.keys(fields), resolver.entityType);
    if (select) result.select = select;
  }
  if (formatText !== undefined) checkFormat(formatText);
  return result;
}

/**
 * The `$`-options by lower-cased name (OData 4.01 matches system query options case-insensitively), each given
 * once and not empty. Parameters without `$` are the client's own business (cache busters) and are ignored.
 */
function collectOptions(query: QueryInput): Map<string, string> {
  const options = new Map<string, string>();
  for (const rawKey of Object.keys(query)) {
    const raw = query[rawKey];
    if (raw === undefined) continue;
    // A key that reached us still percent-encoded (`%24filter`, from a client that encoded twice).
    const key = rawKey.replace(/^%24/i, '$');
    if (!key.startsWith('$')) continue;
    const name = key.toLowerCase();
    const notAllowed = NOT_ALLOWED.get(name);
    if (notAllowed) throw invalidQuery(`Query option '${notAllowed}' is not allowed on this resource.`);
    if (!SUPPORTED.has(name)) {
      throw invalidQuery(`Custom query option '${key}' that starts with '$' is not supported.`);
    }
    const values = Array.isArray(raw) ? raw : [raw];
    if (values.length === 0) continue;
    if (values.length > 1 || options.has(name)) {
      throw invalidQuery(`Query option '${key}' was specified more than once, but it must be specified at most once.`);
    }
    const value = values[0]!;
    if (value.trim() === '') throw invalidQuery(`The value for OData query '${key}' cannot be empty.`);
    options.set(name, value);
  }
  return options;
}

/** `$top` / `$skip`: a non-negative integer within its limit, refused in the live service's words otherwise. */
function parsePaging(option: 'top' | 'skip', text: string, limit: number): number {
  const name = option === 'top' ? 'Top' : 'Skip';
  const value = text.trim();
  if (!/^\d+$/.test(value)) {
    throw invalidQuery(
      `Invalid value '${text}' for $${option} query option found. The $${option} query option requires a non-negative integer value.`,
    );
  }
  if (exceeds(value, limit)) {
    throw invalidQuery(
      `The limit of '${limit}' for ${name} query has been exceeded. The value from the incoming request is '${value}'.`,
    );
  }
  return Number(value);
}

const parseTop = (text: string): number => parsePaging('top', text, MAX_TOP);
const parseSkip = (text: string): number => parsePaging('skip', text, MAX_SKIP);

/** Compares a digit string with a limit without ever turning a huge number into an imprecise float. */
function exceeds(digits: string, limit: number): boolean {
  const trimmed = digits.replace(/^0+(?=\d)/, '');
  return trimmed.length > 15 || Number(trimmed) > limit;
}

function parseCount(text: string): boolean {
  const value = text.trim().toLowerCase();
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw invalidQuery(`'${text}' is not a valid count option; use true or false.`);
}

function parseOrderBy(text: string, resolver: FieldResolver): OrderBy[] {
  const orderBy: OrderBy[] = [];
  const seen = new Set<string>();
  for (const item of text.split(',')) {
    const m = /^\s*([^\s,]+)(?:\s+(asc|desc))?\s*$/i.exec(item);
    if (!m) {
      throw invalidQuery(
        `Syntax error in $orderby '${text}': each item must be a property name optionally followed by asc or desc, separated by commas.`,
      );
    }
    const field = resolver.resolve(m[1]!);
    if (field.type === 'stringCollection') {
      throw invalidQuery(`The collection property '${field.name}' cannot be used in $orderby.`);
    }
    if (seen.has(field.name)) {
      throw invalidQuery(`Duplicate property named '${field.name}' is not supported in '$orderby'.`);
    }
    seen.add(field.name);
    orderBy.push({ field: field.name, direction: (m[2] ?? 'asc').toLowerCase() as 'asc' | 'desc' });
  }
  return orderBy;
}

/** `$select=*` (or a list containing `*`) means every property and yields undefined. */
function parseSelect(text: string, selectable: readonly string[], entityType: string): string[] | undefined {
  const byLower = new Map(selectable.map((name) => [name.toLowerCase(), name] as const));
  const selected: string[] = [];
  let all = false;
  for (const item of text.split(',')) {
    const name = item.trim();
    if (name === '') {
      throw invalidQuery(`Syntax error in $select '${text}': property names must be separated by single commas.`);
    }
    if (name === '*') {
      all = true;
      continue;
    }
    const canonical = byLower.get(name.toLowerCase());
    if (canonical === undefined) unknownProperty(name, entityType, selectable.join(', '));
    if (!selected.includes(canonical)) selected.push(canonical);
  }
  return all ? undefined : selected;
}

/** Only JSON is ever served; `$format=json` is accepted as the no-op it is. */
function checkFormat(text: string): void {
  const value = text.trim().toLowerCase();
  if (value === 'json' || /^application\/json(\s*;.*)?$/.test(value)) return;
  throw invalidQuery(`The $format '${text}' is not supported; only json is available.`);
}
