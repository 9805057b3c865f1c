import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { getToken, startAuthServer, type AuthServer } from './harness.ts';

let server: AuthServer;

before(async () => {
  server = await startAuthServer();
});
after(async () => server.close());

interface Jwks {
  keys: Array<Record<string, unknown>>;
}

describe('JWKS', () => {
  for (const path of ['/{tid}/discovery/v2.0/keys', '/{tid}/discovery/keys', '/common/discovery/keys', '/common/discovery/v2.0/keys']) {
    it(`GET ${path} lists the public signing keys only`, async () => {
      const res = await fetch(`${server.base}${path.replace('{tid}', server.tenant.id)}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
      const jwks = (await res.json()) as Jwks;
      assert.equal(jwks.keys.length, 1);
      const key = jwks.keys[0]!;
      assert.deepEqual(Object.keys(key).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use']);
      assert.equal(key.kty, 'RSA');
      assert.equal(key.use, 'sig');
      assert.equal(key.alg, 'RS256');
      assert.equal(key.kid, server.keys.currentKid);
      assert.equal(key.e, 'AQAB');
      const pub = createPublicKey({ key: key as never, format: 'jwk' });
      assert.equal(pub.asymmetricKeyDetails?.modulusLength, 2048);
    });
  }

  it('a token verifies against the published JWKS with standard tooling', async () => {
    const creds = await server.createApp();
    const token = await getToken(server, creds);
    const jwks = (await (await fetch(`${server.base}/${server.tenant.id}/discovery/v2.0/keys`)).json()) as Parameters<typeof createLocalJWKSet>[0];
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: `https://sts.windows.net/${server.tenant.id}/`, algorithms: ['RS256'] });
    assert.equal(payload.appid, creds.clientId);
  });

  it('unknown tenant → Entra-style 400', async () => {
    const res = await fetch(`${server.base}/00000000-0000-0000-0000-000000000000/discovery/v2.0/keys`);
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: string; error_codes: number[] };
    assert.equal(body.error, 'invalid_request');
    assert.deepEqual(body.error_codes, [90002]);
  });
});

describe('OpenID configuration', () => {
  it('v2 metadata points at this server and names the v2 issuer', async () => {
    const tid = server.tenant.id;
    const res = await fetch(`${server.base}/${tid}/v2.0/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const m = (await res.json()) as Record<string, unknown>;
    assert.equal(m.issuer, `https://login.microsoftonline.com/${tid}/v2.0`);
    assert.equal(m.token_endpoint, `${server.base}/${tid}/oauth2/v2.0/token`);
    assert.equal(m.jwks_uri, `${server.base}/${tid}/discovery/v2.0/keys`);
    assert.equal(m.authorization_endpoint, `${server.base}/${tid}/oauth2/v2.0/authorize`);
    assert.deepEqual(m.id_token_signing_alg_values_supported, ['RS256']);
    assert.deepEqual(m.token_endpoint_auth_methods_supported, ['client_secret_post', 'client_secret_basic']);
    assert.ok(Array.isArray(m.response_types_supported));
    assert.ok(Array.isArray(m.subject_types_supported));
    assert.equal(typeof m.tenant_region_scope, 'string');
    // The JWKS it names is live.
    assert.equal((await fetch(String(m.jwks_uri))).status, 200);
  });

  it('v1 metadata names the v1 issuer and endpoints', async () => {
    const tid = server.tenant.id;
    const m = (await (await fetch(`${server.base}/${tid}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(m.issuer, `https://sts.windows.net/${tid}/`);
    assert.equal(m.token_endpoint, `${server.base}/${tid}/oauth2/token`);
    assert.equal(m.jwks_uri, `${server.base}/${tid}/discovery/keys`);
  });

  it('builds URLs from the Host the client used', async () => {
    const tid = server.tenant.id;
    const m = (await (await fetch(`http://localhost:${server.port}/${tid}/v2.0/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(m.token_endpoint, `http://localhost:${server.port}/${tid}/oauth2/v2.0/token`);
  });

  it('unknown tenant → Entra-style 400', async () => {
    for (const path of ['/nope/v2.0/.well-known/openid-configuration', '/common/.well-known/openid-configuration']) {
      const res = await fetch(`${server.base}${path}`);
      assert.equal(res.status, 400);
      assert.deepEqual(((await res.json()) as { error_codes: number[] }).error_codes, [90002]);
    }
  });
});

describe('OpenID configuration with a public URL', () => {
  it('uses config.publicUrl instead of the request origin', async () => {
    const s = await startAuthServer({ config: { publicUrl: 'https://tourniquet.example.org/' } });
    try {
      const tid = s.tenant.id;
      const m = (await (await fetch(`${s.base}/${tid}/v2.0/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      assert.equal(m.token_endpoint, `https://tourniquet.example.org/${tid}/oauth2/v2.0/token`);
      assert.equal(m.jwks_uri, `https://tourniquet.example.org/${tid}/discovery/v2.0/keys`);
    } finally {
      await s.close();
    }
  });
});
