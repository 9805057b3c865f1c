// Checks a local user's password for the password grant and the authorize form, with lockout: after
// `maxFailures` consecutive wrong passwords the account is locked for `lockSeconds` (counted in the store, so every
// node agrees), and the lock is audited. Unknown names are answered exactly like wrong passwords — same error,
// same scrypt cost, and a lockout of their own — so neither the errors nor the timing tell which accounts exist.
import { millisToTimestamp, timestampToMillis } from '../../core/time.ts';
import type { Store, UserRecord } from '../../store/store.ts';
import { nowTimestamp } from '../clock.ts';
import { DEFAULT_USER_LOCKOUT, type ServerConfig } from '../config.ts';
import { entraErrors } from './entraErrors.ts';
import { ExpiringLru } from './expiringLru.ts';
import { hashSecret, verifySecret } from './secrets.ts';

/** Longest UPN or password we will look at; longer input is simply wrong. */
const MAX_UPN_LENGTH = 256;
const MAX_PASSWORD_LENGTH = 1024;

export interface SignInContext {
  clientIp: string | null;
  correlationId: string | null;
  /** The client app the user signs in through, for the audit record. */
  clientId: string | null;
}

export class UserSignIn {
  private readonly maxFailures: number;
  private readonly lockMs: number;
  /** Wrong guesses at names that are not accounts, counted and locked exactly like real ones. */
  private readonly phantom = new ExpiringLru<string, { failures: number; lockedUntilMs: number }>(100_000);
  private decoy: Promise<string> | null = null;

  constructor(
    private readonly store: Store,
    config: Pick<ServerConfig, 'userLockout'>,
    private readonly now: () => number = Date.now,
  ) {
    const policy = config.userLockout ?? DEFAULT_USER_LOCKOUT;
    this.maxFailures = Math.max(1, Math.floor(policy.maxFailures));
    this.lockMs = Math.max(0, policy.lockSeconds * 1000);
  }

  /** A hash no password matches, computed once, so unknown names cost one scrypt like known ones. */
  private decoyHash(): Promise<string> {
    this.decoy ??= hashSecret(`decoy-${Math.random()}-${Date.now()}`);
    return this.decoy;
  }

  /**
   * The user when `password` is right and the account may sign in; otherwise throws the Entra error:
   * 50126 wrong name or password, 50053 locked, 50057 disabled (only told to someone who knows the password).
   */
  async check(upn: string, password: string, ctx: SignInContext): Promise<UserRecord> {
    if (upn.length > MAX_UPN_LENGTH || password.length > MAX_PASSWORD_LENGTH) throw entraErrors.badUserCredentials();
    const user = await this.store.findUserByUpn(upn);
    if (!user) return this.failUnknown(upn);

    const nowMs = this.now();
    if (user.lockedUntil !== null && timestampToMillis(user.lockedUntil) > nowMs) throw entraErrors.accountLocked();
    if (!(await verifySecret(password, user.passwordHash))) {
      const after = await this.store.recordLoginFailure(user.oid, nowTimestamp(), this.maxFailures, millisToTimestamp(nowMs + this.lockMs));
      if (after?.lockedUntil && after.lockedUntil !== user.lockedUntil) {
        await this.auditLock(user.oid, user.upn, after.lockedUntil, ctx);
        throw entraErrors.accountLocked();
      }
      throw entraErrors.badUserCredentials();
    }
    if (!user.enabled) throw entraErrors.userDisabled();
    await this.store.recordLoginSuccess(user.oid, nowTimestamp());
    return user;
  }

  private async failUnknown(upn: string): Promise<never> {
    const key = upn.toLowerCase();
    const nowMs = this.now();
    const state = this.phantom.get(key, nowMs) ?? { failures: 0, lockedUntilMs: 0 };
    if (state.lockedUntilMs > nowMs) throw entraErrors.accountLocked();
    await verifySecret('not the password', await this.decoyHash());
    state.failures += 1;
    const keepMs = nowMs + this.lockMs + 24 * 3600 * 1000;
    if (state.failures >= this.maxFailures) {
      this.phantom.set(key, { failures: 0, lockedUntilMs: nowMs + this.lockMs }, keepMs);
      throw entraErrors.accountLocked();
    }
    this.phantom.set(key, state, keepMs);
    throw entraErrors.badUserCredentials();
  }

  private async auditLock(oid: string, upn: string, lockedUntil: string, ctx: SignInContext): Promise<void> {
    await this.store.appendAudit({
      at: nowTimestamp(),
      actorType: 'user',
      actorId: oid,
      actorName: upn,
      action: 'user.lockout',
      target: oid,
      result: 'failure',
      status: 400,
      clientIp: ctx.clientIp,
      correlationId: ctx.correlationId,
      detail: { failures: this.maxFailures, lockedUntil, clientId: ctx.clientId },
    });
  }
}
