// The MDE-shaped API, mounted at /api and /api/v1.0. Bodies are read raw and parsed by our own rules so that a
// bad body is MDE's InvalidRequestBody, whatever Content-Type the client sent.
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { mdeErrorHandler } from './errorHandling.ts';
import { registerAlerts } from './routes/alerts.ts';
import { registerMachineActionPosts } from './routes/machineActionPosts.ts';
import { registerMachineActionReads } from './routes/machineActionReads.ts';
import { registerMachineReads } from './routes/machineReads.ts';
import { registerMetadata } from './routes/metadata.ts';
import { originOf } from './wire.ts';

/** Raw-body parsing plus bearer authentication, shared by /api and Tourniquet's own extension routes. */
export function useApiConventions(app: FastifyInstance, ctx: ServerContext, opts: { authenticate: boolean }): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: ctx.config.bodyLimit }, (_req, body, done) => {
    done(null, body);
  });
  app.setErrorHandler(mdeErrorHandler);
  if (opts.authenticate) {
    app.addHook('onRequest', async (req) => {
      req.principal = await ctx.verifyToken(req.headers.authorization, originOf(req, ctx.config.publicUrl));
    });
  }
}

export function mdeApiPlugin(ctx: ServerContext) {
  return async (app: FastifyInstance): Promise<void> => {
    // $metadata is public on the live service; everything else needs a token.
    app.register(async (open) => {
      useApiConventions(open, ctx, { authenticate: false });
      registerMetadata(open);
    });
    app.register(async (api) => {
      useApiConventions(api, ctx, { authenticate: true });
      registerMachineActionPosts(api, ctx);
      registerMachineActionReads(api, ctx);
      registerMachineReads(api, ctx);
      registerAlerts(api, ctx);
    });
  };
}
