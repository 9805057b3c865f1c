// Writes audit entries; a failure to audit is logged loudly but never turns a committed action into an error.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type { NewAuditEntry, Store } from '../store/store.ts';
import type { Principal } from './auth/principal.ts';
import { nowTimestamp } from './clock.ts';

export function createAuditor(store: Store, log: FastifyBaseLogger) {
  return async (entry: Omit<NewAuditEntry, 'at'>): Promise<void> => {
    try {
      await store.appendAudit({ ...entry, at: nowTimestamp() });
    } catch (err) {
      log.error({ err, action: entry.action }, 'audit write failed');
    }
  };
}

/** The who/where part of an audit entry for an authenticated API request. */
export function auditActor(req: FastifyRequest, p: Principal | undefined) {
  return {
    actorType: (p?.kind === 'user' ? 'user' : 'app') as 'user' | 'app',
    actorId: p ? (p.kind === 'user' ? p.oid : p.appId) : 'anonymous',
    actorName: p ? (p.upn ?? p.name) : null,
    clientIp: req.ip,
    correlationId: String(req.id),
  };
}
