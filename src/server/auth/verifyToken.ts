// Bearer-token verification for /api: our own RS256 tokens and, when configured, tokens from external issuers
// such as a real Entra ID tenant. The algorithm is pinned; signature, issuer, audience, times and tenant are all
// checked; successes are cached per raw token (never beyond its exp) so the hot path is a map lookup.
import { readFile, stat } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { MdeError } from '../../core/errors.ts';
import type { Store, Tenant } from '../../store/store.ts';
import type { ExternalIssuerConfig, ServerConfig } from '../config.ts';
import { isKnownMdeAudience, matchAudience, originOf } from './audiences.ts';
import { v1Issuer, v2Issuer } from './claims.ts';
import { ExpiringLru } from './expiringLru.ts';
import type { Principal } from './principal.ts';
import type { SigningKeys } from './signingKeys.ts';

export interface TokenVerifierDeps {
  store: Store;
  keys: SigningKeys;
  config: ServerConfig;
  tenant: Tenant;
  /** Bound on cached verifications. Default 10 000. */
  cacheSize?: number;
  now?: () => number;
}

export interface TokenVerifier {
  verify(authorizationHeader: string | undefined, requestOrigin: string): Promise<Principal>;
}

const MAX_TOKEN_BYTES = 16 * 1024;
const CLOCK_SKEW_SEC = 300;
/** A disabled or deleted app's tokens stop working within this long. */
const APP_STATUS_TTL_MS = 30_000;

interface CachedVerdict {
  /** The whole token: the cache is keyed by its tail only (cacheKey). */
  token: string;
  principal: Principal;
  /** Set when the audience was accepted only because it named the origin the request came in on. */
  boundOrigin: string | null;
  /** Our own key that signed it, re-checked on every hit so a removed key stops its tokens at once. */
  localKid: string | null;
}

type Trust = { kind: 'local' } | { kind: 'external'; issuer: ExternalIssuerConfig; getKey: JWTVerifyGetKey };

class Unauthorized extends Error {}

function isLoopbackUrl(url: URL): boolean {
  return url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
}

/** Keys of an external issuer from a JWKS file, re-read when the file changes and a kid is not found. */
function jwksFromFile(path: string): JWTVerifyGetKey {
  let loaded: { mtimeMs: number; getKey: JWTVerifyGetKey } | null = null;
  const load = async (): Promise<JWTVerifyGetKey> => {
    const info = await stat(path);
    if (!loaded || loaded.mtimeMs !== info.mtimeMs) {
      const jwks = JSON.parse(await readFile(path, 'utf8')) as Parameters<typeof createLocalJWKSet>[0];
      loaded = { mtimeMs: info.mtimeMs, getKey: createLocalJWKSet(jwks) };
    }
    return loaded.getKey;
  };
  return async (header, token) => {
    const getKey = await load();
    return getKey(header, token);
  };
}

function externalKeySource(issuer: ExternalIssuerConfig): JWTVerifyGetKey {
  if (issuer.jwksUrl) {
    const url = new URL(issuer.jwksUrl);
    // Keys fetched over plain http could be swapped by anyone on the path; only loopback is exempt (tests, sidecars).
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackUrl(url))) {
      throw new Error(`external issuer ${issuer.issuer}: jwksUrl must be https`);
    }
    return createRemoteJWKSet(url, { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
  }
  if (issuer.jwksFile) return jwksFromFile(issuer.jwksFile);
  throw new Error(`external issuer ${issuer.issuer}: needs jwksUrl or jwksFile`);
}

function stringClaim(payload: JWTPayload, name: string): string | null {
  const v = payload[name];
  return typeof v === 'string' && v.length > 0 ? v : null;
}

