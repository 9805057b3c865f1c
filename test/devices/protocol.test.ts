// Protocol v1 as data: schemas for every frame (and what they refuse), and the Ed25519 signatures.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkDeviceMessage,
  checkEnrollRequest,
  checkEnrollResponse,
  checkServerMessage,
  toInt32HResult,
} from '../../src/protocol/schemas.ts';
import {
  canonicalJson,
  deviceKeyFromSeed,
  exportPrivateKeyPem,
  generateDeviceKey,
  importPrivateKeyPem,
  importPublicKey,
  seedBytes,
  signHello,
  signResult,
  verifyHello,
  verifyResult,
} from '../../src/protocol/signing.ts';
import type { ActionResultDetail } from '../../src/protocol/v1.ts';
import { linuxFacts } from './rawDevice.ts';

const ACTION_ID = '5382f7ea-7557-4ab7-9782-d50480024a4e';
const MACHINE_ID = 'a'.repeat(40);
const SIG = 'A'.repeat(86) + '==';
const DETAIL: ActionResultDetail = {
  processes: [{ pid: 42, exe: '/tmp/x', cmdline: '/tmp/x -d', matchedBy: 'exe', parentPid: 1, killed: true }],
  files: [{ path: '/tmp/x', device: 2049, inode: 1234, size: 10, sha1: 'b'.repeat(40), status: 'quarantined', vaultItemId: 'q-1' }],
  durationMs: 12,
};

