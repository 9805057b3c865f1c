// The role assignments that apply to a delegated caller, looked up per request with a short cache. A local
// user's token keeps working only while the account exists and is enabled; an external user (a token from a
// configured issuer) gets the roles mapped to its `groups` claim values and its UPN.
import { createHash } from 'node:crypto';
import { MdeError } from '../../core/errors.ts';
import type { EffectiveRoleAssignment, Store } from '../../store/store.ts';
import { ExpiringLru } from './expiringLru.ts';
import type { Principal } from './principal.ts';

/** How long another node's change (or a disabled account) may take to reach this node. */
export const USER_ACCESS_TTL_MS = 5_000;

export class UserAccessResolver {
  private readonly cache = new ExpiringLru<string, EffectiveRoleAssignment[] | 'inactive'>(10_000);
  private generation = 0;

  constructor(
    private readonly store: Store,
    private readonly ttlMs = USER_ACCESS_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Forgets every cached answer (this node changed users, roles or assignments). */
  invalidate(): void {
    this.generation++;
    this.cache.clear();
  }

  private key(p: Principal): string {
    if (p.issuer === 'local') return `local\n${p.oid.toLowerCase()}`;
    return createHash('sha256')
      .update(JSON.stringify([p.issuer, p.oid, p.upn, p.groups]))
      .digest('base64');
  }

  /** The caller's assignments; 401 for a local account that no longer exists or is disabled. */
  async resolve(p: Principal): Promise<EffectiveRoleAssignment[]> {
    const key = this.key(p);
    const nowMs = this.now();
    let entry = this.cache.get(key, nowMs);
    if (entry === undefined) {
      const generation = this.generation;
      entry = await this.load(p);
      // An invalidation during the lookup means the answer may predate the change: use it once, keep nothing.
      if (generation === this.generation) this.cache.set(key, entry, nowMs + this.ttlMs);
    }
    if (entry === 'inactive') throw new MdeError(401, 'Unauthorized', 'The user account is disabled or no longer exists');
    return entry;
  }

  private async load(p: Principal): Promise<EffectiveRoleAssignment[] | 'inactive'> {
    if (p.issuer === 'local') {
      const user = await this.store.getUser(p.oid);
      if (!user || !user.enabled) return 'inactive';
      return this.store.assignmentsFor({ userOid: user.oid });
    }
    return this.store.assignmentsFor({ groups: p.groups, ...(p.upn ? { upn: p.upn } : {}) });
  }
}
