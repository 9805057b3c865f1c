// Permission and throttling gate every /api route (and every extension route) passes before it touches data.
// Application tokens need the route's application permissions. Delegated (user) tokens need the route's scope in
// `scp`, AND a role granting the route's RBAC permission, and they see only the devices in the device groups those
// roles are assigned for (`visibility`, which every store list/get honours).
import type { FastifyRequest } from 'fastify';
import { MdeError } from '../../core/errors.ts';
import { ROUTE_PERMISSIONS, forbiddenMessage, missingGroup, type RouteName } from '../../core/permissions.ts';
import { decide, rbacForbiddenMessage } from '../../core/rbac.ts';
import type { Principal } from '../auth/principal.ts';
import { UserAccessResolver } from '../auth/userAccess.ts';
import type { ServerContext } from '../context.ts';
import type { Store, Visibility } from '../../store/store.ts';

/** Which throttling bucket a route counts against (MDE counts per API). */
const RATE_API: Partial<Record<RouteName, string>> = { getPackageUri: 'getPackageUri' };

export interface Access {
  principal: Principal;
  /** undefined = sees every device (application tokens, users whose role covers all device groups). */
  visibility: Visibility | undefined;
}

/** One resolver (and cache) per store, i.e. per server. */
const resolvers = new WeakMap<Store, UserAccessResolver>();

function resolverFor(ctx: ServerContext): UserAccessResolver {
  let r = resolvers.get(ctx.store);
  if (!r) {
    r = new UserAccessResolver(ctx.store);
    resolvers.set(ctx.store, r);
  }
  return r;
}

/** Call after changing users, roles or role assignments, so this node's next request sees the change. */
export function rbacChanged(ctx: ServerContext): void {
  resolverFor(ctx).invalidate();
}

export async function authorize(ctx: ServerContext, req: FastifyRequest, route: RouteName): Promise<Access> {
  const p = req.principal;
  if (!p) throw new MdeError(401, 'Unauthorized', 'Authorization header is missing or invalid');
  const rule = ROUTE_PERMISSIONS[route];
  let visibility: Visibility | undefined;
  if (p.kind === 'user') {
    // The role first: when it lacks the permission, that is the cause (our tokens' scp follows the roles), and
    // the 403 should say so rather than name the scope the role would have brought.
    const assignments = await resolverFor(ctx).resolve(p);
    const permission = rule.rbac;
    if (permission === null) {
      // A route without an RBAC permission is still closed to a user with no role at all.
      if (assignments.length === 0) throw new MdeError(403, 'Forbidden', 'The user has no role assigned.');
    } else {
      const decision = decide(assignments, permission);
      if (!decision.ok) throw new MdeError(403, 'Forbidden', rbacForbiddenMessage(permission, decision));
      visibility = decision.visibility;
    }
  }
  const granted = p.kind === 'app' ? p.roles : p.scopes;
  const missing = missingGroup(p.kind === 'app' ? rule.app : rule.delegated, granted);
  if (missing) throw new MdeError(403, 'Forbidden', forbiddenMessage(p.kind === 'app' ? 'app' : 'delegated', missing, granted));
  await ctx.throttle.take(RATE_API[route] ?? route, p.appId, p.tenantId);
  return { principal: p, visibility };
}