describe('device message schemas', () => {
  const valid: Record<string, unknown>[] = [
    { t: 'hello', machineId: MACHINE_ID, signature: SIG, agentVersion: '0.1.0' },
    { t: 'ack', seq: 1, actionId: ACTION_ID },
    { t: 'progress', seq: 2, actionId: ACTION_ID, message: 'killing 3 processes' },
    { t: 'result', seq: 3, actionId: ACTION_ID, outcome: 'Succeeded', errorHResult: 0, reason: null, detail: DETAIL, signature: SIG },
    { t: 'result', seq: 3, actionId: ACTION_ID, outcome: 'Failed', errorHResult: 2147942405, reason: 'x', detail: DETAIL, signature: SIG },
    { t: 'facts', seq: 4, facts: linuxFacts('host-1') },
    { t: 'observations', seq: 5, complete: true, files: [{ sha1: 'c'.repeat(40), sha256: null, path: '/bin/x', size: 1, signer: null, trusted: false }] },
    {
      t: 'vault',
      seq: 6,
      items: [
        {
          itemId: 'q-1',
          actionId: ACTION_ID,
          sha1: 'c'.repeat(40),
          sha256: 'd'.repeat(64),
          originalPath: '/tmp/x',
          size: 3,
          quarantinedAt: '2026-11-29T06:57:06.1234567Z',
          state: 'quarantined',
        },
      ],
    },
  ];
  for (const m of valid) {
    it(`accepts a valid ${String(m.t)}`, () => assert.equal(checkDeviceMessage(m).ok, true, JSON.stringify(checkDeviceMessage(m))));
  }

  const invalid: [string, unknown][] = [
    ['a non-object', 'hello'],
    ['null', null],
    ['an array', [{ t: 'ack' }]],
    ['an unknown type', { t: 'shutdown', seq: 1 }],
    ['a missing type', { seq: 1, actionId: ACTION_ID }],
    ['an extra property', { t: 'ack', seq: 1, actionId: ACTION_ID, machineId: MACHINE_ID }],
    ['seq 0', { t: 'ack', seq: 0, actionId: ACTION_ID }],
    ['a fractional seq', { t: 'ack', seq: 1.5, actionId: ACTION_ID }],
    ['a string seq', { t: 'ack', seq: '1', actionId: ACTION_ID }],
    ['a missing seq', { t: 'ack', actionId: ACTION_ID }],
    ['an action id that is not a GUID', { t: 'ack', seq: 1, actionId: 'x' }],
    ['an upper-case machine id', { t: 'hello', machineId: 'A'.repeat(40), signature: SIG, agentVersion: '1' }],
    ['a short machine id', { t: 'hello', machineId: 'a'.repeat(39), signature: SIG, agentVersion: '1' }],
    ['a non-base64 signature', { t: 'hello', machineId: MACHINE_ID, signature: 'not base64!', agentVersion: '1' }],
    ['an unknown outcome', { t: 'result', seq: 1, actionId: ACTION_ID, outcome: 'Cancelled', errorHResult: 0, reason: null, detail: DETAIL, signature: SIG }],
    ['an out-of-range HRESULT', { t: 'result', seq: 1, actionId: ACTION_ID, outcome: 'Failed', errorHResult: 2 ** 33, reason: null, detail: DETAIL, signature: SIG }],
    ['a detail with an unknown key', { t: 'result', seq: 1, actionId: ACTION_ID, outcome: 'Succeeded', errorHResult: 0, reason: null, detail: { ...DETAIL, extra: 1 }, signature: SIG }],
    ['a process with an unknown matchedBy', { t: 'result', seq: 1, actionId: ACTION_ID, outcome: 'Succeeded', errorHResult: 0, reason: null, detail: { ...DETAIL, processes: [{ ...DETAIL.processes[0], matchedBy: 'guess' }] }, signature: SIG }],
    ['a file with a bad sha1', { t: 'result', seq: 1, actionId: ACTION_ID, outcome: 'Succeeded', errorHResult: 0, reason: null, detail: { ...DETAIL, files: [{ ...DETAIL.files[0], sha1: 'zz' }] }, signature: SIG }],
    ['a progress message with control characters', { t: 'progress', seq: 1, actionId: ACTION_ID, message: 'a\u0007b' }],
    ['too many observations', { t: 'observations', seq: 1, complete: true, files: Array.from({ length: 4001 }, () => ({ sha1: 'c'.repeat(40), sha256: null, path: '/x', size: 1, signer: null, trusted: false })) }],
    ['an observation with a negative size', { t: 'observations', seq: 1, complete: true, files: [{ sha1: 'c'.repeat(40), sha256: null, path: '/x', size: -1, signer: null, trusted: false }] }],
    ['a vault item with a bad timestamp', { t: 'vault', seq: 1, items: [{ itemId: 'q', actionId: null, sha1: 'c'.repeat(40), sha256: null, originalPath: '/x', size: 1, quarantinedAt: 'yesterday', state: 'quarantined' }] }],
    ['a vault item id with a slash', { t: 'vault', seq: 1, items: [{ itemId: '../q', actionId: null, sha1: 'c'.repeat(40), sha256: null, originalPath: '/x', size: 1, quarantinedAt: '2026-01-01T00:00:00Z', state: 'quarantined' }] }],
    ['facts with an unknown key', { t: 'facts', seq: 1, facts: { ...linuxFacts('h'), root: true } }],
    ['facts with a bad IP', { t: 'facts', seq: 1, facts: linuxFacts('h', { ipAddresses: [{ ipAddress: '999.1.1.1', macAddress: null, type: 'Ethernet', operationalStatus: 'Up' }] }) }],
    ['facts with a hostname containing spaces', { t: 'facts', seq: 1, facts: linuxFacts('bad host') }],
    ['facts with too many tags', { t: 'facts', seq: 1, facts: linuxFacts('h', { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }) }],
    ['facts with an aadDeviceId that is not a GUID', { t: 'facts', seq: 1, facts: linuxFacts('h', { aadDeviceId: 'nope' }) }],
  ];
  for (const [name, m] of invalid) {
    it(`refuses ${name}`, () => {
      const r = checkDeviceMessage(m);
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.error.length > 0 && r.error.length <= 500);
    });
  }
});

describe('server message schemas', () => {
  const order = {
    id: ACTION_ID,
    type: 'StopAndQuarantineFile',
    comment: 'c',
    sha1: 'e'.repeat(40),
    scope: null,
    requestor: 'app',
    createdAt: '2026-11-29T06:57:06.1234567Z',
    expiresAt: '2026-12-06T06:57:06.1234567Z',
    params: {},
  };
  it('accepts every server message', () => {
    for (const m of [
      { t: 'challenge', nonce: 'n'.repeat(43), serverTime: '2026-11-29T06:57:06.1234567Z', protocolVersion: 1 },
      { t: 'welcome', machineId: MACHINE_ID, heartbeatSec: 30 },
      { t: 'action', action: order },
      { t: 'cancel', actionId: ACTION_ID },
      { t: 'accepted', seq: 3 },
      { t: 'error', code: 'ReplayedSeq', message: 'x', seq: 3 },
      { t: 'error', code: 'NotAuthenticated', message: 'x' },
    ]) {
      assert.equal(checkServerMessage(m).ok, true, JSON.stringify(m));
    }
  });
  it('tolerates unknown properties from a newer v1 server', () => {
    assert.equal(checkServerMessage({ t: 'welcome', machineId: MACHINE_ID, heartbeatSec: 30, region: 'eu' }).ok, true);
    assert.equal(checkServerMessage({ t: 'action', action: { ...order, priority: 1 } }).ok, true);
  });
  it('refuses wrong types', () => {
    assert.equal(checkServerMessage({ t: 'action', action: { ...order, sha1: 'nope' } }).ok, false);
    assert.equal(checkServerMessage({ t: 'welcome', machineId: MACHINE_ID, heartbeatSec: 0 }).ok, false);
    assert.equal(checkServerMessage({ t: 'challenge', nonce: 'short', serverTime: 'x', protocolVersion: 1 }).ok, false);
  });
});

