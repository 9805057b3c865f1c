// Builds the Tourniquet server: the MDE API, the token issuer, the agent gateway and the extension routes,
// on one Fastify instance over one Store.
import Fastify, { type FastifyInstance } from 'fastify';
import { newGuid } from '../core/ids.ts';
import type { Store, Tenant } from '../store/store.ts';
import { createAuditor } from './audit.ts';
import { SigningKeys } from './auth/signingKeys.ts';
import { registerTokenRoutes } from './auth/tokenRoutes.ts';
import { createTokenVerifier } from './auth/verifyToken.ts';
import { nowTimestamp } from './clock.ts';
import type { ServerConfig } from './config.ts';
import type { ServerContext } from './context.ts';
import { startExpiryLoop } from './expiry.ts';
import { registerAuditRoutes } from './extensions/auditRoutes.ts';
import { registerVaultRoutes } from './extensions/vaultRoutes.ts';
import { registerRbacRoutes } from './extensions/rbacRoutes.ts';
import { registerGateway } from './gateway/index.ts';
import { mdeErrorHandler } from './mde/errorHandling.ts';
import { mdeApiPlugin, useApiConventions } from './mde/plugin.ts';
import { newCorrelationId, sendEmpty, sendError } from './mde/wire.ts';
import { Throttle, type LimiterFactory } from './rateLimit.ts';
import { RouteTable } from './routeTable.ts';

export interface BuiltServer {
  app: FastifyInstance;
  ctx: ServerContext;
  tenant: Tenant;
  keys: SigningKeys;
  gateway: { connectedCount(): number; close(): Promise<void> };
  close(): Promise<void>;
}

export interface BuildOptions {
  config: ServerConfig;
  store: Store;
  /** Rate-limiter backend; memory by default, shared (PostgreSQL) in a cluster. */
  limiterFactory?: LimiterFactory;
}

export async function buildServer({ config, store, limiterFactory }: BuildOptions): Promise<BuiltServer> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      // A client may put a secret in a token endpoint's query string: never log query strings there.
      serializers: {
        req: (req) => ({
          method: req.method,
          url: /\/oauth2\//i.test(req.url) ? req.url.split('?')[0] : req.url,
          remoteAddress: req.ip,
        }),
      },
    },
    genReqId: newCorrelationId,
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 2048 },
    bodyLimit: config.bodyLimit,
    forceCloseConnections: true,
    frameworkErrors: (err, _req, reply) => {
      sendError(reply, 400, 'BadRequest', err.message);
    },
  });
  const routes = new RouteTable();
  routes.attach(app);

  const tenant = await store.getOrCreateTenant(() => ({ id: newGuid(), name: 'Tourniquet', createdAt: nowTimestamp() }));
  const keys = await SigningKeys.load(store, { refreshMs: 60_000, tokenLifetimeSec: config.tokenLifetimeSec });
  const verifier = createTokenVerifier({ store, keys, config, tenant });
  const ctx: ServerContext = {
    store,
    config,
    tenant,
    throttle: new Throttle(config.rateLimit, limiterFactory),
    log: app.log,
    verifyToken: (authorization, origin) => verifier.verify(authorization, origin),
    audit: createAuditor(store, app.log),
  };

  app.setErrorHandler(mdeErrorHandler);
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    const allowed = routes.allowedMethods(path);
    if (allowed.length > 0) return sendEmpty(reply, 405, { allow: allowed.join(', ') });
    return sendEmpty(reply, 404);
  });

  await app.register(mdeApiPlugin(ctx), { prefix: '/api' });
  await app.register(mdeApiPlugin(ctx), { prefix: '/api/v1.0' });
  await app.register(
    async (ext) => {
      useApiConventions(ext, ctx, { authenticate: true });
      registerAuditRoutes(ext, ctx);
      registerVaultRoutes(ext, ctx);
      registerRbacRoutes(ext, ctx);
    },
    { prefix: '/tourniquet/v1' },
  );
  await app.register(async (tokens) => registerTokenRoutes(tokens, { store, keys, config, tenant }));
  const gateway = registerGateway(app, { store, config, log: app.log, audit: ctx.audit });

  const stopExpiry = startExpiryLoop(store, app.log, Math.min(5000, Math.max(200, (config.actionExpirySec * 1000) / 10)));

  let closed = false;
  return {
    app,
    ctx,
    tenant,
    keys,
    gateway,
    async close() {
      if (closed) return;
      closed = true;
      await stopExpiry();
      await gateway.close();
      await app.close();
      keys.stop?.();
    },
  };
}
