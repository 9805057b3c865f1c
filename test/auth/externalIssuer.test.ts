import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, SignJWT, type JWK, type JWTPayload } from 'jose';
import { createTokenVerifier } from '../../src/server/auth/verifyToken.ts';
import { DEFAULT_CONFIG } from '../../src/server/config.ts';
import { startAuthServer, whoami, type AuthServer } from './harness.ts';

// Stand-ins for a real Entra tenant: its own tenant id, issuer and signing keys, published as a JWKS file and URL.
const entraTenant = randomUUID();
const entraV1Issuer = `https://sts.windows.net/${entraTenant}/`;
const entraV2Issuer = `https://login.microsoftonline.com/${entraTenant}/v2.0`;

interface EntraKey {
  privateKey: KeyObject;
  jwk: JWK;
}

async function entraKey(): Promise<EntraKey> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pub = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(pub, 'sha256');
  return { privateKey, jwk: { kty: 'RSA', use: 'sig', kid, n: pub.n, e: pub.e } };
}

let tmp: string;
let jwksFile: string;
let key1: EntraKey;
let key2: EntraKey;
let jwksServer: Server;
let jwksUrl: string;
let server: AuthServer;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'tourniquet-ext-'));
  jwksFile = join(tmp, 'entra-keys.json');
  key1 = await entraKey();
  key2 = await entraKey();
  writeFileSync(jwksFile, JSON.stringify({ keys: [key1.jwk] }));
  jwksServer = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [key2.jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const addr = jwksServer.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  jwksUrl = `http://127.0.0.1:${addr.port}/${entraTenant}/discovery/v2.0/keys`;
  server = await startAuthServer({
    config: {
      externalIssuers: [
        { issuer: entraV1Issuer, tenantId: entraTenant, jwksFile },
        { issuer: entraV2Issuer, tenantId: entraTenant, jwksUrl },
      ],
    },
  });
});

after(async () => {
  await server.close();
  await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
  rmSync(tmp, { recursive: true, force: true });
});

const nowSec = () => Math.floor(Date.now() / 1000);

/** What a real Entra app registration receives for WindowsDefenderATP (v1 client credentials). */
function entraAppClaims(overrides: JWTPayload = {}): JWTPayload {
  const now = nowSec();
  return {
    aud: 'https://api.securitycenter.microsoft.com',
    iss: entraV1Issuer,
    iat: now,
    nbf: now,
    exp: now + 3599,
    aio: 'E2RgYJg…',
    appid: '2f6a6c1e-0000-4000-8000-00000000beef',
    appidacr: '1',
    idp: entraV1Issuer,
    oid: '7d4b6b43-0000-4000-8000-00000000cafe',
    rh: '0.AAAA…',
    roles: ['Machine.StopAndQuarantine', 'Machine.Read.All'],
    sub: '7d4b6b43-0000-4000-8000-00000000cafe',
    tid: entraTenant,
    uti: 'abc',
    ver: '1.0',
    ...overrides,
  };
}

async function sign(payload: JWTPayload, key: EntraKey, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.jwk.kid!, ...header }).sign(key.privateKey);
}

