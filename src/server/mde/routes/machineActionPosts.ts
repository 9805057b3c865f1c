// POST /api/machines/{id}/<action>: StopAndQuarantineFile and the other per-machine actions. One pipeline for all:
// body rules → machine → device prerequisites → durable insert (file sighting, duplicate rule) → dispatch → 201.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { duplicateKey, HRESULT, type ActionType, type MachineAction } from '../../../core/actions.ts';
import { MdeError, notFound } from '../../../core/errors.ts';
import { newTimeOrderedGuid } from '../../../core/ids.ts';
import type { Machine } from '../../../core/machines.ts';
import type { RouteName } from '../../../core/permissions.ts';
import { assertDeviceCanPerform } from '../../../core/platform.ts';
import { millisToTimestamp, timestampToMillis } from '../../../core/time.ts';
import { parseJsonObject, requireComment, requireEnum, requireSha1 } from '../../../core/validation.ts';
import { requestorOf } from '../../auth/principal.ts';
import { auditActor } from '../../audit.ts';
import { nowTimestamp } from '../../clock.ts';
import type { ServerContext } from '../../context.ts';
import { authorize, type Access } from '../access.ts';
import { entityJson, machineActionWire } from '../serialize.ts';
import { contextUrl, originOf, sendOData } from '../wire.ts';

interface ParsedAction {
  comment: string;
  sha1: string | null;
  scope: string | null;
  commands: unknown[];
}

interface ActionRoute {
  segment: string;
  type: ActionType;
  permission: RouteName;
  parse(body: Record<string, unknown>): ParsedAction;
}

const plain = (body: Record<string, unknown>): ParsedAction => ({
  comment: requireComment(body),
  sha1: null,
  scope: null,
  commands: [],
});

const LIVE_RESPONSE_COMMANDS = ['PutFile', 'RunScript', 'GetFile'] as const;

function parseLiveResponse(body: Record<string, unknown>): ParsedAction {
  const comment = requireComment(body);
  const cmds = body.Commands;
  if (cmds === undefined || cmds === null) throw new MdeError(400, 'MissingRequiredParameter', 'Parameter Commands is missing');
  if (!Array.isArray(cmds) || cmds.length === 0 || cmds.length > 50) {
    throw new MdeError(400, 'InvalidInput', 'Invalid input Commands: expected a non-empty array of at most 50 commands');
  }
  const commands = cmds.map((c, index) => {
    const o = (typeof c === 'object' && c !== null ? c : {}) as Record<string, unknown>;
    const type = requireEnum(o, 'type', LIVE_RESPONSE_COMMANDS);
    const params = Array.isArray(o.params) ? o.params : [];
    const cleanParams = params.map((p) => {
      const q = (typeof p === 'object' && p !== null ? p : {}) as Record<string, unknown>;
      if (typeof q.key !== 'string' || typeof q.value !== 'string') {
        throw new MdeError(400, 'InvalidInput', 'Invalid input Commands: params must be {key, value} strings');
      }
      return { key: q.key, value: q.value };
    });
    return {
      index,
      startTime: null,
      endTime: null,
      commandStatus: 'Created',
      errors: [],
      command: { type, params: cleanParams },
    };
  });
  return { comment, sha1: null, scope: null, commands };
}

export const ACTION_ROUTES: ActionRoute[] = [
  {
    segment: 'StopAndQuarantineFile',
    type: 'StopAndQuarantineFile',
    permission: 'StopAndQuarantineFile',
    parse: (b) => {
      const comment = requireComment(b);
      const sha1 = requireSha1(b);
      return { comment, sha1, scope: null, commands: [] };
    },
  },
  {
    segment: 'isolate',
    type: 'Isolate',
    permission: 'Isolate',
    parse: (b) => ({
      ...plain(b),
      scope: requireEnum(b, 'IsolationType', ['Full', 'Selective', 'UnManagedDevice'] as const, 'Full'),
    }),
  },
  { segment: 'unisolate', type: 'Unisolate', permission: 'Unisolate', parse: plain },
  {
    segment: 'runAntiVirusScan',
    type: 'RunAntiVirusScan',
    permission: 'RunAntiVirusScan',
    parse: (b) => ({ ...plain(b), scope: requireEnum(b, 'ScanType', ['Quick', 'Full'] as const) }),
  },
  { segment: 'restrictCodeExecution', type: 'RestrictCodeExecution', permission: 'RestrictCodeExecution', parse: plain },
  {
    segment: 'unrestrictCodeExecution',
    type: 'UnrestrictCodeExecution',
    permission: 'UnrestrictCodeExecution',
    parse: plain,
  },
  {
    segment: 'collectInvestigationPackage',
    type: 'CollectInvestigationPackage',
    permission: 'CollectInvestigationPackage',
    parse: plain,
  },
  { segment: 'offboard', type: 'Offboard', permission: 'Offboard', parse: plain },
  { segment: 'runliveresponse', type: 'LiveResponse', permission: 'LiveResponse', parse: parseLiveResponse },
];

