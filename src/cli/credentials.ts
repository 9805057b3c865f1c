// Creating credentials in a store: applications (client-credentials principals) and device enroll tokens.
import { createHash, randomBytes } from 'node:crypto';
import { newGuid } from '../core/ids.ts';
import { KNOWN_APP_ROLES } from '../core/permissions.ts';
import { millisToTimestamp } from '../core/time.ts';
import { hashSecret, newClientSecret } from '../server/auth/secrets.ts';
import { nowTimestamp } from '../server/clock.ts';
import type { Store, Tenant } from '../store/store.ts';

export interface CreatedApp {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  roles: string[];
}

/** Credentials created from the command line are audited like API calls, with the OS user as the actor. */
async function auditCli(store: Store, action: string, target: string, detail: Record<string, unknown>): Promise<void> {
  await store.appendAudit({
    at: nowTimestamp(),
    actorType: 'cli',
    actorId: process.env.USER ?? 'cli',
    actorName: null,
    action,
    target,
    result: 'success',
    status: null,
    clientIp: null,
    correlationId: null,
    detail,
  });
}

export async function ensureTenant(store: Store): Promise<Tenant> {
  return store.getOrCreateTenant(() => ({ id: newGuid(), name: 'Tourniquet', createdAt: nowTimestamp() }));
}

export async function createApp(store: Store, name: string, roles: string[]): Promise<CreatedApp> {
  const unknown = roles.filter((r) => !KNOWN_APP_ROLES.includes(r));
  if (unknown.length) {
    throw new Error(`unknown role(s): ${unknown.join(', ')}. Known roles: ${KNOWN_APP_ROLES.join(', ')}`);
  }
  if (!name.trim()) throw new Error('--name must not be empty');
  const tenant = await ensureTenant(store);
  const clientId = newGuid();
  const clientSecret = newClientSecret();
  await store.createApp({
    clientId,
    tenantId: tenant.id,
    name,
    secretHash: await hashSecret(clientSecret),
    roles,
    createdAt: nowTimestamp(),
    disabled: false,
  });
  await auditCli(store, 'app.create', clientId, { name, roles });
  return { tenantId: tenant.id, clientId, clientSecret, roles };
}

export interface CreatedEnrollToken {
  token: string;
  id: string;
  group: string | null;
  expiresAt: string;
}

export const enrollTokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');

export async function createEnrollToken(
  store: Store,
  opts: { group?: string | null; ttlSec?: number; maxUses?: number | null },
): Promise<CreatedEnrollToken> {
  await ensureTenant(store);
  const token = `tqe_${randomBytes(32).toString('base64url')}`;
  const id = newGuid();
  const expiresAt = millisToTimestamp(Date.now() + (opts.ttlSec ?? 7 * 24 * 3600) * 1000);
  await store.createEnrollToken({
    id,
    tokenHash: enrollTokenHash(token),
    group: opts.group ?? null,
    createdAt: nowTimestamp(),
    expiresAt,
    revokedAt: null,
    maxUses: opts.maxUses ?? null,
    uses: 0,
  });
  await auditCli(store, 'enrollToken.create', id, { group: opts.group ?? null, expiresAt, maxUses: opts.maxUses ?? null });
  return { token, id, group: opts.group ?? null, expiresAt };
}
