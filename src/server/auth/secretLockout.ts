// Slows secret guessing: after too many wrong secrets for one client id within a window, that client id is
// refused for a while without its secret being checked at all. Counted per process; each node of a cluster
// locks independently, which still caps guesses at nodes × maxFailures per window.

export interface SecretLockoutOptions {
  maxFailures?: number;
  windowMs?: number;
  lockMs?: number;
  /** Bound on tracked client ids; only ids of existing apps are tracked, so this is generous. */
  maxTracked?: number;
  now?: () => number;
}

interface Tracked {
  failures: number[]; // epoch ms, oldest first, at most maxFailures
  lockedUntilMs: number;
}

export class SecretLockout {
  private readonly tracked = new Map<string, Tracked>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly lockMs: number;
  private readonly maxTracked: number;
  private readonly now: () => number;

  constructor(opts: SecretLockoutOptions = {}) {
    this.maxFailures = opts.maxFailures ?? 10;
    this.windowMs = opts.windowMs ?? 5 * 60_000;
    this.lockMs = opts.lockMs ?? 15 * 60_000;
    this.maxTracked = opts.maxTracked ?? 100_000;
    this.now = opts.now ?? Date.now;
  }

  isLocked(clientId: string): boolean {
    const t = this.tracked.get(clientId);
    return t !== undefined && t.lockedUntilMs > this.now();
  }

  recordFailure(clientId: string): void {
    const now = this.now();
    let t = this.tracked.get(clientId);
    if (!t) {
      if (this.tracked.size >= this.maxTracked) {
        const oldest = this.tracked.keys().next();
        if (!oldest.done) this.tracked.delete(oldest.value);
      }
      t = { failures: [], lockedUntilMs: 0 };
      this.tracked.set(clientId, t);
    }
    t.failures = t.failures.filter((at) => at > now - this.windowMs);
    t.failures.push(now);
    if (t.failures.length > this.maxFailures) t.failures.shift();
    if (t.failures.length >= this.maxFailures) t.lockedUntilMs = now + this.lockMs;
  }

  recordSuccess(clientId: string): void {
    this.tracked.delete(clientId);
  }
}
