// The simulator's admin API, outside /api: status, reset, reseed, fault injection and per-device journals.
// Mounted by the CLI on the server in demo mode, or on its own loopback port for `tourniquet simulate --admin-port`;
// the caller decides who may use it through `authorize`.
import { Ajv } from 'ajv';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Fleet } from './fleet.ts';
import { FAULT_KINDS, type Fault } from './simulatedDevice.ts';

export const ADMIN_PREFIX = '/admin/simulator';

export interface SimulatorAdminOptions {
  authorize(req: FastifyRequest): boolean;
}

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });

const validateSeed = ajv.compile<{ seed: string | number }>({
  type: 'object',
  additionalProperties: false,
  required: ['seed'],
  properties: { seed: { anyOf: [{ type: 'string', minLength: 1, maxLength: 64 }, { type: 'integer' }] } },
});

interface FaultBody {
  device?: string | number;
  fraction?: number;
  kind: Fault['kind'];
  durationMs?: number;
  latencyMs?: number;
  errorHResult?: number;
}

const validateFault = ajv.compile<FaultBody>({
  type: 'object',
  additionalProperties: false,
  required: ['kind'],
  properties: {
    device: { anyOf: [{ type: 'string', minLength: 1, maxLength: 253 }, { type: 'integer', minimum: 0 }] },
    fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    kind: { enum: [...FAULT_KINDS] },
    durationMs: { type: 'integer', minimum: 0, maximum: 86_400_000 },
    latencyMs: { type: 'integer', minimum: 0, maximum: 600_000 },
    errorHResult: { type: 'integer', minimum: -2147483648, maximum: 4294967295 },
  },
});

function fail(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ error: { code, message } }));
}

class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function jsonBody(req: FastifyRequest): unknown {
  const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw);
  } catch {
    throw new AdminError(400, 'InvalidRequest', 'body must be JSON');
  }
}

/**
 * `fleet` may be a getter: in demo mode the routes must exist before the server listens, the fleet only after.
 * Until there is a fleet, every route answers 503.
 */
export function registerSimulatorAdmin(
  app: FastifyInstance,
  fleetOrGetter: Fleet | (() => Fleet | null),
  opts: SimulatorAdminOptions,
): void {
  const current = (): Fleet => {
    const f = typeof fleetOrGetter === 'function' ? fleetOrGetter() : fleetOrGetter;
    if (!f) throw new AdminError(503, 'Unavailable', 'the simulated fleet is not running yet');
    return f;
  };
  void app.register(
    async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 16 * 1024 }, (_req, body, done) => done(null, body));
      scope.setErrorHandler((err: FastifyError, req, reply) => {
        if (err instanceof AdminError) return fail(reply, err.status, err.code, err.message);
        if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return fail(reply, 413, 'RequestEntityTooLarge', 'body too large');
        if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
          return fail(reply, err.statusCode, 'InvalidRequest', err.message);
        }
        req.log.error({ err }, 'simulator admin request failed');
        return fail(reply, 503, 'Unavailable', err.message);
      });
      scope.addHook('onRequest', async (req, reply) => {
        if (!opts.authorize(req)) return fail(reply, 401, 'Unauthorized', 'not allowed to use the simulator admin API');
      });

      scope.get('/status', async () => current().status());
      scope.get('/devices', async () => current().summaries());
      scope.post('/reset', async () => {
        const fleet = current();
        fleet.reset();
        return fleet.status();
      });
      scope.post('/seed', async (req) => {
        const fleet = current();
        const body = jsonBody(req);
        if (!validateSeed(body)) throw new AdminError(400, 'InvalidRequest', ajv.errorsText(validateSeed.errors, { dataVar: 'body' }));
        await fleet.reseed(body.seed);
        return fleet.status();
      });
      scope.post('/faults', async (req) => {
        const fleet = current();
        const body = jsonBody(req);
        if (!validateFault(body)) {
          throw new AdminError(400, 'InvalidRequest', ajv.errorsText(validateFault.errors, { dataVar: 'body' }));
        }
        if ((body.device === undefined) === (body.fraction === undefined)) {
          throw new AdminError(400, 'InvalidRequest', 'give either device or fraction');
        }
        const fault: Fault = {
          kind: body.kind,
          ...(body.durationMs !== undefined ? { durationMs: body.durationMs } : {}),
          ...(body.latencyMs !== undefined ? { latencyMs: body.latencyMs } : {}),
          ...(body.errorHResult !== undefined ? { errorHResult: body.errorHResult | 0 } : {}),
        };
        const target = body.device !== undefined ? { device: body.device } : { fraction: body.fraction! };
        if (target.device !== undefined && !fleet.device(target.device)) {
          throw new AdminError(404, 'NotFound', `no simulated device ${target.device}`);
        }
        return { affected: fleet.injectFault(target, fault) };
      });
      scope.delete('/faults', async () => {
        current().clearFaults();
        return { cleared: true };
      });
      scope.get<{ Params: { machineId: string } }>('/journal/:machineId', async (req) => {
        const d = current().device(req.params.machineId);
        if (!d) throw new AdminError(404, 'NotFound', `no simulated device ${req.params.machineId}`);
        return { machineId: d.machineId, hostname: d.hostname, entries: d.journal.entries() };
      });
    },
    { prefix: ADMIN_PREFIX },
  );
}
