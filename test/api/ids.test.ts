// Identifier shapes clients see: action ids are GUIDs (time-ordered underneath), correlation ids `|8hex-16hex.`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newTimeOrderedGuid, randomHex } from '../../src/core/ids.ts';
import { isGuid } from '../../src/core/validation.ts';
import { newCorrelationId } from '../../src/server/mde/wire.ts';

describe('identifiers', () => {
  it('action ids are GUIDs (RFC 9562 version 7) that sort by creation time', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => newTimeOrderedGuid(1_700_000_000_000 + i));
    for (const id of ids) {
      assert.ok(isGuid(id), id);
      assert.equal(id[14], '7', 'version nibble');
      assert.match(id[19]!, /[89ab]/, 'RFC variant');
    }
    assert.deepEqual([...ids].sort(), ids, 'later ms sorts later');
    assert.equal(new Set(ids).size, ids.length);
    const sameMs = Array.from({ length: 10_000 }, () => newTimeOrderedGuid(1_700_000_000_000));
    assert.equal(new Set(sameMs).size, sameMs.length, 'unique within one millisecond');
    assert.equal(newTimeOrderedGuid(0).slice(0, 13), '00000000-0000');
  });

  it('random hex comes in the asked length, and correlation ids keep the live shape', () => {
    for (const n of [0, 1, 8, 24, 30]) assert.match(randomHex(n), new RegExp(`^[0-9a-f]{${n}}$`));
    assert.throws(() => randomHex(31), RangeError);
    const ids = Array.from({ length: 1000 }, newCorrelationId);
    for (const id of ids) assert.match(id, /^\|[0-9a-f]{8}-[0-9a-f]{16}\.$/);
    assert.equal(new Set(ids).size, ids.length);
  });
});
