// The audit chain's hash input is part of every stored entry: these values were computed by the first
// implementation and must never change, or every existing log would fail verification.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { auditHash, canonicalJson, GENESIS_HASH, throughJson, verifyAuditChain } from '../../src/store/auditChain.ts';
import type { AuditEntry } from '../../src/store/store.ts';

const entry: Omit<AuditEntry, 'id' | 'hash' | 'prevHash'> = {
  at: '2026-11-29T12:00:00.1234567Z',
  actorType: 'app',
  actorId: '6f1c2c4e-0000-4000-8000-000000000001',
  actorName: 'Playbook Ünïcode "app"',
  action: 'machineAction.create',
  target: '0193f0e1-7c2a-7000-8000-0000000000aa',
  result: 'success',
  status: 201,
  clientIp: '127.0.0.1',
  correlationId: '|abc.def.',
  detail: { z: [1, 'two', null, { y: true, b: -0.5 }], a: { é: 1, A: 2, '10': 3, '9': 4 }, sha1: 'ab'.repeat(20) },
};

describe('audit chain hashing', () => {
  it('hashes an entry exactly as entries already stored were hashed', () => {
    assert.equal(auditHash(GENESIS_HASH, entry), 'd5a8717ac5508127f8529b76b66ad4bf04f5efc2f86554151b5e5362c86162f8');
    const sparse = { ...entry, actorName: null, target: null, status: null, clientIp: null, correlationId: null, detail: null };
    assert.equal(auditHash('f'.repeat(64), sparse), 'a19455320310e59ac6657a1928df1109534aa0614efdbc886e4774204a368ed8');
  });

  it('ignores properties that are not entry fields, and id and hash', () => {
    const extra = { ...entry, id: 7, hash: 'x', prevHash: 'y', unknown: 'z' } as typeof entry;
    assert.equal(auditHash(GENESIS_HASH, extra), auditHash(GENESIS_HASH, entry));
  });

  it('writes canonical JSON: sorted keys, no whitespace, values without a JSON form left out or null', () => {
    // eslint-disable-next-line no-sparse-arrays
    const odd = [1, , 3, undefined, () => 1, Symbol('s'), { u: undefined, f: () => 1, s: Symbol('x'), n: NaN, i: -Infinity, d: new Date(0) }];
    assert.equal(canonicalJson(odd), '[1,,3,null,null,null,{"d":{},"i":null,"n":null}]');
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: undefined }], c: 'x' } }), '{"a":{"c":"x","d":[1,{"f":2}]},"b":1}');
    assert.equal(canonicalJson({}), '{}');
    assert.equal(canonicalJson([]), '[]');
  });

  it('hashes flat entries (every POST\'s) as canonicalJson of the hashed fields, whatever their keys and values', () => {
    // The oracle: the definition of the hash, with canonicalJson over the hashed fields and prevHash.
    const expected = (prev: string, e: typeof entry) => {
      const { at, actorType, actorId, actorName, action, target, result, status, clientIp, correlationId, detail } = e;
      const fields = { at, actorType, actorId, actorName, action, target, result, status, clientIp, correlationId, detail, prevHash: prev };
      return createHash('sha256').update(`${prev}\n${canonicalJson(fields)}`).digest('hex');
    };
    const keys = ['sha1', 'actionId', 'type', '10', '9', '0', '01', '-1', '4294967295', 'é', 'A', 'a', '', ' ', 'Z\u0000', '\ud800'];
    const values: unknown[] = ['x', 'quote " back \\ slash', 'Ünï\u2028', '\udfff', 0, -0, 1.5, 1e21, NaN, Infinity, true, false, null, undefined];
    let seed = 7;
    const pick = <T>(xs: readonly T[]): T => xs[(seed = (seed * 1103515245 + 12345) % 2 ** 31) % xs.length]!;
    for (let n = 0; n < 2000; n++) {
      const detail: Record<string, unknown> = {};
      for (let k = pick([0, 1, 2, 3, 4, 6]); k > 0; k--) detail[pick(keys)] = pick(values);
      const e = { ...entry, detail: pick([detail, detail, null, undefined]), actorName: pick(['n', null, undefined]), status: pick([201, null, -0]) };
      const prev = pick([GENESIS_HASH, 'f'.repeat(64)]);
      assert.equal(auditHash(prev, e as typeof entry), expected(prev, e as typeof entry), JSON.stringify(e.detail));
    }
    // Member names JSON would not keep as given, and values that are not flat, take the field-by-field path.
    const proto = JSON.parse('{"__proto__": 1, "b": 2}') as Record<string, unknown>;
    for (const detail of [proto, { b: [1, 2] }, { a: { c: 1 } }, { d: new Date(0) }, Object.create(null) as object, [1, 2]]) {
      const e = { ...entry, detail } as typeof entry;
      assert.equal(auditHash(GENESIS_HASH, e), expected(GENESIS_HASH, e));
    }
  });

  it('verifies a chain and names the first entry that was changed', () => {
    let prev = GENESIS_HASH;
    const chain: AuditEntry[] = [1, 2, 3].map((id) => {
      const e = { ...entry, id, target: `t${id}`, prevHash: prev, hash: '' };
      e.hash = auditHash(prev, e);
      prev = e.hash;
      return e;
    });
    assert.deepEqual(verifyAuditChain(chain), { ok: true });
    const tampered = chain.map((e) => (e.id === 2 ? { ...e, status: 500 } : e));
    assert.deepEqual(verifyAuditChain(tampered), { ok: false, badId: 2, reason: 'hash does not match the entry' });
  });
});

describe('audit detail as stored', () => {
  it('is what JSON gives back, for flat and nested values alike', () => {
    const cases: unknown[] = [
      undefined,
      null,
      'text',
      3,
      [1, undefined, () => 1],
      { actionId: 'a', type: 'StopAndQuarantineFile', sha1: null, n: 5, ok: true, gone: undefined },
      { '10': 1, '9': 2, b: 'x', a: 'y' },
      { minusZero: -0, nan: Number.NaN, inf: Number.POSITIVE_INFINITY },
      { nested: { a: [1, { b: undefined }] }, at: new Date(0) },
      { fn: () => 1, sym: Symbol('s'), big: 'fine' },
      JSON.parse('{"__proto__": {"polluted": true}, "x": 1}'),
      { toJSON: () => ({ replaced: true }) },
      { lone: '\ud800', quote: '"\\\n' },
      Object.assign(Object.create({ inherited: 1 }), { own: 2 }),
    ];
    for (const detail of cases) {
      const expected = detail === undefined ? null : JSON.parse(JSON.stringify(detail));
      const got = throughJson(detail);
      assert.deepEqual(got, expected);
      assert.equal(JSON.stringify(got), JSON.stringify(expected));
      if (got !== null && typeof got === 'object') assert.equal(Object.getPrototypeOf(got), Object.getPrototypeOf(expected));
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
