// How a token request's client is identified and, for confidential clients, proven: shared by every grant so
// that client credentials and the delegated grants refuse and lock out in exactly the same way.
import type { AppRecord } from '../../store/store.ts';
import { entraErrors } from './entraErrors.ts';
import type { AttemptRecord, GrantDeps, TokenRequest } from './tokenGrant.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A token request's client id as sent, and in canonical form (GUIDs, which Entra compares case-insensitively). */
export interface ClientId {
  raw: string;
  id: string;
}

/** The request's client id, recorded on the attempt at once so that every later refusal is audited with it. */
export function identifyClient(req: TokenRequest, attempt: AttemptRecord): ClientId {
  const raw = req.client.id;
  if (!raw) throw entraErrors.missingParameter('client_id');
  const id = GUID.test(raw) ? raw.toLowerCase() : raw;
  attempt.clientId = id;
  return { raw, id };
}

/** The requesting application of this tenant, enabled. */
export async function requestingApp(deps: GrantDeps, attempt: AttemptRecord, client: ClientId): Promise<AppRecord> {
  const app = await deps.store.getApp(client.id);
  if (!app || app.tenantId !== deps.tenant.id) throw entraErrors.unknownClient(client.raw, deps.tenant.name);
  attempt.appName = app.name;
  if (app.disabled) throw entraErrors.disabledApp(client.id, app.name);
  return app;
}

/** Checks a confidential client's secret, with the per-client lockout after repeated failures. */
export async function verifyClientSecret(deps: GrantDeps, attempt: AttemptRecord, app: AppRecord, secret: string): Promise<void> {
  const clientId = app.clientId;
  if (deps.lockout.isLocked(clientId)) {
    attempt.lockedOut = true;
    throw entraErrors.badSecret(clientId);
  }
  if (!(await deps.secrets.check(clientId, secret, app.secretHash))) {
    deps.lockout.recordFailure(clientId);
    throw entraErrors.badSecret(clientId);
  }
  deps.lockout.recordSuccess(clientId);
}