describe('enrollment schemas', () => {
  it('accepts a complete request and refuses extras, missing facts and oversized tokens', () => {
    const key = generateDeviceKey();
    const good = { enrollToken: 'tok-123', publicKey: key.publicKey, facts: linuxFacts('h') };
    assert.equal(checkEnrollRequest(good).ok, true);
    assert.equal(checkEnrollRequest({ ...good, machineId: MACHINE_ID }).ok, false);
    assert.equal(checkEnrollRequest({ enrollToken: 't', publicKey: key.publicKey }).ok, false);
    assert.equal(checkEnrollRequest({ ...good, enrollToken: 'x'.repeat(513) }).ok, false);
    assert.equal(checkEnrollRequest({ ...good, enrollToken: 'with space' }).ok, false);
    assert.equal(checkEnrollResponse({ machineId: MACHINE_ID, serverTime: '2026-11-29T06:57:06Z', protocolVersion: 1 }).ok, true);
  });
  it('folds unsigned HRESULTs to int32', () => {
    assert.equal(toInt32HResult(0x80070005), -2147024891);
    assert.equal(toInt32HResult(-2147024891), -2147024891);
  });
});

describe('signatures', () => {
  const key = generateDeviceKey();
  const other = generateDeviceKey();
  const pub = importPublicKey(key.publicKey)!.key;

  it('hello verifies only for the same nonce, machine id and key', () => {
    const sig = signHello(key.privateKey, 'nonce-1', MACHINE_ID);
    assert.equal(verifyHello(pub, 'nonce-1', MACHINE_ID, sig), true);
    assert.equal(verifyHello(pub, 'nonce-2', MACHINE_ID, sig), false);
    assert.equal(verifyHello(pub, 'nonce-1', 'b'.repeat(40), sig), false);
    assert.equal(verifyHello(pub, 'nonce-1', MACHINE_ID, signHello(other.privateKey, 'nonce-1', MACHINE_ID)), false);
    assert.equal(verifyHello(pub, 'nonce-1', MACHINE_ID, 'AAAA'), false);
  });

  it('result signatures cover outcome, code and detail, whatever the key order', () => {
    const r = { actionId: ACTION_ID, outcome: 'Succeeded' as const, errorHResult: 0, detail: DETAIL };
    const sig = signResult(key.privateKey, MACHINE_ID, r);
    const reordered = JSON.parse(JSON.stringify({ durationMs: DETAIL.durationMs, files: DETAIL.files, processes: DETAIL.processes }));
    assert.equal(verifyResult(pub, MACHINE_ID, { ...r, detail: reordered }, sig), true);
    assert.equal(verifyResult(pub, MACHINE_ID, { ...r, outcome: 'Failed' }, sig), false);
    assert.equal(verifyResult(pub, MACHINE_ID, { ...r, errorHResult: 5 }, sig), false);
    assert.equal(verifyResult(pub, MACHINE_ID, { ...r, detail: { ...DETAIL, durationMs: 13 } }, sig), false);
    assert.equal(verifyResult(pub, 'b'.repeat(40), r, sig), false);
  });

  it('canonical JSON sorts keys at every level and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: undefined }], c: 'x' } }), '{"a":{"c":"x","d":[1,{"f":2}]},"b":1}');
  });

  it('refuses public keys that are not Ed25519 SPKI', () => {
    assert.equal(importPublicKey('AAAA'), null);
    assert.equal(importPublicKey('not base64'), null);
    assert.equal(importPublicKey(''), null);
  });

  it('seeded keys are reproducible and PEM round-trips', () => {
    const a = deviceKeyFromSeed(seedBytes('x'));
    const b = deviceKeyFromSeed(seedBytes('x'));
    assert.equal(a.publicKey, b.publicKey);
    assert.notEqual(a.publicKey, deviceKeyFromSeed(seedBytes('y')).publicKey);
    assert.equal(importPrivateKeyPem(exportPrivateKeyPem(key.privateKey)).publicKey, key.publicKey);
  });
});
