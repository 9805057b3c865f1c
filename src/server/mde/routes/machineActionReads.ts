// GET /api/machineactions, GET /api/machineactions/{id}, POST /api/machineactions/{id}/cancel, and the two
// download-link functions of an action.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EXTENSION_ACTION_TYPES, type MachineAction } from '../../../core/actions.ts';
import { MdeError, badRequest, notFound } from '../../../core/errors.ts';
import { MACHINE_ACTION_FIELDS, type FilterExpr, type ListQuery } from '../../../core/query.ts';
import { assertGuidKey, parseJsonObject, requireComment } from '../../../core/validation.ts';
import { requestorOf } from '../../auth/principal.ts';
import { auditActor } from '../../audit.ts';
import { nowTimestamp } from '../../clock.ts';
import type { ServerContext } from '../../context.ts';
import { authorize, type Access } from '../access.ts';
import { parseIndexCall, parseListQuery } from '../odata/index.ts';
import { MACHINE_ACTION_PROPERTIES, entityJson, machineActionWire } from '../serialize.ts';
import { contextUrl, originOf, sendOData } from '../wire.ts';
import { sendPage } from './paging.ts';

/** An action the caller may see, or 404 (a delegated caller outside the device's group sees nothing). */
async function visibleAction(ctx: ServerContext, rawId: string, access: Access): Promise<MachineAction> {
  const id = assertGuidKey(rawId);
  const a = await ctx.store.getAction(id);
  if (a && access.visibility) {
    const m = await ctx.store.getMachine(a.machineId);
    if (!m || !access.visibility.rbacGroupIds.includes(m.rbacGroupId)) return missing(rawId);
  }
  return a ?? missing(rawId);
}

/** Tourniquet's extension actions (vault restores) never appear in MDE lists, whose clients know only MDE's types. */
function onlyMdeTypes<Q extends ListQuery>(q: Q): Q {
  let filter: FilterExpr | null = q.filter;
  for (const t of EXTENSION_ACTION_TYPES) {
    const ne: FilterExpr = { kind: 'compare', op: 'ne', field: 'type', value: { kind: 'string', value: t } };
    filter = filter ? { kind: 'and', left: filter, right: ne } : ne;
  }
  return { ...q, filter };
}

function missing(id: string): never {
  throw notFound(`Machine action ${id} was not found`);
}

function sendAction(ctx: ServerContext, req: FastifyRequest, reply: Parameters<typeof sendOData>[0], a: MachineAction) {
  const url = contextUrl(originOf(req, ctx.config.publicUrl), 'MachineActions/$entity');
  return sendOData(reply, 200, entityJson(url, machineActionWire(a)));
}

export function registerMachineActionReads(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/machineactions', async (req, reply) => {
    const access = await authorize(ctx, req, 'readActions');
    const query = parseListQuery(req.query as Record<string, string>, MACHINE_ACTION_FIELDS, {
      selectable: MACHINE_ACTION_PROPERTIES,
    });
    const result = await ctx.store.listActions(onlyMdeTypes(query), access.visibility);
    return sendPage(ctx, req, reply, 'MachineActions', query, result, machineActionWire);
  });

  app.get('/machineactions/:id', async (req, reply) => {
    const access = await authorize(ctx, req, 'readActions');
    const { id } = req.params as { id: string };
    const liveResponseLink = /^GetLiveResponseResultDownloadLink\(/i;
    if (liveResponseLink.test(id)) throw notFound(`Resource ${id} was not found`);
    return sendAction(ctx, req, reply, await visibleAction(ctx, id, access));
  });

  app.post('/machineactions/:id/cancel', async (req, reply) => {
    const access = await authorize(ctx, req, 'cancelAction');
    const body = parseJsonObject(typeof req.body === 'string' && req.body !== '' ? req.body : '{}');
    const comment = body.Comment === undefined ? '' : requireComment(body);
    const { id } = req.params as { id: string };
    const a = await visibleAction(ctx, id, access);
    const at = nowTimestamp();
    const res = await ctx.store.transitionAction(a.id, { kind: 'cancel' }, at, {
      cancellationRequestor: requestorOf(access.principal),
      cancellationComment: comment,
      cancellationDateTimeUtc: at,
    });
    const audit = { ...auditActor(req, access.principal), action: 'machineAction.cancel', target: a.id };
    if (!res || !res.changed) {
      await ctx.audit({ ...audit, result: 'failure', status: 400, detail: { status: res?.action.status ?? a.status } });
      throw badRequest(`Action ${a.id} cannot be cancelled because it is already in a final state (${res?.action.status ?? a.status})`);
    }
    await ctx.store.publish({ channel: 'action', machineId: a.machineId, actionId: a.id });
    await ctx.audit({ ...audit, result: 'success', status: 200, detail: { comment } });
    return sendAction(ctx, req, reply, res.action);
  });

  // GET machineactions/{id}/getPackageUri (2/min, 120/h) and .../GetLiveResponseResultDownloadLink(index=n).
  app.get('/machineactions/:id/:fn', async (req, reply) => {
    const { id, fn } = req.params as { id: string; fn: string };
    if (fn.toLowerCase() === 'getpackageuri') {
      const access = await authorize(ctx, req, 'getPackageUri');
      const a = await visibleAction(ctx, id, access);
      if (a.type !== 'CollectInvestigationPackage') {
        throw new MdeError(400, 'InvalidInput', 'Provided Guid is not a valid id for a CollectInvestigationPackage action');
      }
      throw notFound(`Package for machine action ${a.id} was not found`);
    }
    if (/^GetLiveResponseResultDownloadLink\(/i.test(fn)) {
      const access = await authorize(ctx, req, 'readActions');
      const index = parseIndexCall(fn, 'GetLiveResponseResultDownloadLink');
      const a = await visibleAction(ctx, id, access);
      if (a.type !== 'LiveResponse') {
        throw new MdeError(400, 'InvalidInput', 'Provided Guid is not a valid id for a LiveResponse action');
      }
      if (index < 0 || index >= a.commands.length) throw notFound(`Command index ${index} was not found`);
      throw notFound(`Result of command ${index} of machine action ${a.id} was not found`);
    }
    return reply.callNotFound();
  });
}
