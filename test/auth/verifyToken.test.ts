import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SignJWT, type JWTPayload } from 'jose';
import { MdeError } from '../../src/core/errors.ts';
import { appTokenClaims } from '../../src/server/auth/claims.ts';
import { createTokenVerifier } from '../../src/server/auth/verifyToken.ts';
import type { AppRecord } from '../../src/store/store.ts';
import { decodeParts, getToken, startAuthServer, whoami, type AuthServer } from './harness.ts';

let server: AuthServer;
let creds: { clientId: string; secret: string };
let app: AppRecord;
let privateKey: KeyObject;

const b64u = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const nowSec = () => Math.floor(Date.now() / 1000);

before(async () => {
  server = await startAuthServer();
  creds = await server.createApp({ name: 'Attack target' });
  app = (await server.store.getApp(creds.clientId))!;
  const record = (await server.store.listSigningKeys()).find((k) => k.kid === server.keys.currentKid)!;
  privateKey = createPrivateKey(record.privatePem);
});
after(async () => server.close());

function claims(overrides: JWTPayload = {}): JWTPayload {
  return { ...appTokenClaims('1.0', server.tenant.id, app, 'https://api.securitycenter.microsoft.com'), ...overrides };
}

/** Signs arbitrary claims with our real key (as an insider would), to test the checks other than the signature. */
async function signed(overrides: JWTPayload = {}, header: Record<string, unknown> = {}, key: KeyObject = privateKey): Promise<string> {
  const now = nowSec();
  return new SignJWT({ iat: now, nbf: now, exp: now + 3599, ...claims(overrides) })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: server.keys.currentKid, ...header })
    .sign(key);
}

async function expect401(authorization: string | undefined, why: string): Promise<void> {
  const res = await whoami(server, authorization);
  const text = await res.text();
  assert.equal(res.status, 401, `${why}: ${text}`);
  const body = JSON.parse(text) as { error: { code: string } };
  assert.equal(body.error.code, 'Unauthorized', why);
  const challenge = res.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /^Bearer /, why);
}

describe('the Authorization header', () => {
  it('missing, empty or another scheme → 401 with a Bearer challenge', async () => {
    await expect401(undefined, 'missing');
    await expect401('', 'empty');
    await expect401('Bearer', 'Bearer without token');
    await expect401('Bearer ', 'Bearer and space');
    await expect401(`Basic ${Buffer.from(`${creds.clientId}:${creds.secret}`).toString('base64')}`, 'Basic');
    await expect401(`Token ${await getToken(server, creds)}`, 'other scheme');
    await expect401(`Bearer ${await getToken(server, creds)} extra`, 'trailing junk');
  });

  it('accepts the scheme case-insensitively', async () => {
    const token = await getToken(server, creds);
    assert.equal((await whoami(server, `bearer ${token}`)).status, 200);
    assert.equal((await whoami(server, `BEARER ${token}`)).status, 200);
  });

  it('the challenge carries invalid_token once a token was presented', async () => {
    const res = await whoami(server, 'Bearer abc.def.ghi');
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    const missing = await whoami(server, undefined);
    assert.doesNotMatch(missing.headers.get('www-authenticate') ?? '', /error=/);
  });
});

