// What the delegated grants (password, authorization code) share: authenticating the client app (public clients
// hold no secret, confidential ones must prove theirs), reading the requested resource and scopes, deriving `scp`
// from the user's roles, and minting the user token.
import { normalizeAudience, audienceClaimFor, isAcceptedAudience } from './audiences.ts';
import { ALL_DELEGATED_SCOPES, delegatedScopesFor, permissionsOf } from '../../core/rbac.ts';
import type { AppRecord, Store, UserRecord } from '../../store/store.ts';
import { userTokenClaims, type TokenVersion } from './claims.ts';
import { entraErrors } from './entraErrors.ts';
import type { AttemptRecord, GrantDeps, IssuedToken, TokenRequest } from './tokenGrant.ts';
import { identifyClient, requestingApp, verifyClientSecret } from './clientAuthentication.ts';

/** The scope every user token may carry even when the user's roles grant nothing (Entra's conventional default). */
export const BASE_SCOPE = 'user_impersonation';

const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);
const KNOWN_SCOPES = new Map([...ALL_DELEGATED_SCOPES, BASE_SCOPE].map((s) => [s.toLowerCase(), s]));
const DEFAULT_SUFFIX = '/.default';

export interface DelegatedScopeRequest {
  /** The resource as the client wrote it (the token's `aud`, minus `/.default`). */
  resource: string;
  /** Specific delegated permissions asked for; null = `.default`, i.e. everything the user's roles grant. */
  requested: string[] | null;
}

/**
 * A v2 `scope`: `<resource>/.default`, `<resource>/<Permission>` (any number, one resource), or a bare resource;
 * OpenID Connect scopes ride along and are ignored. null when it names no resource or several.
 */
export function parseDelegatedScope(scope: string): DelegatedScopeRequest | null {
  const values = scope.split(/\s+/).filter((v) => v.length > 0 && !OIDC_SCOPES.has(v.toLowerCase()));
  if (values.length === 0) return null;
  let resource: string | null = null;
  let resourceKey: string | null = null;
  let all = false;
  const requested: string[] = [];
  for (const v of values) {
    let base = v;
    if (v.toLowerCase().endsWith(DEFAULT_SUFFIX)) {
      base = v.slice(0, -DEFAULT_SUFFIX.length);
      all = true;
    } else {
      const slash = v.lastIndexOf('/');
      const named = slash > 0 ? KNOWN_SCOPES.get(v.slice(slash + 1).toLowerCase()) : undefined;
      if (named) {
        base = v.slice(0, slash);
        if (!requested.includes(named)) requested.push(named);
      } else {
        all = true; // a bare resource, as client credentials accept it too
      }
    }
    const key = normalizeAudience(base);
    if (key === null) return null;
    if (resourceKey === null) {
      resource = base;
      resourceKey = key;
    } else if (key !== resourceKey) {
      return null;
    }
  }
  return { resource: resource!, requested: all ? null : requested };
}

/** `scp` for a user now: the delegated permissions of every role assigned to them. */
export async function scopesForUser(store: Store, userOid: string): Promise<string[]> {
  const granted = delegatedScopesFor(permissionsOf(await store.assignmentsFor({ userOid })));
  return granted.length > 0 ? granted : [BASE_SCOPE];
}

/**
 * The client app of a delegated grant. Public clients must not present a secret; confidential clients must
 * present theirs (checked with the same lockout as client credentials).
 */
export async function authenticateDelegatedClient(req: TokenRequest, deps: GrantDeps, attempt: AttemptRecord): Promise<AppRecord> {
  const app = await requestingApp(deps, attempt, identifyClient(req, attempt));
  if (app.publicClient) {
    if (req.client.secret !== null || req.params.get('client_assertion') !== undefined) throw entraErrors.publicClientWithSecret();
    return app;
  }
  if (!req.client.secret) throw entraErrors.confidentialClientWithoutSecret();
  await verifyClientSecret(deps, attempt, app, req.client.secret);
  return app;
}

/** The resource a delegated token request names, checked against the audiences this server answers to. */
export function requestedResource(req: TokenRequest, deps: GrantDeps, attempt: AttemptRecord): DelegatedScopeRequest {
  let wanted: DelegatedScopeRequest;
  if (req.version === '1.0') {
    const resource = req.params.get('resource');
    if (!resource) throw entraErrors.missingParameter('resource');
    wanted = { resource: audienceClaimFor(resource), requested: null };
  } else {
    const scope = req.params.get('scope');
    if (!scope) throw entraErrors.missingParameter('scope');
    const parsed = parseDelegatedScope(scope);
    if (!parsed) throw entraErrors.invalidScope(scope);
    wanted = parsed;
  }
  attempt.audience = wanted.resource;
  if (!isAcceptedAudience(wanted.resource, { requestOrigin: req.requestOrigin, publicUrl: deps.config.publicUrl })) {
    throw entraErrors.invalidResource(wanted.resource, deps.tenant.name);
  }
  return wanted;
}

/** Signs the user's token; asking for a permission the user's roles do not grant is refused like missing consent. */
export async function mintUserToken(
  deps: GrantDeps,
  version: TokenVersion,
  user: UserRecord,
  app: AppRecord,
  wanted: DelegatedScopeRequest,
): Promise<IssuedToken> {
  const granted = await scopesForUser(deps.store, user.oid);
  let scopes = granted;
  if (wanted.requested !== null) {
    const allowed = new Set([...granted, BASE_SCOPE]);
    if (wanted.requested.some((s) => !allowed.has(s))) throw entraErrors.consentRequired(app.clientId, app.name);
    scopes = wanted.requested.length > 0 ? wanted.requested : [BASE_SCOPE];
  }
  const claims = userTokenClaims(version, deps.tenant.id, user, app, wanted.resource, scopes);
  const accessToken = await deps.keys.sign(claims, deps.config.tokenLifetimeSec);
  return { accessToken, expiresIn: deps.config.tokenLifetimeSec, scope: scopes.join(' ') };
}
