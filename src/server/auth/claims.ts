// The claim sets of our access tokens, shaped like Entra ID's (mde-api.md §7.2), and the issuer strings that
// go with them. `iat`, `nbf` and `exp` are added by SigningKeys.sign.
import { createHash, randomBytes } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { AppRecord, UserRecord } from '../../store/store.ts';

export type TokenVersion = '1.0' | '2.0';

export const v1Issuer = (tenantId: string): string => `https://sts.windows.net/${tenantId}/`;
export const v2Issuer = (tenantId: string): string => `https://login.microsoftonline.com/${tenantId}/v2.0`;

/**
 * The object id of an app's service principal: a name-based (version 5 layout) GUID from tenant and client id,
 * so it is stable across restarts and nodes without being stored.
 */
export function servicePrincipalOid(tenantId: string, clientId: string): string {
  const b = createHash('sha256')
    .update('tourniquet-service-principal\n')
    .update(tenantId.toLowerCase())
    .update('\n')
    .update(clientId.toLowerCase())
    .digest()
    .subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Entra's `uti`: a per-token id, 16 random bytes in base64url. */
const newUti = (): string => randomBytes(16).toString('base64url');

/** Claims of an application (client-credentials) token, in Entra's order after `aud`/`iss`/times. */
export function appTokenClaims(version: TokenVersion, tenantId: string, app: AppRecord, audience: string): JWTPayload {
  const iss = version === '1.0' ? v1Issuer(tenantId) : v2Issuer(tenantId);
  const oid = servicePrincipalOid(tenantId, app.clientId);
  const who =
    version === '1.0' ? { appid: app.clientId, appidacr: '1' } : { azp: app.clientId, azpacr: '1' };
  return {
    aud: audience,
    iss,
    app_displayname: app.name,
    ...who,
    idp: iss,
    idtyp: 'app',
    oid,
    roles: [...app.roles],
    sub: oid,
    tid: tenantId,
    uti: newUti(),
    ver: version,
  };
}

/** Entra's `sub` for a user: pairwise, different for every app the user signs in to, stable for each. */
export function pairwiseSubject(userOid: string, clientId: string): string {
  return createHash('sha256')
    .update('tourniquet-subject\n')
    .update(userOid.toLowerCase())
    .update('\n')
    .update(clientId.toLowerCase())
    .digest()
    .subarray(0, 32)
    .toString('base64url');
}

/**
 * Claims of a delegated (user) token, in Entra's order: the user's identity (`oid`, `upn`, `unique_name`, `name`),
 * the client app (`appid` v1 / `azp` v2, acr 0 for a public client, 1 for a secret), and `scp`.
 */
export function userTokenClaims(
  version: TokenVersion,
  tenantId: string,
  user: Pick<UserRecord, 'oid' | 'upn' | 'displayName'>,
  app: Pick<AppRecord, 'clientId' | 'name' | 'publicClient'>,
  audience: string,
  scopes: readonly string[],
): JWTPayload {
  const iss = version === '1.0' ? v1Issuer(tenantId) : v2Issuer(tenantId);
  const acr = app.publicClient ? '0' : '1';
  const client = version === '1.0' ? { appid: app.clientId, appidacr: acr } : { azp: app.clientId, azpacr: acr };
  return {
    aud: audience,
    iss,
    acr: '1',
    amr: ['pwd'],
    app_displayname: app.name,
    ...client,
    idp: iss,
    idtyp: 'user',
    name: user.displayName,
    oid: user.oid,
    ...(version === '2.0' ? { preferred_username: user.upn } : {}),
    scp: scopes.join(' '),
    sub: pairwiseSubject(user.oid, app.clientId),
    tid: tenantId,
    unique_name: user.upn,
    upn: user.upn,
    uti: newUti(),
    ver: version,
  };
}
