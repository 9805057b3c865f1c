// grant_type=client_credentials: an application proves its secret and receives an app-only token for one of the
// accepted audiences. Other grants (password, authorization_code — issue 6) implement the same TokenGrant shape.
import { isAcceptedAudience, audienceClaimFor, resourceFromScope } from './audiences.ts';
import { appTokenClaims } from './claims.ts';
import { entraErrors } from './entraErrors.ts';
import type { TokenGrant } from './tokenGrant.ts';
import { identifyClient, requestingApp, verifyClientSecret } from './clientAuthentication.ts';

export const clientCredentialsGrant: TokenGrant = async (req, deps, attempt) => {
  const client = identifyClient(req, attempt);

  const resourceParam = req.version === '1.0' ? 'resource' : 'scope';
  const requested = req.params.get(resourceParam);
  if (!requested) throw entraErrors.missingParameter(resourceParam);
  if (!req.client.secret) throw entraErrors.missingParameter('client_secret');

  const app = await requestingApp(deps, attempt, client);
  await verifyClientSecret(deps, attempt, app, req.client.secret);

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
