// Restore and inventory, what MDE lacks: a device's quarantine vault, and restoring an item to its original path.
//   GET  /tourniquet/v1/machines/{id}/vault                     → { value: [vault items] }
//   POST /tourniquet/v1/machines/{id}/vault/{itemId}/restore     → 201 machineAction (type RestoreQuarantinedFile)
//        body { "Comment": "...", "DestinationPath"?: "/abs/path", "Overwrite"?: false }
// The agent executes a restore like any action: delivered, acknowledged, and reported per file, verified by hash.
import type { FastifyInstance } from 'fastify';
import { MdeError, notFound } from '../../core/errors.ts';
import { toWireTimestamp } from '../../core/time.ts';
import { parseJsonObject, requireComment } from '../../core/validation.ts';
import { auditActor } from '../audit.ts';
import type { ServerContext } from '../context.ts';
import { authorize } from '../mde/access.ts';
import { resolveVisibleMachine, submitAction } from '../mde/routes/machineActionPosts.ts';
import { entityJson, machineActionWire } from '../mde/serialize.ts';
import { originOf, sendOData } from '../mde/wire.ts';

const ITEM_ID_RE = /^[A-Za-z0-9_-]{8,128}$/;

export function registerVaultRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/machines/:id/vault', async (req, reply) => {
    const access = await authorize(ctx, req, 'readVault');
    const machine = await resolveVisibleMachine(ctx, (req.params as { id: string }).id, access.visibility);
    const items = await ctx.store.listVaultItems(machine.id);
    const value = items.map((i) => ({
      itemId: i.itemId,
      machineId: i.machineId,
      actionId: i.actionId,
      sha1: i.sha1,
      sha256: i.sha256,
      originalPath: i.originalPath,
      size: i.size,
      quarantinedAt: toWireTimestamp(i.quarantinedAt),
      state: i.state,
    }));
    return sendOData(reply, 200, JSON.stringify({ machineId: machine.id, value }));
  });

  app.post('/machines/:id/vault/:itemId/restore', async (req, reply) => {
    const access = await authorize(ctx, req, 'manageVault');
    const { id, itemId } = req.params as { id: string; itemId: string };
    const body = parseJsonObject(typeof req.body === 'string' ? req.body : '');
    const comment = requireComment(body);
    const destination = body.DestinationPath;
    if (destination !== undefined && (typeof destination !== 'string' || !destination.startsWith('/') || destination.length > 4096)) {
      throw new MdeError(400, 'InvalidInput', 'Invalid input DestinationPath: an absolute path is expected');
    }
    if (body.Overwrite !== undefined && typeof body.Overwrite !== 'boolean') {
      throw new MdeError(400, 'InvalidInput', 'Invalid input Overwrite: true or false is expected');
    }
    if (!ITEM_ID_RE.test(itemId)) throw new MdeError(400, 'InvalidInput', `Invalid input itemId: ${itemId}`);
    const machine = await resolveVisibleMachine(ctx, id, access.visibility);
    const item = (await ctx.store.listVaultItems(machine.id)).find((i) => i.itemId === itemId);
    if (!item) throw notFound(`Vault item ${itemId} was not found on machine ${machine.id}`);
    if (item.state !== 'quarantined') {
      throw new MdeError(400, 'BadRequest', `Vault item ${itemId} is ${item.state}, not quarantined`);
    }
    const params = {
      itemId,
      ...(typeof destination === 'string' ? { destinationPath: destination } : {}),
      ...(body.Overwrite === true ? { overwrite: true } : {}),
    };
    let saved;
    try {
      saved = await submitAction(
        ctx,
        req,
        access,
        machine,
        { type: 'RestoreQuarantinedFile', comment, sha1: item.sha1, scope: null, commands: [params], subject: itemId },
        { action: 'vault.restore', target: `${machine.id}/${itemId}`, detail: { originalPath: item.originalPath, ...params } },
      );
    } catch (err) {
      await ctx.audit({
        ...auditActor(req, access.principal),
        action: 'vault.restore',
        target: `${machine.id}/${itemId}`,
        result: 'failure',
        status: err instanceof MdeError ? err.status : 500,
        detail: { error: err instanceof MdeError ? err.code : 'InternalServerError' },
      });
      throw err;
    }
    const context = `${originOf(req, ctx.config.publicUrl)}/api/$metadata#MachineActions/$entity`;
    return sendOData(reply, 201, entityJson(context, machineActionWire(saved)));
  });
}
