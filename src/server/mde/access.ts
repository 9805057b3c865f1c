// Permission and throttling gate every /api route passes before it touches data.
import type { FastifyRequest } from 'fastify';
import { MdeError } from '../../core/errors.ts';
import { ROUTE_PERMISSIONS, forbiddenMessage, missingGroup, type RouteName } from '../../core/permissions.ts';
import type { Principal } from '../auth/principal.ts';
import type { ServerContext } from '../context.ts';
import type { Visibility } from '../../store/store.ts';

/** Which throttling bucket a route counts against (MDE counts per API). */
const RATE_API: Partial<Record<RouteName, string>> = { getPackageUri: 'getPackageUri' };

export interface Access {
  principal: Principal;
  /** undefined = sees every device (application tokens). */
  visibility: Visibility | undefined;
}

export async function authorize(ctx: ServerContext, req: FastifyRequest, route: RouteName): Promise<Access> {
  const p = req.principal;
  if (!p) throw new MdeError(401, 'Unauthorized', 'Authorization header is missing or invalid');
  const rule = ROUTE_PERMISSIONS[route];
  const granted = p.kind === 'app' ? p.roles : p.scopes;
  const missing = missingGroup(p.kind === 'app' ? rule.app : rule.delegated, granted);
  if (missing) throw new MdeError(403, 'Forbidden', forbiddenMessage(p.kind === 'app' ? 'app' : 'delegated', missing, granted));
  await ctx.throttle.take(RATE_API[route] ?? route, p.appId, p.tenantId);
  return { principal: p, visibility: undefined };
}
