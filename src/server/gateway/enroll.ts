// POST /agent/v1/enroll: an enroll token + the device's facts + its Ed25519 public key → a machine id.
// Errors are JSON {error:{code,message}} with 400/401/403/413/429 (503 when storage fails), never a bare 500.
import { createHash } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { machineIdFromPublicKey } from '../../core/ids.ts';
import { ERROR_CODES, LIMITS } from '../../protocol/codes.ts';
import { checkEnrollRequest } from '../../protocol/schemas.ts';
import { importPublicKey } from '../../protocol/signing.ts';
import { ENROLL_PATH, PROTOCOL_VERSION, type EnrollResponse } from '../../protocol/v1.ts';
import type { EnrollTokenRecord } from '../../store/store.ts';
import { nowTimestamp } from '../clock.ts';
import type { GatewayDeps } from './deps.ts';
import { enrolledMachine } from './machineFacts.ts';

/** Failed enrollments tolerated per client address per minute; tokens are unguessable, this only curbs noise. */
const MAX_FAILURES_PER_MINUTE = 30;

class EnrollFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function sendFailure(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(JSON.stringify({ error: { code, message } }));
}

export const sha256hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/** Why a token was refused, for the device operator (only someone holding the token learns this). */
function tokenRefusal(rec: EnrollTokenRecord | null, now: string): string {
  if (!rec) return 'enroll token is not valid';
  if (rec.revokedAt) return 'enroll token was revoked';
  if (rec.expiresAt <= now) return 'enroll token has expired';
  if (rec.maxUses !== null && rec.uses >= rec.maxUses) return 'enroll token is used up';
  return 'enroll token is not valid';
}

class FailureCounter {
  #byIp = new Map<string, { count: number; since: number }>();

  blocked(ip: string, now: number): number {
    const e = this.#byIp.get(ip);
    if (!e || now - e.since >= 60_000) return 0;
    return e.count >= MAX_FAILURES_PER_MINUTE ? Math.ceil((e.since + 60_000 - now) / 1000) : 0;
  }

  fail(ip: string, now: number): void {
    const e = this.#byIp.get(ip);
    if (!e || now - e.since >= 60_000) this.#byIp.set(ip, { count: 1, since: now });
    else e.count++;
    if (this.#byIp.size > 10_000) {
      for (const [k, v] of this.#byIp) if (now - v.since >= 60_000) this.#byIp.delete(k);
    }
  }
}

export function registerEnrollRoute(
  app: FastifyInstance,
  deps: GatewayDeps,
  isConnected: (id: string) => Promise<boolean>,
): void {
  const failures = new FailureCounter();

  void app.register(async (scope) => {
    // Own body handling and error shape: this route speaks the agent protocol, not the MDE API.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: LIMITS.enrollBodyBytes }, (_req, body, done) =>
      done(null, body),
    );
    scope.setErrorHandler((err: FastifyError, req, reply) => {
      if (err instanceof EnrollFailure) return sendFailure(reply, err.status, err.code, err.message);
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || err.statusCode === 413) {
        return sendFailure(reply, 413, ERROR_CODES.requestTooLarge, `body exceeds ${LIMITS.enrollBodyBytes} bytes`);
      }
      if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
        return sendFailure(reply, 400, ERROR_CODES.invalidRequest, err.message);
      }
      req.log.error({ err }, 'enrollment failed');
      return sendFailure(reply, 503, ERROR_CODES.unavailable, 'enrollment is unavailable; retry later');
    });

    scope.post(ENROLL_PATH, { bodyLimit: LIMITS.enrollBodyBytes }, async (req, reply) => {
      const ip = req.ip;
      const started = Date.now();
      const retryAfter = failures.blocked(ip, started);
      if (retryAfter > 0) {
        reply.header('retry-after', String(retryAfter));
        return sendFailure(reply, 429, ERROR_CODES.tooManyRequests, 'too many failed enrollments; retry later');
      }
      const refuse = async (status: number, code: string, message: string, audit: boolean): Promise<never> => {
        failures.fail(ip, started);
        if (audit) {
          await deps.audit({
            actorType: 'device',
            actorId: 'unauthenticated',
            actorName: null,
            action: 'device.enroll',
            target: null,
            result: 'failure',
            status,
            clientIp: ip,
            correlationId: String(req.id),
            detail: { code, reason: message },
          });
        }
        throw new EnrollFailure(status, code, message);
      };

      const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        return refuse(400, ERROR_CODES.invalidRequest, 'body must be a JSON object', false);
      }
      const checked = checkEnrollRequest(parsed);
      if (!checked.ok) return refuse(400, ERROR_CODES.invalidRequest, checked.error, false);
      const body = checked.value;
      const key = importPublicKey(body.publicKey);
      if (!key) return refuse(400, ERROR_CODES.invalidPublicKey, 'publicKey must be an Ed25519 SPKI key in base64', false);

      const now = nowTimestamp();
      const tokenHash = sha256hex(body.enrollToken);
      const token = await deps.store.consumeEnrollToken(tokenHash, now);
      if (!token) {
        const known = await deps.store.findEnrollTokenByHash(tokenHash);
        return refuse(401, ERROR_CODES.invalidEnrollToken, tokenRefusal(known, now), true);
      }

      const machineId = machineIdFromPublicKey(key.canonical);
      const existing = await deps.store.getMachine(machineId);
      if (existing?.offboarded) {
        return refuse(403, ERROR_CODES.machineOffboarded, `machine ${machineId} is offboarded`, true);
      }
      const machine = enrolledMachine({
        machineId,
        publicKey: key.canonical,
        facts: body.facts,
        group: token.group,
        now,
        remoteIp: ip,
        existing,
        connected: await isConnected(machineId),
      });
      await deps.store.upsertMachine(machine); // IP sightings are recorded when it connects
      await deps.audit({
        actorType: 'device',
        actorId: machineId,
        actorName: machine.computerDnsName,
        action: 'device.enroll',
        target: machineId,
        result: 'success',
        status: 200,
        clientIp: ip,
        correlationId: String(req.id),
        detail: {
          tokenId: token.id,
          group: token.group,
          reenrolled: existing !== null,
          osPlatform: machine.osPlatform,
          simulated: machine.simulated,
        },
      });
      const res: EnrollResponse = { machineId, serverTime: now, protocolVersion: PROTOCOL_VERSION };
      return reply.code(200).header('cache-control', 'no-store').send(res);
    });
  });
}
