// grant_type=client_credentials: an application proves its secret and receives an app-only token for one of the
// accepted audiences. Other grants (password, authorization_code — issue 6) implement the same TokenGrant shape.
import { isAcceptedAudience, audienceClaimFor, resourceFromScope } from './audiences.ts';
import { appTokenClaims } from './claims.ts';
import { entraErrors } from './entraErrors.ts';
import type { TokenGrant } from './tokenGrant.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const clientCredentialsGrant: TokenGrant = async (req, deps, attempt) => {
  const rawClientId = req.client.id;
  if (!rawClientId) throw entraErrors.missingParameter('client_id');
  // Client ids are GUIDs, which Entra compares case-insensitively.
  const clientId = GUID.test(rawClientId) ? rawClientId.toLowerCase() : rawClientId;
  attempt.clientId = clientId;

  const resourceParam = req.version === '1.0' ? 'resource' : 'scope';
  const requested = req.params.get(resourceParam);
  if (!requested) throw entraErrors.missingParameter(resourceParam);
  if (!req.client.secret) throw entraErrors.missingParameter('client_secret');

  const app = await deps.store.getApp(clientId);
  if (!app || app.tenantId !== deps.tenant.id) throw entraErrors.unknownClient(rawClientId, deps.tenant.name);
  attempt.appName = app.name;
  if (app.disabled) throw entraErrors.disabledApp(clientId, app.name);

  if (deps.lockout.isLocked(clientId)) {
    attempt.lockedOut = true;
    throw entraErrors.badSecret(clientId);
  }
  if (!(await deps.secrets.check(clientId, req.client.secret, app.secretHash))) {
    deps.lockout.recordFailure(clientId);
    throw entraErrors.badSecret(clientId);
  }
  deps.lockout.recordSuccess(clientId);

  let resource = requested;
  if (req.version === '2.0') {
    const picked = resourceFromScope(requested);
    if (!picked.ok) throw entraErrors.invalidScope(requested);
    resource = picked.resource;
  }
  attempt.audience = audienceClaimFor(resource);
  const ctx = { requestOrigin: req.requestOrigin, publicUrl: deps.config.publicUrl };
  if (!isAcceptedAudience(resource, ctx)) {
    // Entra answers an unknown resource with invalid_resource on both endpoints; a v2 value that is not even a
    // `.default` resource scope is an invalid scope.
    if (req.version === '2.0' && !resource.toLowerCase().endsWith('/.default')) throw entraErrors.invalidScope(requested);
    throw entraErrors.invalidResource(audienceClaimFor(resource), deps.tenant.name);
  }

  const claims = appTokenClaims(req.version, deps.tenant.id, app, attempt.audience);
  const accessToken = await deps.keys.sign(claims, deps.config.tokenLifetimeSec);
  return { accessToken, expiresIn: deps.config.tokenLifetimeSec };
};
