// MDE throttling: separate per-minute and per-hour counters per (application, tenant, API). A refused request
// does not consume quota, so a client that waits for Retry-After gets through.
import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { MdeError } from '../core/errors.ts';

export interface RateLimits {
  perMinute: number;
  perHour: number;
}

export interface RateLimiterPair {
  minute: RateLimiterAbstract;
  hour: RateLimiterAbstract;
}

/** Per-API limits that differ from the configured default (getPackageUri: 2/min, 120/h). */
const SPECIAL: Record<string, RateLimits> = { getPackageUri: { perMinute: 2, perHour: 120 } };

export type LimiterFactory = (name: string, points: number, durationSec: number) => RateLimiterAbstract;

export const memoryLimiterFactory: LimiterFactory = (name, points, duration) =>
  new RateLimiterMemory({ keyPrefix: name, points, duration });

export class Throttle {
  private readonly pairs = new Map<string, RateLimiterPair>();

  constructor(
    private readonly limits: RateLimits,
    private readonly factory: LimiterFactory = memoryLimiterFactory,
  ) {}

  private pairFor(api: string): RateLimiterPair {
    let p = this.pairs.get(api);
    if (!p) {
      const l = SPECIAL[api] ?? this.limits;
      p = { minute: this.factory(`rl_${api}_m`, l.perMinute, 60), hour: this.factory(`rl_${api}_h`, l.perHour, 3600) };
      this.pairs.set(api, p);
    }
    return p;
  }

  /** Counts one call of `api` for the (app, tenant) pair, or throws 429 TooManyRequests with Retry-After. */
  async take(api: string, appId: string, tenantId: string): Promise<void> {
    const key = `${tenantId}:${appId}`;
    const { minute, hour } = this.pairFor(api);
    const refuse = async (res: RateLimiterRes, refund: RateLimiterAbstract[], window: string): Promise<never> => {
      await Promise.all(refund.map((l) => l.reward(key, 1)));
      const retryAfter = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      throw new MdeError(
        429,
        'TooManyRequests',
        `Rate limit is exceeded. Try again in ${retryAfter} seconds. (${window} quota for this API reached)`,
        { 'retry-after': String(retryAfter) },
      );
    };
    try {
      await minute.consume(key);
    } catch (e) {
      if (e instanceof RateLimiterRes) return refuse(e, [minute], 'per-minute');
      throw e;
    }
    try {
      await hour.consume(key);
    } catch (e) {
      if (e instanceof RateLimiterRes) return refuse(e, [minute, hour], 'per-hour');
      throw e;
    }
  }
}
