// Splitting many rows over statements that stay under the database's bind-parameter limit.
import type { StoreDialect } from './dialect.ts';

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** How many rows shaped like `sample` one multi-row statement may carry. */
export function rowsPerStatement(dialect: Pick<StoreDialect, 'maxParameters'>, sample: object): number {
  return Math.max(1, Math.floor(dialect.maxParameters / Object.keys(sample).length));
}
