import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, decodeProtectedHeader, jwtVerify } from 'jose';
import { createPublicKey } from 'node:crypto';
import { SigningKeys } from '../../src/server/auth/signingKeys.ts';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import type { Store } from '../../src/store/store.ts';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tourniquet-keys-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function withStores<T>(n: number, fn: (stores: Store[]) => Promise<T>): Promise<T> {
  const file = join(tmp, `${Math.random().toString(36).slice(2)}.db`);
  const stores: Store[] = [];
  for (let i = 0; i < n; i++) stores.push(await openSqliteStore({ path: file }));
  try {
    return await fn(stores);
  } finally {
    for (const s of stores) await s.close();
  }
}

describe('SigningKeys', () => {
  it('creates one 2048-bit RS256 key on first start, kid = JWK SHA-256 thumbprint, and reuses it afterwards', async () => {
    await withStores(1, async ([store]) => {
      assert.deepEqual(await store!.listSigningKeys(), []);
      const keys = await SigningKeys.load(store!, { refreshMs: 0 });
      const records = await store!.listSigningKeys();
      assert.equal(records.length, 1);
      const r = records[0]!;
      assert.equal(r.status, 'active');
      assert.equal(r.alg, 'RS256');
      assert.equal(r.kid, keys.currentKid);
      const jwk = JSON.parse(r.publicJwk) as { kty: string; n: string; e: string; d?: string };
      assert.equal(jwk.d, undefined, 'public JWK holds no private part');
      assert.equal(r.kid, await calculateJwkThumbprint({ kty: 'RSA', n: jwk.n, e: jwk.e }, 'sha256'));
      assert.equal(createPublicKey({ key: jwk as never, format: 'jwk' }).asymmetricKeyDetails?.modulusLength, 2048);
      assert.match(r.privatePem, /^-----BEGIN PRIVATE KEY-----/);
      keys.stop();

      const again = await SigningKeys.load(store!, { refreshMs: 0 });
      assert.equal(again.currentKid, r.kid);
      assert.equal((await store!.listSigningKeys()).length, 1);
      again.stop();
    });
  });

  it('sign(): header {alg, typ, kid}; claims in Entra order with iat/nbf/exp; verifiable with the JWKS key', async () => {
    await withStores(1, async ([store]) => {
      const keys = await SigningKeys.load(store!, { refreshMs: 0 });
      const token = await keys.sign({ aud: 'a', iss: 'i', tid: 't', roles: ['r'] }, 100, 1_700_000_000);
      assert.deepEqual(decodeProtectedHeader(token), { alg: 'RS256', typ: 'JWT', kid: keys.currentKid });
      const jwk = keys.jwks().keys[0]!;
      const { payload } = await jwtVerify(token, createPublicKey({ key: jwk as never, format: 'jwk' }), { currentDate: new Date(1_700_000_010_000) });
      assert.deepEqual(Object.keys(payload), ['aud', 'iss', 'iat', 'nbf', 'exp', 'tid', 'roles']);
      assert.equal(payload.iat, 1_700_000_000);
      assert.equal(payload.exp, 1_700_000_100);
      keys.stop();
    });
  });

  it('two nodes starting at once on one database end up with the same single active key', async () => {
    await withStores(2, async ([a, b]) => {
      const [ka, kb] = await Promise.all([SigningKeys.load(a!, { refreshMs: 0 }), SigningKeys.load(b!, { refreshMs: 0 })]);
      assert.equal(ka.currentKid, kb.currentKid);
      const active = (await a!.listSigningKeys()).filter((r) => r.status === 'active');
      assert.equal(active.length, 1);
      ka.stop();
      kb.stop();
    });
  });

  it('a rotation on one node is seen by another on refresh (or on its first unknown kid)', async () => {
    await withStores(2, async ([a, b]) => {
      const ka = await SigningKeys.load(a!, { refreshMs: 0 });
      const kb = await SigningKeys.load(b!, { refreshMs: 0 });
      const oldKid = ka.currentKid;
      const newKid = await ka.rotate();
      assert.notEqual(newKid, oldKid);
      assert.equal(kb.currentKid, oldKid, 'b has not refreshed yet');
      // b can still verify a token signed by a's new key: an unknown kid triggers a re-read of the store
      // (at most once a second, so garbage kids cannot hammer the store).
      assert.equal(await kb.findVerificationKey(newKid), null);
      await new Promise((r) => setTimeout(r, 1100));
      assert.ok(await kb.findVerificationKey(newKid));
      await kb.refresh();
      assert.equal(kb.currentKid, newKid);
      assert.ok(kb.verificationKey(oldKid), 'the retired key still verifies');
      assert.deepEqual(new Set(kb.jwks().keys.map((k) => k.kid)), new Set([oldKid, newKid]));
      ka.stop();
      kb.stop();
    });
  });

  it('retired keys stop verifying once their last token has expired (lifetime + margin)', async () => {
    await withStores(1, async ([store]) => {
      const keys = await SigningKeys.load(store!, { refreshMs: 0, tokenLifetimeSec: 3599 });
      const old = keys.currentKid;
      await keys.rotate();
      // Backdate the retirement well beyond lifetime + margin.
      await store!.retireSigningKey(keys.currentKid, '2000-01-01T00:00:00.0000000Z');
      const reopened = await SigningKeys.load(store!, { refreshMs: 0, tokenLifetimeSec: 3599 });
      // Both earlier keys are now retired long ago; a fresh active key was created and only it is published.
      assert.equal(reopened.verificationKey(old) !== null, true, 'retired a moment ago: still verifying');
      const records = await store!.listSigningKeys();
      const ancient = records.find((r) => r.retiredAt === '2000-01-01T00:00:00.0000000Z')!;
      assert.equal(reopened.verificationKey(ancient.kid), null);
      assert.ok(!reopened.jwks().keys.some((k) => k.kid === ancient.kid));
      assert.equal(records.filter((r) => r.status === 'active').length, 1);
      keys.stop();
      reopened.stop();
    });
  });

  it('refreshes on a timer that does not keep the process alive', async () => {
    await withStores(2, async ([a, b]) => {
      const ka = await SigningKeys.load(a!, { refreshMs: 0 });
      const kb = await SigningKeys.load(b!, { refreshMs: 50 });
      const newKid = await ka.rotate();
      // Several 50 ms periods, however busy the host: the refresh is a timer plus a store read.
      for (let waited = 0; kb.currentKid !== newKid && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      assert.equal(kb.currentKid, newKid);
      ka.stop();
      kb.stop();
    });
  });
});
