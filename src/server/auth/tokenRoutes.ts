// Entra-ID-compatible token and discovery endpoints (issue 2 §3; mde-api.md §7.1, D20, D21):
// v1 and v2 token endpoints, JWKS, and OpenID metadata, answering in Entra's shapes including its errors.
import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Store, Tenant } from '../../store/store.ts';
import { nowTimestamp } from '../clock.ts';
import type { ServerConfig } from '../config.ts';
import { authorizationCodeGrant } from './authorizationCodeGrant.ts';
import { registerAuthorizeRoutes } from './authorizeRoutes.ts';
import { v1Issuer, v2Issuer, type TokenVersion } from './claims.ts';
import { clientCredentialsGrant } from './clientCredentials.ts';
import { EntraError, entraErrorBody, entraErrors } from './entraErrors.ts';
import { FormParams, NOT_FORM } from './formParams.ts';
import { publicBaseOf, requestOriginOf } from './origin.ts';
import { SecretChecker } from './secrets.ts';
import { SecretLockout } from './secretLockout.ts';
import type { SigningKeys } from './signingKeys.ts';
import { passwordGrant } from './passwordGrant.ts';
import type { AttemptRecord, GrantDeps, TokenGrant, TokenRequest } from './tokenGrant.ts';
import { UserSignIn } from './userSignIn.ts';

export interface TokenRouteDeps {
  store: Store;
  keys: SigningKeys;
  config: ServerConfig;
  tenant: Tenant;
  /** Injected for tests or to share across app instances; created per registration otherwise. */
  secrets?: SecretChecker;
  lockout?: SecretLockout;
  users?: UserSignIn;
}

/** A token request carries a handful of short parameters; anything near this size is not one. */
const TOKEN_BODY_LIMIT = 64 * 1024;

const GRANTS = new Map<string, TokenGrant>([
  ['client_credentials', clientCredentialsGrant],
  ['password', passwordGrant],
  ['authorization_code', authorizationCodeGrant],
]);

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Tenant aliases under which Entra serves its shared signing keys. */
const SHARED_KEY_TENANTS = new Set(['common', 'organizations']);

interface RouteConfig {
  tokenVersion?: TokenVersion;
}

interface RequestIds {
  traceId: string;
  correlationId: string;
}

const ids = new WeakMap<FastifyRequest, RequestIds>();

/** Entra uses the caller's `client-request-id` as the correlation id when it is a GUID. */
function requestIds(request: FastifyRequest): RequestIds {
  let v = ids.get(request);
  if (!v) {
    const given = request.headers['client-request-id'];
    v = { traceId: randomUUID(), correlationId: typeof given === 'string' && GUID.test(given) ? given.toLowerCase() : randomUUID() };
    ids.set(request, v);
  }
  return v;
}

function sendJson(request: FastifyRequest, reply: FastifyReply, status: number, body: unknown, cache: 'no-store' | 'public'): FastifyReply {
  const { traceId, correlationId } = requestIds(request);
  reply.header('x-ms-request-id', traceId);
  if (String(request.headers['return-client-request-id']).toLowerCase() === 'true') reply.header('client-request-id', correlationId);
  reply.header('X-Content-Type-Options', 'nosniff');
  if (cache === 'no-store') {
    reply.header('Cache-Control', 'no-store');
    reply.header('Pragma', 'no-cache');
  } else {
    // Discovery documents echo the request's host, so only private caches may keep them.
    reply.header('Cache-Control', 'max-age=86400, private');
  }
  return reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(body));
}

function sendEntraError(request: FastifyRequest, reply: FastifyReply, err: EntraError): FastifyReply {
  const { traceId, correlationId } = requestIds(request);
  return sendJson(request, reply, err.status, entraErrorBody(err, traceId, correlationId, new Date()), 'no-store');
}

/** `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1), as Entra accepts it. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | 'malformed' | null {
  if (header === undefined) return null;
  const m = /^Basic(?:\s+(.*))?$/is.exec(header.trim());
  if (!m) return null; // some other scheme: not client authentication
  const encoded = (m[1] ?? '').trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return 'malformed';
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return 'malformed';
  const formDecode = (s: string): string => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch {
      return s;
    }
  };
  return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
}

/** Caller-chosen text kept in the audit log is bounded. */
function clip(value: string): string {
  return value.length > 256 ? `${value.slice(0, 256)}…` : value;
}

function clientOf(request: FastifyRequest, params: FormParams): TokenRequest['client'] {
  const basic = basicCredentials(request.headers.authorization);
  if (basic === 'malformed') throw entraErrors.malformedRequest();
  const bodyId = params.get('client_id') ?? null;
  const bodySecret = params.get('client_secret') ?? null;
  if (!basic) return { id: bodyId, secret: bodySecret };
  // One authentication method per request (RFC 6749 §2.3); a body client_id may repeat the Basic one.
  if (bodySecret !== null) throw entraErrors.conflictingClientAuth();
  if (bodyId !== null && bodyId.toLowerCase() !== basic.id.toLowerCase()) throw entraErrors.conflictingClientAuth();
  return { id: basic.id, secret: basic.secret };
}

