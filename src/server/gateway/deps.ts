// What the gateway needs from the server around it.
import type { FastifyBaseLogger } from 'fastify';
import type { NewAuditEntry, Store } from '../../store/store.ts';
import type { ServerConfig } from '../config.ts';
import type { DeviceConnection } from './connection.ts';

export type AuditFn = (entry: Omit<NewAuditEntry, 'at'>) => Promise<void>;

export interface GatewayDeps {
  store: Store;
  config: ServerConfig;
  log: FastifyBaseLogger;
  audit: AuditFn;
  /** How long a new connection may take to say hello (default HELLO_TIMEOUT_MS); tests shorten it. */
  helloTimeoutMs?: number;
  /** This node's id in the cluster tables; a fresh one per process by default. */
  nodeId?: string;
}

/** An audit entry written on behalf of a connected (or connecting) device. */
export function deviceAudit(
  conn: Pick<DeviceConnection, 'machineId' | 'hostname' | 'remoteIp'>,
  action: string,
  result: 'success' | 'failure',
  target: string | null,
  detail: unknown,
): Omit<NewAuditEntry, 'at'> {
  return {
    actorType: 'device',
    actorId: conn.machineId ?? 'unauthenticated',
    actorName: conn.hostname,
    action,
    target,
    result,
    status: null,
    clientIp: conn.remoteIp,
    correlationId: null,
    detail,
  };
}
