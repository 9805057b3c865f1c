// grant_type=password (resource owner password credentials), as MDE's native-app guide uses it: a local user's
// UPN and password, through a registered client app, for a delegated token on the v1 (resource) or v2 (scope)
// endpoint. Errors are Entra's: 50126 wrong name or password, 50053 locked, 50057 disabled, 900144 missing.
import { authenticateDelegatedClient, mintUserToken, requestedResource } from './delegatedTokens.ts';
import { entraErrors } from './entraErrors.ts';
import type { TokenGrant } from './tokenGrant.ts';

export const passwordGrant: TokenGrant = async (req, deps, attempt) => {
  if (!req.client.id) throw entraErrors.missingParameter('client_id');
  // Cheap checks first: nothing is hashed for a request that could never succeed.
  const wanted = requestedResource(req, deps, attempt);
  const username = req.params.get('username');
  if (!username) throw entraErrors.missingParameter('username');
  attempt.userUpn = username;
  const password = req.params.get('password');
  if (!password) throw entraErrors.missingParameter('password');
  const app = await authenticateDelegatedClient(req, deps, attempt);
  const user = await deps.users.check(username, password, {
    clientIp: req.clientIp,
    correlationId: req.correlationId,
    clientId: app.clientId,
  });
  attempt.userOid = user.oid;
  attempt.userUpn = user.upn;
  return mintUserToken(deps, req.version, user, app, wanted);
};