/** Resolves `{id}` (MDE id, aadDeviceId or DNS name) within what the caller may see. */
export async function resolveVisibleMachine(
  ctx: ServerContext,
  idOrName: string,
  visibility: { rbacGroupIds: number[] } | undefined,
): Promise<Machine> {
  const m = await ctx.store.resolveMachine(idOrName, visibility);
  if (!m) {
    throw notFound(`Machine ${idOrName} was not found`);
  }
  return m;
}

/** What a new action is: its type and the parts that came from the request. */
export interface ActionSpec {
  type: ActionType;
  comment: string;
  sha1: string | null;
  scope: string | null;
  commands: unknown[];
  /** What makes two in-flight actions of this type duplicates (the SHA-1, a vault item id), if not the machine. */
  subject: string | null;
}

/**
 * Checks the device can do it, inserts the action durably (duplicate rule), then dispatches it: a device must
 * never receive an action the store could still lose. Shared by /api and Tourniquet's extension routes.
 */
export async function submitAction(
  ctx: ServerContext,
  req: FastifyRequest,
  access: Access,
  machine: Machine,
  spec: ActionSpec,
  audit: { action: string; target?: string; detail?: Record<string, unknown> },
): Promise<MachineAction> {
  assertDeviceCanPerform(machine, spec.type);
  const created = nowTimestamp();
  const action: MachineAction = {
    id: newTimeOrderedGuid(),
    type: spec.type,
    title: null,
    requestor: requestorOf(access.principal),
    requestorComment: spec.comment,
    status: 'Pending',
    machineId: machine.id,
    computerDnsName: machine.computerDnsName,
    creationDateTimeUtc: created,
    lastUpdateDateTimeUtc: created,
    cancellationRequestor: null,
    cancellationComment: null,
    cancellationDateTimeUtc: null,
    errorHResult: HRESULT.ok,
    scope: spec.scope,
    externalId: null,
    requestSource: 'PublicApi',
    relatedFileInfo: spec.sha1 ? { fileIdentifier: spec.sha1, fileIdentifierType: 'Sha1' } : null,
    commands: spec.commands,
    troubleshootInfo: null,
    requestorId: access.principal.kind === 'user' ? access.principal.oid : access.principal.appId,
    deviceResult: null,
    expiresAt: millisToTimestamp(timestampToMillis(created) + ctx.config.actionExpirySec * 1000),
  };
  // Written out field by field: spreading the actor into a literal with more keys was ~4% of a POST's CPU (V8
  // clones the spread object's shape, then migrates it once per added key).
  const actor = auditActor(req, access.principal);
  const detail: Record<string, unknown> = { actionId: action.id, type: action.type, machineId: machine.id, sha1: spec.sha1 };
  if (audit.detail) Object.assign(detail, audit.detail);
  const saved = await ctx.store.createAction(action, duplicateKey(machine.id, spec.type, spec.subject), {
    actorType: actor.actorType,
    actorId: actor.actorId,
    actorName: actor.actorName,
    clientIp: actor.clientIp,
    correlationId: actor.correlationId,
    at: created,
    action: audit.action,
    target: audit.target ?? action.id,
    result: 'success',
    status: 201,
    detail,
  }, {
    // A file the device's complete inventory does not hold is refused (404), as MDE does; the store checks it in
    // the insert's transaction.
    fileNotSeenMessage:
      spec.sha1 && spec.type === 'StopAndQuarantineFile' ? `Sha1 ${spec.sha1} was not found in machine ${machine.id}` : undefined,
  });
  await ctx.store.publish({ channel: 'action', machineId: saved.machineId, actionId: saved.id });
  return saved;
}

async function createMachineAction(ctx: ServerContext, req: FastifyRequest, route: ActionRoute): Promise<MachineAction> {
  const access = await authorize(ctx, req, route.permission);
  const parsed = route.parse(parseJsonObject(typeof req.body === 'string' ? req.body : ''));
  const { id } = req.params as { id: string };
  const machine = await resolveVisibleMachine(ctx, id, access.visibility);
  return submitAction(ctx, req, access, machine, { type: route.type, ...parsed, subject: parsed.sha1 }, {
    action: 'machineAction.create',
  });
}

export function registerMachineActionPosts(app: FastifyInstance, ctx: ServerContext): void {
  for (const route of ACTION_ROUTES) {
    app.post(`/machines/:id/${route.segment}`, async (req, reply) => {
      let saved: MachineAction;
      try {
        saved = await createMachineAction(ctx, req, route);
      } catch (err) {
        if (req.principal) {
          await ctx.audit({
            ...auditActor(req, req.principal),
            action: `machineAction.create`,
            target: (req.params as { id: string }).id,
            result: 'failure',
            status: err instanceof MdeError ? err.status : 500,
            detail: { type: route.type, error: err instanceof MdeError ? err.code : 'InternalServerError' },
          });
        }
        throw err;
      }
      const ctxUrl = contextUrl(originOf(req, ctx.config.publicUrl), 'MachineActions/$entity');
      return sendOData(reply, 201, entityJson(ctxUrl, machineActionWire(saved)));
    });
  }
}