describe('token attacks', () => {
  it('garbage, truncated and structurally broken tokens', async () => {
    const token = await getToken(server, creds);
    const [h, p, s] = token.split('.') as [string, string, string];
    for (const [bad, why] of [
      ['abc', 'garbage'],
      ['a.b.c', 'three garbage parts'],
      ['...', 'empty parts'],
      [`${h}.${p}`, 'no signature part'],
      [`${h}.${p}.`, 'empty signature'],
      [token.slice(0, -10), 'truncated signature'],
      [token.slice(0, token.length / 2), 'truncated in the middle'],
      [`${h}.${p}.${s}.${s}`, 'four parts'],
      [`${h}.${b64u('not json')}.${s}`, 'payload not JSON'],
      [`${b64u('[]')}.${p}.${s}`, 'header not an object'],
      [`${h}.${p}.${s}!!`, 'signature not base64url'],
    ] as const) {
      await expect401(`Bearer ${bad}`, why);
    }
  });

  it('alg none', async () => {
    const payload = { iat: nowSec(), nbf: nowSec(), exp: nowSec() + 3599, ...claims() };
    for (const alg of ['none', 'None', 'NONE']) {
      await expect401(`Bearer ${b64u({ alg, typ: 'JWT' })}.${b64u(payload)}.`, `alg ${alg}`);
      await expect401(`Bearer ${b64u({ alg, typ: 'JWT', kid: server.keys.currentKid })}.${b64u(payload)}.`, `alg ${alg} with kid`);
    }
  });

  it('HS256 signed with the public key as the HMAC secret', async () => {
    const payload = { iat: nowSec(), nbf: nowSec(), exp: nowSec() + 3599, ...claims() };
    const jwk = server.keys.jwks().keys[0]!;
    const publicKey = createPublicKey({ key: jwk as never, format: 'jwk' });
    const secrets = [
      publicKey.export({ format: 'pem', type: 'spki' }).toString(),
      publicKey.export({ format: 'pem', type: 'pkcs1' }).toString(),
      publicKey.export({ format: 'der', type: 'spki' }),
      JSON.stringify(jwk),
      jwk.n,
    ];
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      for (const secret of secrets) {
        const input = `${b64u({ alg, typ: 'JWT', kid: server.keys.currentKid })}.${b64u(payload)}`;
        const sig = createHmac(`sha${alg.slice(2)}`, secret).update(input).digest('base64url');
        await expect401(`Bearer ${input}.${sig}`, `${alg} with public key`);
      }
    }
  });

  it('other asymmetric algorithms, even with our own key or kid (PS256, RS512, ES256)', async () => {
    const now = nowSec();
    const payload = { iat: now, nbf: now, exp: now + 3599, ...claims() };
    for (const alg of ['PS256', 'RS512', 'RS384']) {
      const t = await new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT', kid: server.keys.currentKid }).sign(privateKey);
      await expect401(`Bearer ${t}`, alg);
    }
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const es = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: server.keys.currentKid }).sign(ec.privateKey);
    await expect401(`Bearer ${es}`, 'ES256');
  });

  it('a real-looking token signed by someone else’s RSA key under our kid', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await expect401(`Bearer ${await signed({}, {}, other.privateKey)}`, 'foreign key');
  });

  it('tampered payload (roles escalated, signature kept), also while the genuine token is cached', async () => {
    const token = await getToken(server, creds);
    // Verified once, so cached: verdicts are cached under the signature's tail, which the tampered tokens share.
    assert.equal((await whoami(server, `Bearer ${token}`)).status, 200);
    const [h, , s] = token.split('.') as [string, string, string];
    const { payload } = decodeParts(token);
    const tampered = { ...payload, roles: ['Machine.ReadWrite.All', 'Machine.Offboard'] };
    await expect401(`Bearer ${h}.${b64u(tampered)}.${s}`, 'tampered roles');
    const otherTenant = { ...payload, tid: randomUUID() };
    await expect401(`Bearer ${h}.${b64u(otherTenant)}.${s}`, 'tampered tid');
    // Header tampering (kid swap) also breaks it.
    await expect401(`Bearer ${b64u({ alg: 'RS256', typ: 'JWT', kid: 'other' })}.${token.split('.')[1]}.${s}`, 'tampered header');
    assert.equal((await whoami(server, `Bearer ${token}`)).status, 200, 'the genuine token still works');
  });

  it('expired, and nbf / iat in the future, beyond the 5-minute skew', async () => {
    const now = nowSec();
    await expect401(`Bearer ${await signed({ iat: now - 7200, nbf: now - 7200, exp: now - 3601 })}`, 'expired an hour ago');
    await expect401(`Bearer ${await signed({ iat: now - 7200, nbf: now - 7200, exp: now - 301 })}`, 'expired just beyond skew');
    await expect401(`Bearer ${await signed({ nbf: now + 900 })}`, 'nbf in future');
    await expect401(`Bearer ${await signed({ iat: now + 900, nbf: now })}`, 'iat in future');
    // Within the skew it is still fine: clocks differ.
    assert.equal((await whoami(server, `Bearer ${await signed({ iat: now - 3700, nbf: now - 3700, exp: now - 60 })}`)).status, 200);
    assert.equal((await whoami(server, `Bearer ${await signed({ nbf: now + 60, iat: now + 60 })}`)).status, 200);
  });

  it('missing required claims', async () => {
    for (const drop of ['exp', 'iat', 'tid', 'aud', 'iss']) {
      const c = { iat: nowSec(), nbf: nowSec(), exp: nowSec() + 3599, ...claims() } as Record<string, unknown>;
      delete c[drop];
      const t = await new SignJWT(c).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: server.keys.currentKid }).sign(privateKey);
      await expect401(`Bearer ${t}`, `no ${drop}`);
    }
  });

  it('wrong audience', async () => {
    for (const aud of ['https://graph.microsoft.com', 'http://127.0.0.1:1', 'https://api.securitycenter.microsoft.com.evil.example', '', 42, ['https://graph.microsoft.com']]) {
      await expect401(`Bearer ${await signed({ aud: aud as string })}`, `aud ${JSON.stringify(aud)}`);
    }
    // An array holding an accepted audience is fine.
    assert.equal((await whoami(server, `Bearer ${await signed({ aud: ['https://graph.microsoft.com', 'https://api.securitycenter.microsoft.com'] })}`)).status, 200);
  });

  it('wrong tenant or issuer', async () => {
    const other = randomUUID();
    await expect401(`Bearer ${await signed({ tid: other })}`, 'tid of another tenant');
    await expect401(`Bearer ${await signed({ iss: `https://sts.windows.net/${other}/`, tid: other })}`, 'issuer of another tenant');
    await expect401(`Bearer ${await signed({ iss: `https://sts.windows.net/${server.tenant.id}` })}`, 'issuer without trailing slash');
    await expect401(`Bearer ${await signed({ iss: 'https://evil.example/' })}`, 'foreign issuer');
    // The v2 form of our issuer is ours too.
    assert.equal((await whoami(server, `Bearer ${await signed({ iss: `https://login.microsoftonline.com/${server.tenant.id}/v2.0` })}`)).status, 200);
  });

  it('unknown or missing kid', async () => {
    await expect401(`Bearer ${await signed({}, { kid: 'no-such-kid' })}`, 'unknown kid');
    await expect401(`Bearer ${await signed({}, { kid: '' })}`, 'empty kid');
    const now = nowSec();
    const noKid = await new SignJWT({ iat: now, nbf: now, exp: now + 3599, ...claims() }).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(privateKey);
    await expect401(`Bearer ${noKid}`, 'no kid');
  });

  it('tokens over 16 KiB, even validly signed', async () => {
    // Node's HTTP parser already refuses such headers (431); the verifier refuses them on its own too.
    const big = await signed({ pad: 'x'.repeat(17 * 1024) });
    await assert.rejects(
      server.verifier.verify(`Bearer ${big}`, server.base),
      (e: unknown) => e instanceof MdeError && e.status === 401 && e.message === 'token too large',
    );
    const justUnder = await signed({ pad: 'x'.repeat(8 * 1024) });
    assert.equal((await server.verifier.verify(`Bearer ${justUnder}`, server.base)).appId, creds.clientId);
  });

  it('a token for an application that does not exist (or not in this tenant)', async () => {
    await expect401(`Bearer ${await signed({ appid: randomUUID() })}`, 'unknown appid');
    await expect401(`Bearer ${await signed({ appid: undefined })}`, 'no appid');
  });

  it('a self-URL audience is bound to that origin, also when cached', async () => {
    const res = await fetch(`${server.base}/${server.tenant.id}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.secret, resource: server.base }).toString(),
    });
    const token = ((await res.json()) as { access_token: string }).access_token;
    assert.equal((await whoami(server, `Bearer ${token}`)).status, 200);
    const other = await fetch(`http://localhost:${server.port}/api/whoami`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(other.status, 401);
    assert.equal((await whoami(server, `Bearer ${token}`)).status, 200);
  });
});

describe('verification cache', () => {
  it('never serves a cached success past the token’s exp (+ skew)', async () => {
    let now = Date.now();
    const verifier = createTokenVerifier({ store: server.store, keys: server.keys, config: server.config, tenant: server.tenant, now: () => now });
    const t = nowSec();
    const token = await signed({ iat: t, nbf: t, exp: t + 60 });
    const p = await verifier.verify(`Bearer ${token}`, server.base);
    assert.equal(p.appId, creds.clientId);
    now += 61_000; // past exp: the cache entry is gone, re-verification allows only the skew
    assert.equal((await verifier.verify(`Bearer ${token}`, server.base)).appId, creds.clientId);
    now += 300_000; // past exp + skew
    await assert.rejects(verifier.verify(`Bearer ${token}`, server.base), (e: unknown) => e instanceof MdeError && e.status === 401);
  });

  it('serves thousands of verifications per second from the cache', async () => {
    const token = await getToken(server, creds);
    const header = `Bearer ${token}`;
    await server.verifier.verify(header, server.base);
    const n = 20_000;
    const t = performance.now();
    for (let i = 0; i < n; i++) await server.verifier.verify(header, server.base);
    const perSec = n / ((performance.now() - t) / 1000);
    assert.ok(perSec > 20_000, `${Math.round(perSec)} verifications/s`);
  });

  it('is bounded', async () => {
    const verifier = createTokenVerifier({ store: server.store, keys: server.keys, config: server.config, tenant: server.tenant, cacheSize: 3 });
    const tokens = await Promise.all([1, 2, 3, 4, 5].map((i) => signed({ uti: `u${i}` })));
    for (const t of tokens) await verifier.verify(`Bearer ${t}`, server.base);
    // Still correct for every token (evicted ones are re-verified).
    for (const t of tokens) assert.equal((await verifier.verify(`Bearer ${t}`, server.base)).appId, creds.clientId);
  });
});

describe('key rotation', () => {
  it('old tokens keep verifying, new tokens use the new kid, JWKS lists both', async () => {
    const s = await startAuthServer();
    try {
      const c = await s.createApp();
      const oldToken = await getToken(s, c);
      const oldKid = decodeParts(oldToken).header.kid;
      const newKid = await s.keys.rotate();
      assert.notEqual(newKid, oldKid);
      const newToken = await getToken(s, c);
      assert.equal(decodeParts(newToken).header.kid, newKid);
      // A fresh verifier (no cache) still accepts the token signed by the retired key.
      const fresh = createTokenVerifier({ store: s.store, keys: s.keys, config: s.config, tenant: s.tenant });
      assert.equal((await fresh.verify(`Bearer ${oldToken}`, s.base)).appId, c.clientId);
      assert.equal((await fresh.verify(`Bearer ${newToken}`, s.base)).appId, c.clientId);
      const kids = s.keys.jwks().keys.map((k) => k.kid);
      assert.deepEqual(new Set(kids), new Set([oldKid, newKid]));
      const records = await s.store.listSigningKeys();
      assert.equal(records.filter((r) => r.status === 'active').length, 1);
      assert.equal(records.find((r) => r.kid === oldKid)?.status, 'retired');
    } finally {
      await s.close();
    }
  });
});
