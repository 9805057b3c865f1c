// How a token request's client is identified and, for confidential clients, proven: shared by every grant so
// that client credentials and the delegated grants refuse and lock out in exactly the same way.
import type { AppRecord } from '../../store/store.ts';
import { entraErrors } from './entraErrors.ts';
import type { AttemptRecord, GrantDeps, TokenRequest } from './tokenGrant.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Client ids are GUIDs, which Entra compares case-insensitively. */
export const canonicalClientId = (raw: string): string => (GUID.test(raw) ? raw.toLowerCase() : raw);

/** The requesting application of this tenant, enabled; its canonical id is recorded on the attempt. */
export async function requestingApp(req: TokenRequest, deps: GrantDeps, attempt: AttemptRecord): Promise<AppRecord> {
  const rawClientId = req.client.id;
  if (!rawClientId) throw entraErrors.missingParameter('client_id');
  const clientId = canonicalClientId(rawClientId);
  attempt.clientId = clientId;
  const app = await deps.store.getApp(clientId);
  if (!app || app.tenantId !== deps.tenant.id) throw entraErrors.unknownClient(rawClientId, deps.tenant.name);
  attempt.appName = app.name;
  if (app.disabled) throw entraErrors.disabledApp(clientId, app.name);
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
