// The bounded cache behind token verdicts, client-secret checks and role lookups: it evicts the least recently
// used key (recency kept to the second) and never returns an expired value.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ExpiringLru } from '../../src/server/auth/expiringLru.ts';

test('evicts the least recently used key when full', () => {
  const lru = new ExpiringLru<string, number>(2);
  lru.set('a', 1, 10_000);
  lru.set('b', 2, 10_000);
  assert.equal(lru.get('a', 0), 1); // a is now younger than b
  lru.set('c', 3, 10_000);
  assert.equal(lru.get('b', 0), undefined);
  assert.equal(lru.get('a', 0), 1);
  assert.equal(lru.get('c', 0), 3);
  assert.equal(lru.size, 2);
});

test('a key used again within the second keeps its place; a second later it moves again', () => {
  const lru = new ExpiringLru<string, number>(2);
  lru.set('a', 1, 100_000);
  lru.set('b', 2, 100_000);
  assert.equal(lru.get('a', 1_000), 1); // a moves: b is the oldest
  assert.equal(lru.get('b', 1_500), 2); // b moves: a is the oldest
  assert.equal(lru.get('a', 1_600), 1); // within a second of a's last move: a stays the oldest
  lru.set('c', 3, 100_000);
  assert.equal(lru.get('a', 1_700), undefined);
  assert.equal(lru.get('b', 1_700), 2);

  assert.equal(lru.get('c', 5_000), 3); // b is the oldest again
  assert.equal(lru.get('b', 6_000), 2); // more than a second since b moved: it moves, c is the oldest
  lru.set('d', 4, 100_000);
  assert.equal(lru.get('c', 6_000), undefined);
  assert.equal(lru.get('b', 6_000), 2);
});

test('an expired value is never returned, and is dropped', () => {
  const lru = new ExpiringLru<string, number>(10);
  lru.set('a', 1, 5_000);
  assert.equal(lru.get('a', 4_999), 1);
  assert.equal(lru.get('a', 5_000), undefined);
  assert.equal(lru.size, 0);
});

test('a size below one is refused', () => {
  assert.throws(() => new ExpiringLru(0), RangeError);
});
