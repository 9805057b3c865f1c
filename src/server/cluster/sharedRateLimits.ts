// Rate limits shared by every node: rate-limiter-flexible's RateLimiterPostgres counting in the `rate_limits`
// table of Tourniquet's own schema (created by migration 0003), on a small pool of its own. Throttle's 429 and
// Retry-After behaviour is unchanged: only where the counters live differs.
import pg from 'pg';
import { RateLimiterPostgres } from 'rate-limiter-flexible';
import { RATE_LIMIT_TABLE } from '../../store/migrations/0003_cluster.ts';
import type { LimiterFactory } from '../rateLimit.ts';

export interface SharedRateLimits {
  factory: LimiterFactory;
  close(): Promise<void>;
}

export interface SharedRateLimitOptions {
  url: string;
  /** The schema holding Tourniquet's tables; default: the connection's search_path. */
  schema?: string;
  poolSize?: number;
}

/** Same rule as the store's: the name goes into the connection's search_path. */
const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openSharedRateLimits(o: SharedRateLimitOptions): Promise<SharedRateLimits> {
  if (o.schema !== undefined && !SCHEMA_RE.test(o.schema)) throw new TypeError('schema must be a lower-case SQL identifier');
  const pool = new pg.Pool({
    connectionString: o.url,
    max: o.poolSize ?? 4,
    application_name: 'tourniquet-ratelimit',
    ...(o.schema ? { options: `-c search_path=${o.schema}` } : {}),
  });
  pool.on('error', () => undefined); // a dropped idle connection is replaced on the next query
  try {
    // Fail at start, not on the first API call, when the table is not there (migrations did not run).
    await pool.query(`select 1 from ${RATE_LIMIT_TABLE} limit 0`);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  let first = true;
  const factory: LimiterFactory = (name, points, duration) => {
    // One limiter deleting long-expired rows is enough: they all share the table.
    const clearExpiredByTimeout = first;
    first = false;
    return new RateLimiterPostgres({
      storeClient: pool,
      storeType: 'pool',
      tableName: RATE_LIMIT_TABLE,
      tableCreated: true,
      clearExpiredByTimeout,
      keyPrefix: name,
      points,
      duration,
    });
  };
  return {
    factory,
    close: () => pool.end(),
  };
}
