// GET /tourniquet/v1/audit: the audit log, outside /api, for callers holding Tourniquet.Audit.Read.
// Query: $top (≤ 1000, default 100), $skip, since (ISO date-time), action (exact action name).
import type { FastifyInstance } from 'fastify';
import { MdeError } from '../../core/errors.ts';
import { normalizeTimestamp, toWireTimestamp } from '../../core/time.ts';
import type { ServerContext } from '../context.ts';
import { authorize } from '../mde/access.ts';
import { sendOData } from '../mde/wire.ts';

function intParam(v: unknown, name: string, def: number, max: number): number {
  if (v === undefined) return def;
  const s = String(v);
  if (!/^\d+$/.test(s) || Number(s) > max) throw new MdeError(400, 'InvalidInput', `Invalid input ${name}: ${s}`);
  return Number(s);
}

export function registerAuditRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/audit', async (req, reply) => {
    const access = await authorize(ctx, req, 'readAudit');
    // The log spans every device group: a user whose role reaches only some of them may not read it.
    if (access.visibility !== undefined) {
      throw new MdeError(403, 'Forbidden', 'Reading the audit log requires "Manage portal system settings" on all device groups.');
    }
    const q = req.query as Record<string, unknown>;
    const top = intParam(q.$top, '$top', 100, 1000);
    const skip = intParam(q.$skip, '$skip', 0, Number.MAX_SAFE_INTEGER);
    let since: string | undefined;
    if (q.since !== undefined) {
      since = normalizeTimestamp(String(q.since)) ?? undefined;
      if (!since) throw new MdeError(400, 'InvalidInput', `Invalid input since: ${String(q.since)}`);
    }
    const action = q.action === undefined ? undefined : String(q.action);
    const rows = await ctx.store.listAudit({ top, skip, ...(since ? { since } : {}), ...(action ? { action } : {}) });
    const value = rows.map((r) => ({ ...r, at: toWireTimestamp(r.at) }));
    return sendOData(reply, 200, JSON.stringify({ value }));
  });
}