function stringArrayClaim(payload: JWTPayload, name: string): string[] {
  const v = payload[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function principalFrom(payload: JWTPayload, issuer: string): Principal {
  const scp = stringClaim(payload, 'scp');
  const appId = stringClaim(payload, 'appid') ?? stringClaim(payload, 'azp') ?? '';
  const upn = stringClaim(payload, 'upn') ?? stringClaim(payload, 'unique_name') ?? stringClaim(payload, 'preferred_username');
  // Entra marks user tokens with `scp`; ours also say `idtyp: user`, which holds even when scp is empty.
  const kind = scp !== null || stringClaim(payload, 'idtyp') === 'user' ? 'user' : 'app';
  const name =
    kind === 'user'
      ? (stringClaim(payload, 'name') ?? upn ?? stringClaim(payload, 'oid') ?? '')
      : (stringClaim(payload, 'app_displayname') ?? appId);
  // Cached and shared between requests: frozen so no handler can alter another request's caller.
  return deepFreeze({
    kind,
    tenantId: stringClaim(payload, 'tid') ?? '',
    appId,
    oid: stringClaim(payload, 'oid') ?? stringClaim(payload, 'sub') ?? '',
    name,
    roles: stringArrayClaim(payload, 'roles'),
    scopes: scp ? scp.split(' ').filter((s) => s.length > 0) : [],
    upn,
    groups: stringArrayClaim(payload, 'groups'),
    issuer,
  });
}

function deepFreeze(p: Principal): Principal {
  Object.freeze(p.roles);
  Object.freeze(p.scopes);
  Object.freeze(p.groups);
  return Object.freeze(p);
}

/**
 * Verdicts are cached under a token's last characters (the end of its signature) and a hit is checked against the
 * whole token. Each request brings the token as a new string, which a Map hashes in full: ~0.7% of a POST's
 * instructions for a ~1 KB token, against ~50 characters here.
 */
const CACHE_KEY_CHARS = 48;

function cacheKey(token: string): string {
  return token.length > CACHE_KEY_CHARS ? token.slice(-CACHE_KEY_CHARS) : token;
}

export function createTokenVerifier(deps: TokenVerifierDeps): TokenVerifier {
  const now = deps.now ?? Date.now;
  const cache = new ExpiringLru<string, CachedVerdict>(deps.cacheSize ?? 10_000);
  const appStatus = new ExpiringLru<string, boolean>(10_000);
  const tenantId = deps.tenant.id;
  const localIssuers = new Set([v1Issuer(tenantId), v2Issuer(tenantId)]);
  const external = new Map<string, Trust>();
  for (const issuer of deps.config.externalIssuers) {
    if (localIssuers.has(issuer.issuer)) throw new Error(`external issuer ${issuer.issuer} collides with the local issuer`);
    external.set(issuer.issuer, { kind: 'external', issuer, getKey: externalKeySource(issuer) });
  }
  const publicUrl = deps.config.publicUrl;

  const challenge = (requestOrigin: string, description: string | null): string => {
    // The origin comes from the Host header: only plain URL characters may reach a quoted header parameter.
    const candidate = publicUrl?.replace(/\/+$/, '') ?? originOf(requestOrigin) ?? '';
    const origin = /^[A-Za-z0-9.:/\-[\]_~]*$/.test(candidate) ? candidate : '';
    const base = `Bearer authorization_uri="${origin}/${tenantId}/oauth2/authorize", resource_id="${origin}"`;
    return description ? `${base}, error="invalid_token", error_description="${description}"` : base;
  };

  const unauthorized = (requestOrigin: string, message: string, tokenPresented: boolean) =>
    new MdeError(401, 'Unauthorized', message, { 'WWW-Authenticate': challenge(requestOrigin, tokenPresented ? message : null) });

  /** Whether a local app may still use its tokens (it exists, is ours, is not disabled); cached briefly. */
  const appActive = async (clientId: string): Promise<boolean> => {
    const cached = appStatus.get(clientId, now());
    if (cached !== undefined) return cached;
    const app = await deps.store.getApp(clientId);
    const active = app !== null && app.tenantId === tenantId && !app.disabled;
    appStatus.set(clientId, active, now() + APP_STATUS_TTL_MS);
    return active;
  };

  const verifyUncached = async (token: string, requestOrigin: string): Promise<Omit<CachedVerdict, 'token'> & { expMs: number }> => {
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claimed: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      claimed = decodeJwt(token);
    } catch {
      throw new Unauthorized('malformed token');
    }
    // Pinned before any key is looked at: no `none`, no HMAC (public-key-as-secret), no EC/PSS.
    if (header.alg !== 'RS256') throw new Unauthorized('token algorithm not accepted');
    if (header.typ !== undefined && String(header.typ).toUpperCase() !== 'JWT') throw new Unauthorized('token type not accepted');
    if (typeof header.kid !== 'string' || header.kid.length === 0) throw new Unauthorized('token has no key id');
    const iss = typeof claimed.iss === 'string' ? claimed.iss : '';
    const trust: Trust | undefined = localIssuers.has(iss) ? { kind: 'local' } : external.get(iss);
    if (!trust) throw new Unauthorized('token issuer not trusted');

    const options = {
      algorithms: ['RS256'],
      issuer: iss,
      clockTolerance: CLOCK_SKEW_SEC,
      requiredClaims: ['exp', 'iat', 'tid', 'aud'],
      currentDate: new Date(now()),
    };
    let payload: JWTPayload;
    try {
      if (trust.kind === 'local') {
        const local = await deps.keys.findVerificationKey(header.kid);
        if (!local) throw new Unauthorized('token signing key not known');
        payload = (await jwtVerify(token, local, options)).payload;
      } else {
        payload = (await jwtVerify(token, trust.getKey, options)).payload;
      }
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'ERR_JWT_EXPIRED') throw new Unauthorized('token expired');
      if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') throw new Unauthorized(`token claim check failed: ${(err as { claim?: string }).claim ?? 'claim'}`);
      if (code === 'ERR_JWKS_NO_MATCHING_KEY') throw new Unauthorized('token signing key not known');
      throw new Unauthorized('token signature not valid');
    }

    const nowSec = Math.floor(now() / 1000);
    if (typeof payload.iat !== 'number' || payload.iat > nowSec + CLOCK_SKEW_SEC) throw new Unauthorized('token issued in the future');
    const expectedTenant = trust.kind === 'local' ? tenantId : trust.issuer.tenantId;
    if (typeof payload.tid !== 'string' || payload.tid.toLowerCase() !== expectedTenant.toLowerCase()) {
      throw new Unauthorized('token tenant not accepted');
    }

    const audiences = (Array.isArray(payload.aud) ? payload.aud : [payload.aud]).filter((a): a is string => typeof a === 'string');
    let accepted = false;
    let boundOrigin: string | null = null;
    if (trust.kind === 'external') {
      // Another issuer's tokens are for whatever audience its tenant chose: only MDE's (or our configured public URL)
      // count, never "whatever Host header this request carried".
      accepted = audiences.some((a) => isKnownMdeAudience(a) || matchAudience(a, { requestOrigin: null, publicUrl }) === 'static');
    } else {
      const matches = audiences.map((a) => matchAudience(a, { requestOrigin, publicUrl }));
      if (matches.includes('static')) accepted = true;
      else if (matches.includes('origin')) {
        accepted = true;
        boundOrigin = originOf(requestOrigin);
      }
    }
    if (!accepted) throw new Unauthorized('token audience not accepted');

    const principal = principalFrom(payload, trust.kind === 'local' ? 'local' : trust.issuer.issuer);
    // Our tokens, app or user, stop working when the client app they were issued to is disabled or deleted.
    if (trust.kind === 'local') {
      if (!principal.appId || !(await appActive(principal.appId))) throw new Unauthorized('application not active');
    }
    return {
      principal,
      boundOrigin,
      localKid: trust.kind === 'local' ? header.kid : null,
      expMs: (payload.exp as number) * 1000,
    };
  };

  return {
    async verify(authorizationHeader, requestOrigin) {
      if (authorizationHeader === undefined || authorizationHeader.length === 0) {
        throw unauthorized(requestOrigin, 'Authorization header is missing', false);
      }
      const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(authorizationHeader);
      if (!m) throw unauthorized(requestOrigin, 'Authorization header must be a Bearer token', false);
      const token = m[1]!;
      if (token.length > MAX_TOKEN_BYTES) throw unauthorized(requestOrigin, 'token too large', true);

      const key = cacheKey(token);
      const hit = cache.get(key, now());
      if (hit && hit.token === token) {
        const originOk = hit.boundOrigin === null || hit.boundOrigin === originOf(requestOrigin);
        const keyOk = hit.localKid === null || deps.keys.verificationKey(hit.localKid) !== null;
        const appOk = hit.localKid === null || (await appActive(hit.principal.appId));
        if (originOk && keyOk && appOk) return hit.principal;
        cache.delete(key);
      }

      try {
        const verdict = await verifyUncached(token, requestOrigin);
        cache.set(key, { token, principal: verdict.principal, boundOrigin: verdict.boundOrigin, localKid: verdict.localKid }, verdict.expMs);
        return verdict.principal;
      } catch (err) {
        if (err instanceof Unauthorized) throw unauthorized(requestOrigin, err.message, true);
        throw err;
      }
    },
  };
}
