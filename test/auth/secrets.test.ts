import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashSecret, newClientSecret, SecretChecker, verifySecret } from '../../src/server/auth/secrets.ts';

describe('hashSecret / verifySecret', () => {
  it('stores scrypt$N$r$p$salt$hash with N ≥ 2^15, r=8, p=1 and a 16-byte salt', async () => {
    const stored = await hashSecret('s3cret');
    const parts = stored.split('$');
    assert.equal(parts.length, 6);
    assert.equal(parts[0], 'scrypt');
    assert.ok(Number(parts[1]) >= 2 ** 15);
    assert.equal(parts[2], '8');
    assert.equal(parts[3], '1');
    assert.equal(Buffer.from(parts[4]!, 'base64').length, 16);
    assert.equal(Buffer.from(parts[5]!, 'base64').length, 32);
    assert.ok(!stored.includes('s3cret'));
  });

  it('salts: the same secret hashes differently each time', async () => {
    assert.notEqual(await hashSecret('same'), await hashSecret('same'));
  });

  it('accepts the right secret and refuses wrong, empty, near-miss and oversized ones', async () => {
    const secret = newClientSecret();
    const stored = await hashSecret(secret);
    assert.equal(await verifySecret(secret, stored), true);
    assert.equal(await verifySecret(secret.slice(0, -1), stored), false);
    assert.equal(await verifySecret(secret + 'x', stored), false);
    assert.equal(await verifySecret('', stored), false);
    assert.equal(await verifySecret('x'.repeat(5000), stored), false);
    assert.equal(await verifySecret(secret.toUpperCase(), stored), false);
  });

  it('never throws on malformed stored values', async () => {
    const good = await hashSecret('pw');
    const [, N, r, p, salt, hash] = good.split('$');
    const malformed: unknown[] = [
      '',
      'plain-text-password',
      'scrypt',
      'scrypt$$$$$',
      `bcrypt$${N}$${r}$${p}$${salt}$${hash}`,
      `scrypt$${N}$${r}$${p}$${salt}`,
      `scrypt$${N}$${r}$${p}$${salt}$${hash}$extra`,
      `scrypt$1000$${r}$${p}$${salt}$${hash}`, // N not a power of two
      `scrypt$2$${r}$${p}$${salt}$${hash}`, // N too small
      `scrypt$${2 ** 24}$${r}$${p}$${salt}$${hash}`, // N too large (memory bomb)
      `scrypt$${N}$0$${p}$${salt}$${hash}`,
      `scrypt$${N}$999$${p}$${salt}$${hash}`,
      `scrypt$${N}$${r}$0$${salt}$${hash}`,
      `scrypt$${N}$-8$${p}$${salt}$${hash}`,
      `scrypt$${N}$${r}$${p}$!!!$${hash}`,
      `scrypt$${N}$${r}$${p}$${salt}$***`,
      `scrypt$${N}$${r}$${p}$AA==$${hash}`, // salt too short
      `scrypt$${N}$${r}$${p}$${salt}$AAAA`, // hash too short
      `scrypt$1e5$${r}$${p}$${salt}$${hash}`,
      'x'.repeat(100_000),
      null,
      undefined,
      42,
    ];
    for (const stored of malformed) {
      assert.equal(await verifySecret('pw', stored as string), false, `stored=${String(stored).slice(0, 40)}`);
    }
  });
});

describe('newClientSecret', () => {
  it('looks like an Entra secret: 40 URL-safe characters with Q~ at position 4', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const s = newClientSecret();
      assert.match(s, /^[A-Za-z0-9_-]{4}Q~[A-Za-z0-9_-]{34}$/);
      assert.equal(encodeURIComponent(s).replace(/%7E/gi, '~'), s, 'URL-safe');
      seen.add(s);
    }
    assert.equal(seen.size, 200);
  });

  it('uses the whole alphabet (≥ 192 bits of entropy over 38 random symbols)', () => {
    const chars = new Set<string>();
    for (let i = 0; i < 200; i++) for (const c of newClientSecret().slice(6)) chars.add(c);
    assert.equal(chars.size, 64);
    assert.ok(38 * Math.log2(64) >= 192);
  });
});

describe('SecretChecker', () => {
  it('remembers successes briefly so a burst costs one scrypt', async () => {
    const stored = await hashSecret('right');
    const checker = new SecretChecker();
    let t = performance.now();
    assert.equal(await checker.check('app', 'right', stored), true);
    const first = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < 100; i++) assert.equal(await checker.check('app', 'right', stored), true);
    const hundred = performance.now() - t;
    assert.ok(hundred < first, `100 cached checks (${hundred} ms) should beat one scrypt (${first} ms)`);
  });

  it('shares one computation between concurrent checks of the same input', async () => {
    const stored = await hashSecret('right');
    const checker = new SecretChecker();
    const t = performance.now();
    const results = await Promise.all(Array.from({ length: 50 }, () => checker.check('app', 'right', stored)));
    const elapsed = performance.now() - t;
    assert.ok(results.every((r) => r === true));
    assert.ok(elapsed < 2000, `50 concurrent checks took ${elapsed} ms`);
  });

  it('never remembers a failure as a success, and a cached success does not leak to other inputs', async () => {
    const stored = await hashSecret('right');
    const checker = new SecretChecker();
    assert.equal(await checker.check('app', 'wrong', stored), false);
    assert.equal(await checker.check('app', 'wrong', stored), false);
    assert.equal(await checker.check('app', 'right', stored), true);
    assert.equal(await checker.check('app', 'wrong', stored), false);
    assert.equal(await checker.check('other-app', 'wrong', stored), false);
    // A new secret (new stored hash) invalidates the remembered success of the old one.
    const rotated = await hashSecret('new');
    assert.equal(await checker.check('app', 'right', rotated), false);
  });

  it('forgets successes after the TTL', async () => {
    let now = 1_000_000;
    const stored = await hashSecret('right');
    const checker = new SecretChecker({ ttlMs: 1000, now: () => now });
    assert.equal(await checker.check('app', 'right', stored), true);
    now += 2000;
    // Still true (recomputed), but proves the entry was not served past its TTL by timing the call.
    const t = performance.now();
    assert.equal(await checker.check('app', 'right', stored), true);
    assert.ok(performance.now() - t > 5, 'expired entry must be recomputed with scrypt');
  });
});