export async function registerTokenRoutes(app: FastifyInstance, deps: TokenRouteDeps): Promise<void> {
  await app.register(async (scope) => tokenRoutesPlugin(scope, deps));
}

async function tokenRoutesPlugin(app: FastifyInstance, deps: TokenRouteDeps): Promise<void> {
  const grantDeps: GrantDeps = {
    store: deps.store,
    keys: deps.keys,
    config: deps.config,
    tenant: deps.tenant,
    secrets: deps.secrets ?? new SecretChecker(),
    lockout: deps.lockout ?? new SecretLockout(),
    users: deps.users ?? new UserSignIn(deps.store, deps.config),
  };
  const tenantId = deps.tenant.id;

  const isOurTenant = (segment: string): boolean => {
    const s = segment.toLowerCase();
    return s === tenantId.toLowerCase() || (deps.tenant.name.length > 0 && s === deps.tenant.name.toLowerCase());
  };

  // Scoped to this plugin: the token endpoints speak forms; whatever else arrives is read (within the limit)
  // and treated as a request without parameters, which Entra answers with "must contain grant_type".
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: TOKEN_BODY_LIMIT }, (_req, body, done) => {
    done(null, FormParams.parse(body as string));
  });
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: TOKEN_BODY_LIMIT }, (_req, _body, done) => {
    done(null, NOT_FORM);
  });

  const audit = async (
    request: FastifyRequest,
    version: TokenVersion,
    grantType: string | null,
    attempt: AttemptRecord,
    outcome: { status: number; error?: EntraError },
  ): Promise<void> => {
    const detail: Record<string, unknown> = {
      version,
      grantType: grantType === null ? null : clip(grantType),
      audience: attempt.audience === null ? null : clip(attempt.audience),
    };
    if (outcome.error) detail.error = `AADSTS${outcome.error.aadsts}`;
    if (attempt.lockedOut) detail.lockedOut = true;
    const clientId = attempt.clientId === null ? null : clip(attempt.clientId);
    // A delegated grant is the user's act, through the client app (named in detail and target).
    const user = attempt.userUpn !== undefined && attempt.userUpn !== null;
    if (user) detail.clientId = clientId;
    await deps.store.appendAudit({
      at: nowTimestamp(),
      actorType: user ? 'user' : 'app',
      actorId: user ? (attempt.userOid ?? '(unknown)') : (clientId ?? '(none)'),
      actorName: user ? clip(attempt.userUpn!) : attempt.appName,
      action: 'token.issue',
      target: clientId,
      result: outcome.error ? 'failure' : 'success',
      status: outcome.status,
      clientIp: request.ip ?? null,
      correlationId: requestIds(request).correlationId,
      detail,
    });
  };

  const failAndAudit = async (
    request: FastifyRequest,
    reply: FastifyReply,
    version: TokenVersion,
    grantType: string | null,
    attempt: AttemptRecord,
    err: EntraError,
  ): Promise<FastifyReply> => {
    try {
      await audit(request, version, grantType, attempt, { status: err.status, error: err });
    } catch (auditErr) {
      request.log.error({ err: auditErr }, 'could not audit a failed token request');
    }
    return sendEntraError(request, reply, err);
  };

  const tokenHandler = (version: TokenVersion) => async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
    const attempt: AttemptRecord = { clientId: null, appName: null, audience: null, lockedOut: false };
    const params = request.body instanceof FormParams ? request.body : FormParams.empty();
    const grantType = params.get('grant_type') ?? null;
    // Known before anything is checked, so even an early refusal is audited against the client that asked.
    attempt.clientId = params.get('client_id') ?? null;
    try {
      // Delegated flows may name the multi-tenant aliases (current XSOAR redeems codes at /organizations/); this
      // server has one tenant, so they mean it. An application token always needs the tenant named, as on Entra.
      const alias = SHARED_KEY_TENANTS.has(request.params.tenant.toLowerCase()) && grantType !== 'client_credentials';
      if (!alias && !isOurTenant(request.params.tenant)) throw entraErrors.unknownTenant(request.params.tenant);
      if (params.duplicates.length > 0) throw entraErrors.malformedRequest();
      const client = clientOf(request, params);
      attempt.clientId = client.id;
      if (!grantType) throw entraErrors.missingParameter('grant_type');
      const grant = GRANTS.get(grantType);
      if (!grant) throw entraErrors.unsupportedGrant(grantType);
      const issued = await grant(
        {
          version,
          params,
          client,
          requestOrigin: requestOriginOf(request),
          clientIp: request.ip ?? null,
          correlationId: requestIds(request).correlationId,
        },
        grantDeps,
        attempt,
      );
      // No token leaves without its audit record.
      try {
        await audit(request, version, grantType, attempt, { status: 200 });
      } catch (auditErr) {
        request.log.error({ err: auditErr }, 'could not audit an issued token; refusing it');
        throw entraErrors.unavailable();
      }
      return sendJson(
        request,
        reply,
        200,
        issued.scope === undefined
          ? { token_type: 'Bearer', expires_in: issued.expiresIn, ext_expires_in: issued.expiresIn, access_token: issued.accessToken }
          : // Delegated tokens: Entra's response names the granted scopes.
            {
              token_type: 'Bearer',
              scope: issued.scope,
              expires_in: issued.expiresIn,
              ext_expires_in: issued.expiresIn,
              access_token: issued.accessToken,
            },
        'no-store',
      );
    } catch (err) {
      if (err instanceof EntraError) return failAndAudit(request, reply, version, grantType, attempt, err);
      request.log.error({ err }, 'token request failed');
      return failAndAudit(request, reply, version, grantType, attempt, entraErrors.unavailable());
    }
  };

  registerAuthorizeRoutes(app, {
    store: deps.store,
    config: deps.config,
    tenant: deps.tenant,
    users: grantDeps.users,
    // The sign-in page serves /organizations/ and /common/ too: the user signs in to this server's one tenant.
    isOurTenant: (segment: string) => isOurTenant(segment) || SHARED_KEY_TENANTS.has(segment.toLowerCase()),
    requestIds,
  });

  const onlyPost = async (request: FastifyRequest, reply: FastifyReply) =>
    sendEntraError(request, reply, entraErrors.onlyPost(request.method));

  for (const [path, version] of [
    ['/:tenant/oauth2/token', '1.0'],
    ['/:tenant/oauth2/v2.0/token', '2.0'],
  ] as const) {
    app.route<{ Params: { tenant: string } }>({
      method: 'POST',
      url: path,
      config: { tokenVersion: version } satisfies RouteConfig,
      handler: tokenHandler(version),
    });
    app.route({ method: ['GET', 'PUT', 'PATCH', 'DELETE'], url: path, handler: onlyPost });
  }

  const jwks = async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
    const t = request.params.tenant;
    if (!isOurTenant(t) && !SHARED_KEY_TENANTS.has(t.toLowerCase())) return sendEntraError(request, reply, entraErrors.unknownTenant(t));
    return sendJson(request, reply, 200, deps.keys.jwks(), 'public');
  };
  app.get('/:tenant/discovery/keys', jwks);
  app.get('/:tenant/discovery/v2.0/keys', jwks);

  const metadata = (version: TokenVersion) => async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
    const t = request.params.tenant;
    if (!isOurTenant(t)) return sendEntraError(request, reply, entraErrors.unknownTenant(t));
    const base = publicBaseOf(request, deps.config.publicUrl);
    if (!base) return sendEntraError(request, reply, entraErrors.malformedRequest());
    return sendJson(request, reply, 200, openIdMetadata(version, base, tenantId), 'public');
  };
  app.get('/:tenant/v2.0/.well-known/openid-configuration', metadata('2.0'));
  app.get('/:tenant/.well-known/openid-configuration', metadata('1.0'));

  // Everything that goes wrong before a handler runs (body too large, broken framing) is answered like Entra too.
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const status = typeof error.statusCode === 'number' ? error.statusCode : 500;
    const entra =
      status === 413 ? entraErrors.bodyTooLarge() : status >= 400 && status < 500 ? entraErrors.malformedRequest() : entraErrors.unavailable();
    if (status >= 500) request.log.error({ err: error }, 'token endpoint error');
    const version = (request.routeOptions.config as RouteConfig | undefined)?.tokenVersion;
    if (version) {
      const attempt: AttemptRecord = { clientId: null, appName: null, audience: null, lockedOut: false };
      return failAndAudit(request, reply, version, null, attempt, entra);
    }
    return sendEntraError(request, reply, entra);
  });
}

