// Property names as clients write them → the canonical wire names of one entity set, with their types.
import { MACHINE_ACTION_FIELDS, MACHINE_FIELDS, type FieldType } from '../../../core/query.ts';
import { invalidQuery } from './invalid.ts';

export interface ResolvedField {
  name: string;
  type: FieldType;
}

/**
 * Paths clients use that are not a top-level filterable name: the action's SHA-1 lives in
 * `relatedFileInfo/fileIdentifier` on the wire, and XSOAR and the docs spell `lastUpdateDateTimeUtc` as
 * `lastUpdateTimeUtc` (mde-api.md §11). An alias applies only when its target is a field of the entity set.
 */
const ALIASES: ReadonlyArray<readonly [string, string]> = [
  ['relatedfileinfo/fileidentifier', 'fileIdentifier'],
  ['lastupdatetimeutc', 'lastUpdateDateTimeUtc'],
];

/** The OData primitive type of a field, for type-mismatch messages. */
export function edmTypeOf(type: FieldType): string {
  switch (type) {
    case 'string':
    case 'enum':
      return 'Edm.String';
    case 'datetime':
      return 'Edm.DateTimeOffset';
    case 'number':
      return 'Edm.Int64';
    case 'boolean':
      return 'Edm.Boolean';
    case 'stringCollection':
      return 'Collection(Edm.String)';
  }
}

export class FieldResolver {
  /** Lower-cased name or alias → field. A Map, so that names like `constructor` never reach Object.prototype. */
  private readonly byLowerName = new Map<string, ResolvedField>();

  constructor(
    fields: Record<string, FieldType>,
    readonly entityType: string,
  ) {
    for (const name of Object.keys(fields)) {
      const type = fields[name]!;
      this.byLowerName.set(name.toLowerCase(), { name, type });
    }
    for (const [alias, target] of ALIASES) {
      const field = this.byLowerName.get(target.toLowerCase());
      if (field && !this.byLowerName.has(alias)) this.byLowerName.set(alias, field);
    }
  }

  /** The field a (possibly `/`-separated) path names, or null. */
  find(path: string): ResolvedField | null {
    return this.byLowerName.get(path.toLowerCase()) ?? null;
  }

  /** The field a path names, or the live parser's "Could not find a property" error listing what exists. */
  resolve(path: string): ResolvedField {
    const field = this.find(path);
    if (field) return field;
    const known = [...new Set([...this.byLowerName.values()].map((f) => f.name))].join(', ');
    return unknownProperty(path, this.entityType, known);
  }
}

export function unknownProperty(path: string, entityType: string, known: string): never {
  throw invalidQuery(
    `Could not find a property named '${path}' on type '${entityType}'. Properties that can be used here: ${known}.`,
  );
}

/** The entity type name for messages when the caller did not give one. */
export function entityTypeOf(fields: Record<string, FieldType>): string {
  if (fields === MACHINE_ACTION_FIELDS) return 'MachineAction';
  if (fields === MACHINE_FIELDS) return 'Machine';
  return 'Entity';
}
