// Authorization code with PKCE (S256), end to end: the authorize form, the redirect with a code, the v2 token
// endpoint redeeming it once — and every way a code or its request can be wrong.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { codeHash } from '../../src/server/auth/authorizationCodeGrant.ts';
import { millisToTimestamp } from '../../src/core/time.ts';
import { nowTimestamp } from '../../src/server/clock.ts';
import { call } from '../helpers/testServer.ts';
import { decodeJwt, entraError, PASSWORD, pkcePair, postForm, startRbacServer, type RbacServer } from './helpers.ts';

const SCOPE = 'https://api.securitycenter.microsoft.com/.default openid offline_access';

let s: RbacServer;
let user: { oid: string; upn: string };

before(async () => {
  s = await startRbacServer({ userLockout: { maxFailures: 3, lockSeconds: 60 } });
  user = await s.user('carol@contoso.com', ['Security reader']);
});
after(() => s.close());

const authorizeUrl = () => `${s.url}/${s.tenantId}/oauth2/v2.0/authorize`;

function authorizeParams(challenge: string, over: Record<string, string> = {}): Record<string, string> {
  return {
    client_id: s.publicClientId,
    response_type: 'code',
    redirect_uri: s.redirectUri,
    scope: SCOPE,
    state: 'st<"&>ate',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...over,
  };
}

/** Signs in through the form; returns the redirect Location. */
async function signIn(challenge: string, over: Record<string, string> = {}, password = PASSWORD, upn = user.upn): Promise<Response> {
  return postForm(authorizeUrl(), { ...authorizeParams(challenge, over), username: upn, password });
}

async function codeFor(challenge: string, over: Record<string, string> = {}): Promise<string> {
  const res = await signIn(challenge, over);
  assert.equal(res.status, 302, await res.text());
  const location = new URL(res.headers.get('location')!);
  assert.equal(location.searchParams.get('state'), 'st<"&>ate');
  return location.searchParams.get('code')!;
}

function redeem(code: string, verifier: string, over: Record<string, string> = {}): Promise<Response> {
  return postForm(s.tokenEndpoint('2.0'), {
    grant_type: 'authorization_code',
    client_id: s.publicClientId,
    code,
    redirect_uri: s.redirectUri,
    code_verifier: verifier,
    scope: SCOPE,
    ...over,
  });
}

