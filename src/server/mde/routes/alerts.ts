// GET /api/alerts: XSOAR and Rapid7 call `alerts?$top=1` as their connection test, so the set exists. Tourniquet
// raises no alerts of its own yet; the list is honestly empty.
import type { FastifyInstance } from 'fastify';
import { ODataQueryError } from '../../../core/errors.ts';
import type { ServerContext } from '../../context.ts';
import { authorize } from '../access.ts';
import { listJson } from '../serialize.ts';
import { contextUrl, originOf, sendOData } from '../wire.ts';

export function registerAlerts(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/alerts', async (req, reply) => {
    await authorize(ctx, req, 'readAlerts');
    const q = req.query as Record<string, unknown>;
    if (q.$top !== undefined && !/^\d+$/.test(String(q.$top))) {
      throw new ODataQueryError(`The query specified in the URI is not valid. Invalid value '${String(q.$top)}' for $top query option found.`);
    }
    const origin = originOf(req, ctx.config.publicUrl);
    return sendOData(reply, 200, listJson(contextUrl(origin, 'Alerts'), [], null, null));
  });
}