describe('external issuer trust (real Entra tokens for WindowsDefenderATP)', () => {
  it('accepts a v1 app token (keys from a JWKS file)', async () => {
    const res = await whoami(server, `Bearer ${await sign(entraAppClaims(), key1)}`);
    assert.equal(res.status, 200);
    const p = (await res.json()) as Record<string, unknown>;
    assert.equal(p.kind, 'app');
    assert.equal(p.appId, '2f6a6c1e-0000-4000-8000-00000000beef');
    assert.equal(p.tenantId, entraTenant);
    assert.deepEqual(p.roles, ['Machine.StopAndQuarantine', 'Machine.Read.All']);
    assert.equal(p.issuer, entraV1Issuer);
    assert.equal(p.name, '2f6a6c1e-0000-4000-8000-00000000beef', 'without app_displayname the app id names it');
  });

  it('accepts a v2 app token whose aud is the WindowsDefenderATP app id (keys from a JWKS URL)', async () => {
    const token = await sign(
      entraAppClaims({ iss: entraV2Issuer, aud: 'fc780465-2017-40d4-a0c5-307022471b92', appid: undefined, appidacr: undefined, azp: 'a-v2-app', azpacr: '1', ver: '2.0' }),
      key2,
    );
    const res = await whoami(server, `Bearer ${token}`);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(((await res.json()) as { appId: string }).appId, 'a-v2-app');
  });

  it('accepts a delegated user token: scp, upn, name, groups', async () => {
    const token = await sign(
      entraAppClaims({
        scp: 'Machine.Read Machine.StopAndQuarantine',
        upn: 'analyst@contoso.com',
        unique_name: 'analyst@contoso.com',
        name: 'Ana Lyst',
        groups: ['g-responders', 42],
        roles: undefined,
      }),
      key1,
    );
    const res = await whoami(server, `Bearer ${token}`);
    assert.equal(res.status, 200);
    const p = (await res.json()) as Record<string, unknown>;
    assert.equal(p.kind, 'user');
    assert.deepEqual(p.scopes, ['Machine.Read', 'Machine.StopAndQuarantine']);
    assert.equal(p.upn, 'analyst@contoso.com');
    assert.equal(p.name, 'Ana Lyst');
    assert.deepEqual(p.groups, ['g-responders']);
    assert.deepEqual(p.roles, []);
  });

  it('takes the user name from preferred_username when upn is absent', async () => {
    const token = await sign(entraAppClaims({ scp: 'Machine.Read', preferred_username: 'pat@contoso.com', roles: undefined }), key1);
    const p = (await (await whoami(server, `Bearer ${token}`)).json()) as Record<string, unknown>;
    assert.equal(p.upn, 'pat@contoso.com');
  });

  it('refuses its tokens for other audiences, including ones naming this server by Host', async () => {
    for (const aud of ['https://graph.microsoft.com', server.base, `api://${randomUUID()}`]) {
      assert.equal((await whoami(server, `Bearer ${await sign(entraAppClaims({ aud }), key1)}`)).status, 401, aud);
    }
  });

  it('refuses a different tenant, a key from the other source, a foreign key, and expiry', async () => {
    assert.equal((await whoami(server, `Bearer ${await sign(entraAppClaims({ tid: randomUUID() }), key1)}`)).status, 401);
    // key2 is only published for the v2 issuer.
    assert.equal((await whoami(server, `Bearer ${await sign(entraAppClaims(), key2)}`)).status, 401);
    const stranger = await entraKey();
    assert.equal((await whoami(server, `Bearer ${await sign(entraAppClaims(), stranger, { kid: key1.jwk.kid })}`)).status, 401);
    const now = nowSec();
    assert.equal((await whoami(server, `Bearer ${await sign(entraAppClaims({ iat: now - 9000, nbf: now - 9000, exp: now - 3600 }), key1)}`)).status, 401);
  });

  it('refuses alg none / HS256 for external issuers too', async () => {
    const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    assert.equal((await whoami(server, `Bearer ${b64u({ alg: 'none' })}.${b64u(entraAppClaims())}.`)).status, 401);
    const hs = await new SignJWT(entraAppClaims()).setProtectedHeader({ alg: 'HS256', kid: key1.jwk.kid! }).sign(new TextEncoder().encode(JSON.stringify(key1.jwk)));
    assert.equal((await whoami(server, `Bearer ${hs}`)).status, 401);
  });

  it('picks up a rotated JWKS file', async () => {
    const key3 = await entraKey();
    const token = await sign(entraAppClaims(), key3);
    assert.equal((await whoami(server, `Bearer ${token}`)).status, 401);
    await new Promise((r) => setTimeout(r, 20)); // a distinct mtime
    writeFileSync(jwksFile, JSON.stringify({ keys: [key1.jwk, key3.jwk] }));
    assert.equal((await whoami(server, `Bearer ${token}`)).status, 200);
  });
});

describe('external issuer configuration', () => {
  const base = { store: null as never, keys: null as never, tenant: { id: randomUUID(), name: 't', createdAt: '' } };

  it('refuses JWKS over plain http except on loopback', () => {
    assert.throws(() =>
      createTokenVerifier({ ...base, config: { ...DEFAULT_CONFIG, externalIssuers: [{ issuer: 'https://x/', tenantId: 'x', jwksUrl: 'http://keys.example.com/jwks' }] } }),
    );
  });

  it('needs a key source', () => {
    assert.throws(() => createTokenVerifier({ ...base, config: { ...DEFAULT_CONFIG, externalIssuers: [{ issuer: 'https://x/', tenantId: 'x' }] } }));
  });

  it('cannot impersonate the local issuer', () => {
    const tenantId = base.tenant.id;
    assert.throws(() =>
      createTokenVerifier({ ...base, config: { ...DEFAULT_CONFIG, externalIssuers: [{ issuer: `https://sts.windows.net/${tenantId}/`, tenantId, jwksFile: '/dev/null' }] } }),
    );
  });
});