/** OpenID provider metadata in Entra's layout; endpoints point at us, `issuer` is the one our tokens carry. */
function openIdMetadata(version: TokenVersion, base: string, tenantId: string): Record<string, unknown> {
  const v2 = version === '2.0';
  const oauth = `${base}/${tenantId}/oauth2${v2 ? '/v2.0' : ''}`;
  return {
    token_endpoint: `${oauth}/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    jwks_uri: `${base}/${tenantId}/discovery${v2 ? '/v2.0' : ''}/keys`,
    response_modes_supported: ['query', 'fragment'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code'],
    // The authorization-code sign-in (PKCE, S256) is served on the v2 endpoints only.
    grant_types_supported: v2 ? ['client_credentials', 'password', 'authorization_code'] : ['client_credentials', 'password'],
    ...(v2 ? { code_challenge_methods_supported: ['S256'] } : {}),
    scopes_supported: v2 ? ['openid', 'profile', 'email', 'offline_access'] : ['openid'],
    issuer: v2 ? v2Issuer(tenantId) : v1Issuer(tenantId),
    request_uri_parameter_supported: false,
    authorization_endpoint: `${base}/${tenantId}/oauth2/v2.0/authorize`,
    claims_supported: [
      'sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'tid', 'oid', 'roles', 'scp', 'ver', v2 ? 'azp' : 'appid',
      'upn', 'unique_name', 'name', ...(v2 ? ['preferred_username'] : []),
    ],
    tenant_region_scope: 'WW',
    cloud_instance_name: 'microsoftonline.com',
  };
}