describe('authorize: the sign-in form', () => {
  it('GET shows a form that carries the request, escaped, with anti-framing and no-store headers', async () => {
    const { challenge } = pkcePair();
    const res = await fetch(`${authorizeUrl()}?${new URLSearchParams({ ...authorizeParams(challenge), login_hint: '"><script>x</script>' })}`);
    const html = await res.text();
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/html; charset=utf-8/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.match(res.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
    assert.ok(html.includes('Tourniquet console'));
    assert.ok(html.includes(`value="${challenge}"`));
    assert.ok(html.includes('value="st&#60;&#34;&#38;&#62;ate"'), 'state escaped');
    assert.ok(!html.includes('<script>x</script>'), 'login_hint escaped');
    assert.ok(html.includes('type="password"'));
  });

  it('an unknown client, an unregistered or missing redirect URI, or another tenant: shown on the page, never redirected', async () => {
    const { challenge } = pkcePair();
    for (const [over, code, path] of [
      [{ client_id: randomUUID() }, 700016, null],
      [{ redirect_uri: 'https://evil.example/cb' }, 50011, null],
      [{ redirect_uri: '' }, 900144, null],
      [{}, 90002, `/${randomUUID()}/oauth2/v2.0/authorize`],
    ] as const) {
      const url = `${path ? `${s.url}${path}` : authorizeUrl()}?${new URLSearchParams(authorizeParams(challenge, over))}`;
      const res = await fetch(url, { redirect: 'manual' });
      const html = await res.text();
      assert.equal(res.status, 400, url);
      assert.equal(res.headers.get('location'), null);
      assert.ok(html.includes(`AADSTS${code}`), `${code}: ${html}`);
    }
  });

  it('other request errors go back to the redirect URI with error, description and state', async () => {
    const { challenge } = pkcePair();
    for (const [over, error, code] of [
      [{ code_challenge: '' }, 'invalid_request', 9002325],
      [{ code_challenge_method: 'plain' }, 'invalid_request', 9002313],
      [{ code_challenge_method: '' }, 'invalid_request', 9002313],
      [{ code_challenge: 'too-short' }, 'invalid_request', 501491],
      [{ response_type: 'token' }, 'unsupported_response_type', 700054],
      [{ response_type: '' }, 'invalid_request', 900144],
      [{ scope: 'https://graph.microsoft.com/.default' }, 'invalid_scope', 70011],
      [{ scope: '' }, 'invalid_request', 900144],
      [{ response_mode: 'form_post' }, 'invalid_request', 9002313],
    ] as const) {
      const res = await fetch(`${authorizeUrl()}?${new URLSearchParams(authorizeParams(challenge, over))}`, { redirect: 'manual' });
      assert.equal(res.status, 302, JSON.stringify(over));
      const location = new URL(res.headers.get('location')!);
      assert.equal(`${location.origin}${location.pathname}`, s.redirectUri);
      assert.equal(location.searchParams.get('error'), error, JSON.stringify(over));
      assert.match(location.searchParams.get('error_description')!, new RegExp(`^AADSTS${code}: `));
      assert.equal(location.searchParams.get('state'), 'st<"&>ate');
      assert.equal(location.searchParams.get('code'), null);
    }
  });

  it('a wrong password shows the form again with AADSTS50126 and issues no code; repeated failures lock', async () => {
    const { challenge } = pkcePair();
    const u = await s.user('formlock@contoso.com', ['Security reader']);
    for (let i = 0; i < 2; i++) {
      const res = await signIn(challenge, {}, 'wrong-password', u.upn);
      assert.equal(res.status, 200);
      assert.ok((await res.text()).includes('AADSTS50126'));
    }
    const locked = await signIn(challenge, {}, 'wrong-password', u.upn);
    assert.ok((await locked.text()).includes('AADSTS50053'));
    const evenRight = await signIn(challenge, {}, PASSWORD, u.upn);
    assert.equal(evenRight.status, 200);
    assert.ok((await evenRight.text()).includes('AADSTS50053'));
    const audit = await s.store.listAudit({ top: 1000, skip: 0, action: 'user.signIn' });
    assert.ok(audit.some((a) => a.result === 'failure' && (a.detail as { error: string }).error === 'AADSTS50126'));
  });

  it('hidden fields are not trusted: a POST with a foreign redirect URI is refused on the page', async () => {
    const { challenge } = pkcePair();
    const res = await signIn(challenge, { redirect_uri: 'https://evil.example/cb' });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
  });
});

describe('authorization code + PKCE: end to end', () => {
  it('signs in, redeems the code once for a delegated token that works on /api', async () => {
    const { verifier, challenge } = pkcePair();
    const code = await codeFor(challenge);
    const res = await redeem(code, verifier);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const body = JSON.parse(text);
    const claims = decodeJwt(body.access_token);
    assert.equal(claims.oid, user.oid);
    assert.equal(claims.upn, user.upn);
    assert.equal(claims.azp, s.publicClientId);
    assert.equal(claims.aud, 'https://api.securitycenter.microsoft.com');
    assert.equal(claims.scp, 'Machine.Read Alert.Read');
    assert.equal((await call(`${s.url}/api/machines`, { token: body.access_token })).status, 200);
    const audit = await s.store.listAudit({ top: 1000, skip: 0, action: 'user.signIn' });
    assert.ok(audit.some((a) => a.result === 'success' && a.actorId === user.oid));
  });

  it('accepts the /organizations/ and /common/ aliases for the delegated flow, not for application tokens', async () => {
    const { verifier, challenge } = pkcePair();
    const res = await postForm(`${s.url}/organizations/oauth2/v2.0/authorize`, {
      ...authorizeParams(challenge),
      username: user.upn,
      password: PASSWORD,
    });
    assert.equal(res.status, 302, await res.text());
    const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
    const token = await postForm(`${s.url}/organizations/oauth2/v2.0/token`, {
      grant_type: 'authorization_code',
      client_id: s.publicClientId,
      code,
      redirect_uri: s.redirectUri,
      code_verifier: verifier,
      scope: SCOPE,
    });
    const body = JSON.parse(await token.text());
    assert.equal(token.status, 200, JSON.stringify(body));
    assert.equal(decodeJwt(body.access_token).tid, s.tenantId);
    const app = await postForm(`${s.url}/common/oauth2/v2.0/token`, {
      grant_type: 'client_credentials',
      client_id: s.publicClientId,
      client_secret: 'x',
      scope: 'https://api.securitycenter.microsoft.com/.default',
    });
    assert.equal(app.status, 400);
    assert.match(JSON.parse(await app.text()).error_description, /AADSTS90002/);
  });

  it('a reused code → AADSTS54005', async () => {
    const { verifier, challenge } = pkcePair();
    const code = await codeFor(challenge);
    assert.equal((await redeem(code, verifier)).status, 200);
    await entraError(await redeem(code, verifier), 400, 'invalid_grant', 54005);
  });

  it('a wrong verifier → AADSTS50148, and the code is spent', async () => {
    const { verifier, challenge } = pkcePair();
    const code = await codeFor(challenge);
    await entraError(await redeem(code, pkcePair().verifier), 400, 'invalid_grant', 50148);
    await entraError(await redeem(code, verifier), 400, 'invalid_grant', 54005);
  });

  it('a wrong redirect_uri → AADSTS500112', async () => {
    const { verifier, challenge } = pkcePair();
    const code = await codeFor(challenge);
    await entraError(await redeem(code, verifier, { redirect_uri: 'https://console.example.org/cb' }), 400, 'invalid_grant', 500112);
  });

  it('another client cannot redeem the code (AADSTS70000); unknown codes likewise', async () => {
    const other = await s.admin.createPublicClient({ name: 'Other', redirectUris: [s.redirectUri] });
    const { verifier, challenge } = pkcePair();
    const code = await codeFor(challenge);
    await entraError(await redeem(code, verifier, { client_id: other.clientId }), 400, 'invalid_grant', 70000);
    await entraError(await redeem(randomBytes(32).toString('base64url'), verifier), 400, 'invalid_grant', 70000);
    await entraError(await redeem('x'.repeat(4000), verifier), 400, 'invalid_grant', 70000);
  });

  it('an expired code → AADSTS70008', async () => {
    const { verifier, challenge } = pkcePair();
    const code = randomBytes(32).toString('base64url');
    await s.store.createAuthCode({
      codeHash: codeHash(code),
      clientId: s.publicClientId,
      redirectUri: s.redirectUri,
      codeChallenge: challenge,
      userOid: user.oid,
      audience: 'https://api.securitycenter.microsoft.com',
      scopes: [],
      createdAt: nowTimestamp(),
      expiresAt: millisToTimestamp(Date.now() - 1000),
      usedAt: null,
    });
    await entraError(await redeem(code, verifier), 400, 'invalid_grant', 70008);
  });

  it('missing or malformed parameters; not on the v1 endpoint', async () => {
    const { verifier, challenge } = pkcePair();
    const code = await codeFor(challenge);
    for (const name of ['code', 'redirect_uri', 'code_verifier']) {
      const body = await entraError(await redeem(code, verifier, { [name]: '' }), 400, 'invalid_request', 900144);
      assert.match(body.error_description, new RegExp(`'${name}'`));
    }
    await entraError(await redeem(code, 'short'), 400, 'invalid_request', 9002313);
    await entraError(await redeem(code, verifier, { client_secret: 'x' }), 401, 'invalid_client', 700025);
    await entraError(
      await postForm(s.tokenEndpoint('1.0'), { grant_type: 'authorization_code', client_id: s.publicClientId, code, redirect_uri: s.redirectUri, code_verifier: verifier }),
      400,
      'unsupported_grant_type',
      70003,
    );
    // None of that spent the code.
    assert.equal((await redeem(code, verifier)).status, 200);
  });

  it('response_mode=fragment puts the code in the fragment', async () => {
    const { verifier, challenge } = pkcePair();
    const res = await signIn(challenge, { response_mode: 'fragment' });
    assert.equal(res.status, 302);
    const location = new URL(res.headers.get('location')!);
    assert.equal(location.search, '');
    const fragment = new URLSearchParams(location.hash.slice(1));
    assert.equal((await redeem(fragment.get('code')!, verifier)).status, 200);
  });

  it('a user disabled between sign-in and redemption gets no token', async () => {
    const u = await s.user('late@contoso.com', ['Security reader']);
    const { verifier, challenge } = pkcePair();
    const res = await signIn(challenge, {}, PASSWORD, u.upn);
    const lateCode = new URL(res.headers.get('location')!).searchParams.get('code')!;
    await s.admin.updateUser(u.oid, { enabled: false });
    await entraError(await redeem(lateCode, verifier), 400, 'invalid_grant', 50057);
  });
});

describe('discovery', () => {
  it('v2 metadata lists the delegated grants, S256 and the authorize endpoint', async () => {
    const m = (await (await fetch(`${s.url}/${s.tenantId}/v2.0/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.deepEqual(m.grant_types_supported, ['client_credentials', 'password', 'authorization_code']);
    assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
    assert.equal(m.authorization_endpoint, `${s.url}/${s.tenantId}/oauth2/v2.0/authorize`);
    const v1 = (await (await fetch(`${s.url}/${s.tenantId}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.deepEqual(v1.grant_types_supported, ['client_credentials', 'password']);
  });
});
