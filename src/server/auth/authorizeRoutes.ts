// GET/POST /{tenant}/oauth2/v2.0/authorize: the authorization-code sign-in for the web console and other public
// clients. GET shows a minimal HTML sign-in form; POST checks the password (with lockout) and redirects to the
// registered redirect URI with a one-time code bound to client, redirect URI and PKCE challenge (S256 only).
// As Entra does, an unknown client or an unregistered redirect URI is shown on the page, never redirected to;
// every other error goes back to the client as `error`/`error_description` on its redirect URI.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { millisToTimestamp } from '../../core/time.ts';
import type { AppRecord, Store, Tenant } from '../../store/store.ts';
import { nowTimestamp } from '../clock.ts';
import type { ServerConfig } from '../config.ts';
import { AUTH_CODE_LIFETIME_SEC, codeHash } from './authorizationCodeGrant.ts';
import { isAcceptedAudience } from './audiences.ts';
import { parseDelegatedScope, type DelegatedScopeRequest } from './delegatedTokens.ts';
import { EntraError } from './entraErrors.ts';
import { FormParams } from './formParams.ts';
import { requestOriginOf } from './origin.ts';
import { isS256Challenge } from './pkce.ts';
import type { UserSignIn } from './userSignIn.ts';

export interface AuthorizeDeps {
  store: Store;
  config: ServerConfig;
  tenant: Tenant;
  users: UserSignIn;
  isOurTenant(segment: string): boolean;
  /** Entra's request ids (x-ms-request-id / correlation) for this request. */
  requestIds(request: FastifyRequest): { traceId: string; correlationId: string };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_STATE_LENGTH = 2048;

interface AuthorizeRequest {
  tenantSegment: string;
  app: AppRecord;
  redirectUri: string;
  responseMode: 'query' | 'fragment';
  state: string | null;
  scope: string;
  codeChallenge: string;
  wanted: DelegatedScopeRequest;
  loginHint: string;
}

type Checked =
  | { kind: 'ok'; request: AuthorizeRequest }
  /** Shown on our page: there is no trustworthy place to redirect to. */
  | { kind: 'page'; status: number; code: number; message: string }
  /** Sent back to the client on its (registered) redirect URI. */
  | { kind: 'redirect'; location: string };

function html(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Appends parameters to a redirect URI: in its query, or in the fragment for response_mode=fragment. */
function redirectTo(uri: string, mode: 'query' | 'fragment', params: Record<string, string>): string {
  const url = new URL(uri);
  if (mode === 'fragment') url.hash = new URLSearchParams(params).toString();
  else for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

async function checkRequest(deps: AuthorizeDeps, tenantSegment: string, params: FormParams, requestOrigin: string | null): Promise<Checked> {
  const page = (status: number, code: number, message: string): Checked => ({ kind: 'page', status, code, message });
  if (!deps.isOurTenant(tenantSegment)) return page(400, 90002, `Tenant '${tenantSegment}' not found.`);
  if (params.duplicates.length > 0) return page(400, 9002313, 'Invalid request. Request is malformed or invalid.');
  const rawClientId = params.get('client_id');
  if (!rawClientId) return page(400, 900144, "The request body must contain the following parameter: 'client_id'.");
  const clientId = GUID.test(rawClientId) ? rawClientId.toLowerCase() : rawClientId;
  const app = await deps.store.getApp(clientId);
  if (!app || app.tenantId !== deps.tenant.id) {
    return page(400, 700016, `Application with identifier '${rawClientId}' was not found in the directory '${deps.tenant.name}'.`);
  }
  if (app.disabled) return page(400, 7000112, `Application '${app.clientId}'(${app.name}) is disabled.`);
  const redirectUri = params.get('redirect_uri');
  if (!redirectUri) return page(400, 900144, "The request body must contain the following parameter: 'redirect_uri'.");
  if (!(app.redirectUris ?? []).includes(redirectUri)) {
    return page(
      400,
      50011,
      `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application '${app.clientId}'.`,
    );
  }

  // From here on the client and its redirect URI are known: errors go back to it.
  const modeParam = params.get('response_mode') ?? 'query';
  const responseMode: 'query' | 'fragment' = modeParam === 'fragment' ? 'fragment' : 'query';
  const state = params.get('state') ?? null;
  const back = (error: string, code: number, description: string): Checked => ({
    kind: 'redirect',
    location: redirectTo(redirectUri, responseMode, {
      error,
      error_description: `AADSTS${code}: ${description}`,
      ...(state !== null && state.length <= MAX_STATE_LENGTH ? { state } : {}),
    }),
  });
  if (state !== null && state.length > MAX_STATE_LENGTH) return back('invalid_request', 9002313, 'Invalid request. The state parameter is too long.');
  if (modeParam !== 'query' && modeParam !== 'fragment') {
    return back('invalid_request', 9002313, `Invalid request. response_mode '${modeParam}' is not supported; use query or fragment.`);
  }
  const responseType = params.get('response_type');
  if (!responseType) return back('invalid_request', 900144, "The request body must contain the following parameter: 'response_type'.");
  if (responseType !== 'code') {
    return back('unsupported_response_type', 700054, `response_type '${responseType}' is not enabled for the application.`);
  }
  const scope = params.get('scope');
  if (!scope) return back('invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
  const wanted = parseDelegatedScope(scope);
  if (!wanted || !isAcceptedAudience(wanted.resource, { requestOrigin, publicUrl: deps.config.publicUrl })) {
    return back('invalid_scope', 70011, `The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid.`);
  }
  const codeChallenge = params.get('code_challenge');
  if (!codeChallenge) return back('invalid_request', 9002325, 'Proof Key for Code Exchange is required for cross-origin authorization code redemption.');
  if (params.get('code_challenge_method') !== 'S256') {
    return back('invalid_request', 9002313, 'Invalid request. code_challenge_method must be S256.');
  }
  if (!isS256Challenge(codeChallenge)) return back('invalid_request', 501491, 'Invalid size of Code_Challenge parameter.');
  return {
    kind: 'ok',
    request: {
      tenantSegment,
      app,
      redirectUri,
      responseMode,
      state,
      scope,
      codeChallenge,
      wanted,
      loginHint: (params.get('login_hint') ?? '').slice(0, 256),
    },
  };
}

const STYLE =
  'body{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0}main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}' +
  'h1{font-size:1.4rem;margin:0 0 .5rem}label{display:block;margin:1rem 0 .25rem}input{width:100%;box-sizing:border-box;padding:.5rem}' +
  'button{margin-top:1.5rem;width:100%;padding:.6rem;background:#0f6cbd;color:#fff;border:0;border-radius:4px}.error{color:#b10e1c}';

function signInPage(r: AuthorizeRequest, error: string | null, username: string): string {
  const hidden: Record<string, string> = {
    client_id: r.app.clientId,
    response_type: 'code',
    redirect_uri: r.redirectUri,
    response_mode: r.responseMode,
    scope: r.scope,
    code_challenge: r.codeChallenge,
    code_challenge_method: 'S256',
    ...(r.state !== null ? { state: r.state } : {}),
  };
  const fields = Object.entries(hidden)
    .map(([k, v]) => `<input type="hidden" name="${html(k)}" value="${html(v)}">`)
    .join('');
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">' +
    `<title>Sign in - Tourniquet</title><style>${STYLE}</style></head><body><main>` +
    `<h1>Sign in</h1><p>to continue to <b>${html(r.app.name)}</b></p>` +
    (error ? `<p class="error" role="alert">${html(error)}</p>` : '') +
    `<form method="post" action="/${html(encodeURIComponent(r.tenantSegment))}/oauth2/v2.0/authorize">${fields}` +
    `<label for="username">User name (UPN)</label><input id="username" name="username" autocomplete="username" required value="${html(username)}">` +
    '<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>' +
    '<button type="submit">Sign in</button></form></main></body></html>'
  );
}

function errorPage(code: number, message: string): string {
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - Tourniquet</title>' +
    `<style>${STYLE}</style></head><body><main><h1>Sorry, but we're having trouble signing you in.</h1>` +
    `<p class="error" role="alert">AADSTS${code}: ${html(message)}</p></main></body></html>`
  );
}

/** What the sign-in page says for each sign-in failure (Entra's wording, with its code). */
function signInMessage(err: EntraError): string {
  switch (err.aadsts) {
    case 50053:
      return 'AADSTS50053: Your account is locked because of too many sign-in attempts with a wrong password. Try again later.';
    case 50057:
      return 'AADSTS50057: Your account is disabled. Contact your administrator.';
    default:
      return 'AADSTS50126: Your account or password is incorrect.';
  }
}

function sendHtml(deps: AuthorizeDeps, request: FastifyRequest, reply: FastifyReply, status: number, body: string): FastifyReply {
  const { traceId } = deps.requestIds(request);
  return reply
    .code(status)
    .header('x-ms-request-id', traceId)
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
    .type('text/html; charset=utf-8')
    .send(body);
}

function sendRedirect(deps: AuthorizeDeps, request: FastifyRequest, reply: FastifyReply, location: string): FastifyReply {
  const { traceId } = deps.requestIds(request);
  return reply
    .code(302)
    .header('x-ms-request-id', traceId)
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .header('referrer-policy', 'no-referrer')
    .header('location', location)
    .send();
}

export function registerAuthorizeRoutes(app: FastifyInstance, deps: AuthorizeDeps): void {
  const path = '/:tenant/oauth2/v2.0/authorize';

  app.get<{ Params: { tenant: string } }>(path, async (request, reply) => {
    const rawQuery = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
    const checked = await checkRequest(deps, request.params.tenant, FormParams.parse(rawQuery), requestOriginOf(request));
    if (checked.kind === 'page') return sendHtml(deps, request, reply, checked.status, errorPage(checked.code, checked.message));
    if (checked.kind === 'redirect') return sendRedirect(deps, request, reply, checked.location);
    return sendHtml(deps, request, reply, 200, signInPage(checked.request, null, checked.request.loginHint));
  });

  app.post<{ Params: { tenant: string } }>(path, async (request, reply) => {
    const params = request.body instanceof FormParams ? request.body : FormParams.empty();
    const checked = await checkRequest(deps, request.params.tenant, params, requestOriginOf(request));
    if (checked.kind === 'page') return sendHtml(deps, request, reply, checked.status, errorPage(checked.code, checked.message));
    if (checked.kind === 'redirect') return sendRedirect(deps, request, reply, checked.location);
    const r = checked.request;
    const username = params.get('username') ?? '';
    const password = params.get('password') ?? '';
    if (!username || !password) return sendHtml(deps, request, reply, 200, signInPage(r, 'Enter your user name and password.', username));

    const { correlationId } = deps.requestIds(request);
    const audit = (result: 'success' | 'failure', actorId: string, detail: Record<string, unknown>) =>
      deps.store.appendAudit({
        at: nowTimestamp(),
        actorType: 'user',
        actorId,
        actorName: username.slice(0, 256),
        action: 'user.signIn',
        target: r.app.clientId,
        result,
        status: result === 'success' ? 302 : 200,
        clientIp: request.ip ?? null,
        correlationId,
        detail: { flow: 'authorization_code', clientId: r.app.clientId, ...detail },
      });

    let user;
    try {
      user = await deps.users.check(username, password, { clientIp: request.ip ?? null, correlationId, clientId: r.app.clientId });
    } catch (err) {
      if (!(err instanceof EntraError)) throw err;
      await audit('failure', '(unknown)', { error: `AADSTS${err.aadsts}` });
      return sendHtml(deps, request, reply, 200, signInPage(r, signInMessage(err), username));
    }

    const code = randomBytes(32).toString('base64url');
    const createdAt = nowTimestamp();
    await deps.store.createAuthCode({
      codeHash: codeHash(code),
      clientId: r.app.clientId,
      redirectUri: r.redirectUri,
      codeChallenge: r.codeChallenge,
      userOid: user.oid,
      audience: r.wanted.resource,
      scopes: r.wanted.requested ?? [],
      createdAt,
      expiresAt: millisToTimestamp(Date.now() + AUTH_CODE_LIFETIME_SEC * 1000),
      usedAt: null,
    });
    await audit('success', user.oid, { audience: r.wanted.resource });
    return sendRedirect(
      deps,
      request,
      reply,
      redirectTo(r.redirectUri, r.responseMode, { code, ...(r.state !== null ? { state: r.state } : {}) }),
    );
  });
}
