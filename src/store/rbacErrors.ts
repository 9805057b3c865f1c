// Why the store refused an RBAC change, so callers (API, CLI) can answer with a precise message instead of a
// database error: a name or UPN already taken, a role still assigned, a built-in row, a reference to nothing.
export type RbacConflictKind = 'duplicate' | 'inUse' | 'builtIn' | 'missingReference';

export class RbacConflictError extends Error {
  constructor(
    readonly kind: RbacConflictKind,
    message: string,
  ) {
    super(message);
    this.name = 'RbacConflictError';
  }
}

/** A unique-index violation, as SQLite (better-sqlite3) or PostgreSQL (pg) reports it. */
export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return true;
  }
  return false;
}

/** A foreign-key violation (a reference to a row that does not exist). */
export function isForeignKeyViolation(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return true;
  }
  return false;
}
