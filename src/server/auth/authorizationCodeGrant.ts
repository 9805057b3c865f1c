// grant_type=authorization_code on the v2 token endpoint: redeems a code from the authorize form (authorizeRoutes),
// once, within ten minutes, for the client, redirect URI and PKCE challenge it was issued to. A code is consumed by
// the first redemption attempt, whether or not that attempt then proves the rest, so an intercepted code is worth
// one guess at the verifier.
import { createHash } from 'node:crypto';
import { nowTimestamp } from '../clock.ts';
import { authenticateDelegatedClient, mintUserToken } from './delegatedTokens.ts';
import { entraErrors } from './entraErrors.ts';
import { isCodeVerifier, verifierMatches } from './pkce.ts';
import type { TokenGrant } from './tokenGrant.ts';

export const AUTH_CODE_LIFETIME_SEC = 600;

export const codeHash = (code: string): string => createHash('sha256').update(code).digest('hex');

export const authorizationCodeGrant: TokenGrant = async (req, deps, attempt) => {
  if (req.version !== '2.0') throw entraErrors.unsupportedGrant('authorization_code');
  if (!req.client.id) throw entraErrors.missingParameter('client_id');
  const code = req.params.get('code');
  if (!code) throw entraErrors.missingParameter('code');
  const redirectUri = req.params.get('redirect_uri');
  if (!redirectUri) throw entraErrors.missingParameter('redirect_uri');
  const verifier = req.params.get('code_verifier');
  if (!verifier) throw entraErrors.missingParameter('code_verifier');
  if (!isCodeVerifier(verifier)) throw entraErrors.malformedVerifier();
  const app = await authenticateDelegatedClient(req, deps, attempt);

  const redemption = code.length <= 512 ? await deps.store.redeemAuthCode(codeHash(code), nowTimestamp()) : { outcome: 'unknown' as const };
  if (redemption.outcome === 'unknown') throw entraErrors.invalidCode();
  const issued = redemption.code;
  attempt.userOid = issued.userOid;
  attempt.audience = issued.audience;
  // Another client's code is, to this client, no code at all.
  if (issued.clientId !== app.clientId) throw entraErrors.invalidCode();
  if (redemption.outcome === 'alreadyUsed') throw entraErrors.codeRedeemed();
  if (redemption.outcome === 'expired') throw entraErrors.codeExpired();
  if (issued.redirectUri !== redirectUri) throw entraErrors.redirectMismatch();
  if (!verifierMatches(verifier, issued.codeChallenge)) throw entraErrors.pkceMismatch();

  const user = await deps.store.getUser(issued.userOid);
  if (!user) throw entraErrors.badUserCredentials();
  attempt.userUpn = user.upn;
  if (!user.enabled) throw entraErrors.userDisabled();
  return mintUserToken(deps, req.version, user, app, {
    resource: issued.audience,
    requested: issued.scopes.length > 0 ? issued.scopes : null,
  });
};
