// Server settings: defaults, then TOURNIQUET_* environment variables, then command-line flags.

export interface ExternalIssuerConfig {
  /** Exact `iss` value, e.g. https://sts.windows.net/<tid>/ or https://login.microsoftonline.com/<tid>/v2.0 */
  issuer: string;
  /** Where the issuer's signing keys are: an https URL (fetched and cached) or a local JWKS file. */
  jwksUrl?: string;
  jwksFile?: string;
  /** The tenant (`tid`) whose tokens are trusted. */
  tenantId: string;
}

export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | null;
  /** Public base URL for @odata.context / issuer metadata when behind a proxy; null = from the request. */
  publicUrl: string | null;
  tokenLifetimeSec: number;
  /** Pending or InProgress actions become TimeOut after this long. */
  actionExpirySec: number;
  rateLimit: { perMinute: number; perHour: number };
  /** Largest request body accepted on /api (bytes). */
  bodyLimit: number;
  externalIssuers: ExternalIssuerConfig[];
  /** The simulator/demo admin API outside /api; off unless demo or explicitly enabled. */
  adminApi: boolean;
  /** SQLite only: write group-commit batches on a thread of their own (see src/store/sqlite/writerThread.ts). */
  sqliteWriterThread: boolean;
  /** Seconds without traffic after which a device connection is considered dead. */
  deviceIdleTimeoutSec: number;
  logLevel: string;
  /** Local user accounts: this many consecutive wrong passwords lock the account for lockSeconds (issue 6). */
  userLockout?: { maxFailures: number; lockSeconds: number };
}

export const DEFAULT_USER_LOCKOUT = { maxFailures: 5, lockSeconds: 15 * 60 } as const;

export const DEFAULT_CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 8080,
  dataDir: './data',
  databaseUrl: null,
  publicUrl: null,
  tokenLifetimeSec: 3599,
  actionExpirySec: 7 * 24 * 3600,
  rateLimit: { perMinute: 100, perHour: 1500 },
  bodyLimit: 1024 * 1024,
  externalIssuers: [],
  adminApi: false,
  sqliteWriterThread: false,
  deviceIdleTimeoutSec: 90,
  logLevel: 'warn',
  userLockout: { ...DEFAULT_USER_LOCKOUT },
};

function num(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`not a number: ${v}`);
  return n;
}

/** Reads TOURNIQUET_* variables over the defaults. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env, base: ServerConfig = DEFAULT_CONFIG): ServerConfig {
  const c: ServerConfig = { ...base, rateLimit: { ...base.rateLimit } };
  c.host = env.TOURNIQUET_HOST ?? c.host;
  c.port = num(env.TOURNIQUET_PORT) ?? c.port;
  c.dataDir = env.TOURNIQUET_DATA ?? c.dataDir;
  c.databaseUrl = env.TOURNIQUET_DATABASE_URL || c.databaseUrl;
  c.publicUrl = env.TOURNIQUET_PUBLIC_URL || c.publicUrl;
  c.tokenLifetimeSec = num(env.TOURNIQUET_TOKEN_LIFETIME_SEC) ?? c.tokenLifetimeSec;
  c.actionExpirySec = num(env.TOURNIQUET_ACTION_EXPIRY_SEC) ?? c.actionExpirySec;
  c.rateLimit.perMinute = num(env.TOURNIQUET_RATE_PER_MINUTE) ?? c.rateLimit.perMinute;
  c.rateLimit.perHour = num(env.TOURNIQUET_RATE_PER_HOUR) ?? c.rateLimit.perHour;
  c.bodyLimit = num(env.TOURNIQUET_BODY_LIMIT) ?? c.bodyLimit;
  c.deviceIdleTimeoutSec = num(env.TOURNIQUET_DEVICE_IDLE_TIMEOUT_SEC) ?? c.deviceIdleTimeoutSec;
  c.logLevel = env.TOURNIQUET_LOG_LEVEL ?? c.logLevel;
  const lockout = base.userLockout ?? DEFAULT_USER_LOCKOUT;
  c.userLockout = {
    maxFailures: num(env.TOURNIQUET_LOCKOUT_THRESHOLD) ?? lockout.maxFailures,
    lockSeconds: num(env.TOURNIQUET_LOCKOUT_SECONDS) ?? lockout.lockSeconds,
  };
  if (env.TOURNIQUET_SQLITE_WRITER_THREAD) {
    c.sqliteWriterThread = env.TOURNIQUET_SQLITE_WRITER_THREAD === '1' || env.TOURNIQUET_SQLITE_WRITER_THREAD === 'true';
  }
  if (env.TOURNIQUET_ADMIN_API) c.adminApi = env.TOURNIQUET_ADMIN_API === '1' || env.TOURNIQUET_ADMIN_API === 'true';
  if (env.TOURNIQUET_EXTERNAL_ISSUER) {
    // JSON array of ExternalIssuerConfig, or a single object.
    const parsed = JSON.parse(env.TOURNIQUET_EXTERNAL_ISSUER) as ExternalIssuerConfig | ExternalIssuerConfig[];
    c.externalIssuers = Array.isArray(parsed) ? parsed : [parsed];
  }
  return c;
}
