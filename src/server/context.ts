// Everything a route needs, built once per server and passed explicitly (no globals).
import type { FastifyBaseLogger } from 'fastify';
import type { Store, Tenant, NewAuditEntry } from '../store/store.ts';
import type { Principal } from './auth/principal.ts';
import type { ServerConfig } from './config.ts';
import type { Throttle } from './rateLimit.ts';

export interface ServerContext {
  store: Store;
  config: ServerConfig;
  tenant: Tenant;
  throttle: Throttle;
  log: FastifyBaseLogger;
  verifyToken(authorization: string | undefined, origin: string): Promise<Principal>;
  audit(entry: Omit<NewAuditEntry, 'at'>): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}
