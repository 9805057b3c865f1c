// GET /api/machines, GET /api/machines/{id}, GET /api/machines/findbyip(ip='…',timestamp=…),
// GET /api/files/{sha1}/machines.
import type { FastifyInstance } from 'fastify';
import { MdeError } from '../../../core/errors.ts';
import { MACHINE_FIELDS } from '../../../core/query.ts';
import { millisToTimestamp, timestampToMillis } from '../../../core/time.ts';
import { isSha1 } from '../../../core/validation.ts';
import type { ServerContext } from '../../context.ts';
import { authorize } from '../access.ts';
import { parseFindByIp, parseListQuery } from '../odata/index.ts';
import { MACHINE_PROPERTIES, entityJson, listJson, machineWire } from '../serialize.ts';
import { contextUrl, originOf, sendOData } from '../wire.ts';
import { resolveVisibleMachine } from './machineActionPosts.ts';
import { sendPage } from './paging.ts';

const FINDBYIP_WINDOW_MS = 15 * 60 * 1000;
const FINDBYIP_MAX_AGE_MS = 30 * 24 * 3600 * 1000;

export function registerMachineReads(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/machines', async (req, reply) => {
    const access = await authorize(ctx, req, 'readMachines');
    const query = parseListQuery(req.query as Record<string, string>, MACHINE_FIELDS, { selectable: MACHINE_PROPERTIES });
    const result = await ctx.store.listMachines(query, access.visibility);
    return sendPage(ctx, req, reply, 'Machines', query, result, machineWire);
  });

  app.get('/machines/:id', async (req, reply) => {
    const access = await authorize(ctx, req, 'readMachines');
    const { id } = req.params as { id: string };
    const origin = originOf(req, ctx.config.publicUrl);
    if (/^findbyip\(/i.test(id)) {
      const { ip, timestamp } = parseFindByIp(id);
      const at = timestampToMillis(timestamp);
      if (at < Date.now() - FINDBYIP_MAX_AGE_MS || at > Date.now() + FINDBYIP_WINDOW_MS) {
        throw new MdeError(400, 'BadRequest', 'The timestamp must be within the last 30 days');
      }
      const machines = await ctx.store.findMachinesByIp(
        ip,
        millisToTimestamp(at - FINDBYIP_WINDOW_MS),
        millisToTimestamp(at + FINDBYIP_WINDOW_MS),
        access.visibility,
      );
      return sendOData(reply, 200, listJson(contextUrl(origin, 'Machines'), machines.map(machineWire), null, null));
    }
    const m = await resolveVisibleMachine(ctx, id, access.visibility);
    return sendOData(reply, 200, entityJson(contextUrl(origin, 'Machines/$entity'), machineWire(m)));
  });

  app.get('/files/:sha1/machines', async (req, reply) => {
    const access = await authorize(ctx, req, 'readFiles');
    const { sha1 } = req.params as { sha1: string };
    if (!isSha1(sha1)) throw new MdeError(400, 'InvalidHashValue', `Hash value ${sha1} is invalid`);
    const machines = await ctx.store.machinesForFile(sha1.toLowerCase(), access.visibility);
    const origin = originOf(req, ctx.config.publicUrl);
    return sendOData(reply, 200, listJson(contextUrl(origin, 'Machines'), machines.map(machineWire), null, null));
  });
}
