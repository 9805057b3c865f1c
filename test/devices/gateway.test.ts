// The WebSocket gateway under attack and under failure: forged or foreign hellos, frames before hello, another
// machine's actions, replayed seq, oversized/malformed/binary frames, replaced and dead connections.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { generateDeviceKey, type DeviceKeyPair } from '../../src/protocol/signing.ts';
import { startHarness, type Harness } from './gatewayHarness.ts';
import { EMPTY_DETAIL, RawDevice, enroll, linuxFacts } from './rawDevice.ts';

interface Enrolled {
  id: string;
  key: DeviceKeyPair;
}

describe('gateway', () => {
  let h: Harness;
  let token: string;
  const devices: RawDevice[] = [];
  const connect = (opts?: { autoPong?: boolean }) => {
    const d = new RawDevice(h.url, opts);
    devices.push(d);
    return d;
  };
  const newDevice = async (name: string): Promise<Enrolled> => {
    const r = await enroll(h.url, token, linuxFacts(name));
    assert.equal(r.status, 200);
    return { id: r.body.machineId, key: r.key };
  };

  before(async () => {
    h = await startHarness({ deviceIdleTimeoutSec: 2 }, 500);
    token = (await h.enrollToken()).token;
  });
  after(async () => {
    for (const d of devices) d.ws.terminate();
    await h.close();
  });

  it('welcomes a device that signs the challenge and marks it Active', async () => {
    const a = await newDevice('a');
    const d = connect();
    await d.login(a.id, a.key);
    assert.equal(h.gateway.isConnected(a.id), true);
    await h.waitFor(async () => (await h.machine(a.id))?.healthStatus === 'Active');
    d.close();
    await h.waitFor(async () => (await h.machine(a.id))?.healthStatus === 'Inactive');
    assert.equal(h.gateway.isConnected(a.id), false);
  });

  it('refuses a forged hello signature (4401) and audits it', async () => {
    const a = await newDevice('forged');
    const d = connect();
    await d.hello(a.id, generateDeviceKey()); // right id, wrong key
    const closed = await d.waitClosed();
    assert.equal(closed.code, 4401);
    assert.equal(h.gateway.isConnected(a.id), false);
    assert.ok(h.audits.some((e) => e.action === 'device.hello' && e.result === 'failure' && e.target === a.id));
  });

  it("refuses a hello for another machine's id", async () => {
    const victim = await newDevice('victim');
    const attacker = await newDevice('attacker');
    const d = connect();
    await d.hello(victim.id, attacker.key);
    assert.equal((await d.waitClosed()).code, 4401);
    assert.equal(h.gateway.isConnected(victim.id), false);
  });

  it('refuses a hello for an unknown machine', async () => {
    const d = connect();
    await d.hello('f'.repeat(40), generateDeviceKey());
    assert.equal((await d.waitClosed()).code, 4401);
  });

  it('closes a connection that sends frames before hello', async () => {
    const d = connect();
    await d.next('challenge');
    d.send({ t: 'ack', seq: 1, actionId: '5382f7ea-7557-4ab7-9782-d50480024a4e' });
    const err = await d.next('error');
    assert.equal(err.code, 'NotAuthenticated');
    assert.equal((await d.waitClosed()).code, 4401);
  });

  it('closes a connection that never says hello', async () => {
    const d = connect();
    await d.next('challenge');
    assert.equal((await d.waitClosed(5000)).code, 4401);
  });

  it("does not let device A acknowledge or report device B's action", async () => {
    const a = await newDevice('dev-a');
    const b = await newDevice('dev-b');
    const da = connect();
    await da.login(a.id, a.key);
    const action = await h.createAction(b.id);
    da.send({ t: 'ack', seq: ++da.seq, actionId: action.id });
    let err = await da.next('error');
    assert.equal(err.code, 'NotYourAction');
    assert.equal(err.seq, da.seq);
    // A result signed with A's key, and one signed as if by B (A cannot produce B's signature): both refused.
    da.send(da.result(a.id, a.key, action.id));
    err = await da.next('error');
    assert.equal(err.code, 'NotYourAction');
    da.send(da.result(b.id, a.key, action.id));
    err = await da.next('error');
    assert.equal(err.code, 'NotYourAction');
    const after = (await h.store.getAction(action.id))!;
    assert.equal(after.status, 'Pending');
    assert.equal(after.deviceResult, null);
    assert.ok(h.audits.some((e) => e.action === 'device.frameRejected' && e.actorId === a.id));
    da.close();
  });

  it("never delivers another machine's actions", async () => {
    const a = await newDevice('only-mine-a');
    const b = await newDevice('only-mine-b');
    const da = connect();
    await da.login(a.id, a.key);
    await h.createAction(b.id);
    const mine = await h.createAction(a.id);
    const got = await da.next('action');
    assert.equal(got.action.id, mine.id);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(da.received.filter((m) => m.t === 'action').length, 0);
    da.close();
  });

  it('rejects a replayed seq', async () => {
    const a = await newDevice('replay');
    const d = connect();
    await d.login(a.id, a.key);
    const action = await h.createAction(a.id);
    await d.next('action');
    d.send({ t: 'ack', seq: 5, actionId: action.id });
    assert.equal((await d.next('accepted')).seq, 5);
    d.send({ t: 'ack', seq: 5, actionId: action.id });
    const err = await d.next('error');
    assert.equal(err.code, 'ReplayedSeq');
    d.send({ t: 'ack', seq: 4, actionId: action.id });
    assert.equal((await d.next('error')).code, 'ReplayedSeq');
    d.close();
  });

  it('rejects a result whose signature does not verify', async () => {
    const a = await newDevice('badsig');
    const d = connect();
    await d.login(a.id, a.key);
    const action = await h.createAction(a.id);
    await d.next('action');
    const frame = d.result(a.id, a.key, action.id, 'Succeeded');
    d.send({ ...frame, outcome: 'Failed', errorHResult: -2147024891 }); // tampered after signing
    assert.equal((await d.next('error')).code, 'BadSignature');
    d.send(d.result(a.id, generateDeviceKey(), action.id));
    assert.equal((await d.next('error')).code, 'BadSignature');
    assert.equal((await h.store.getAction(action.id))!.status, 'Pending');
    d.close();
  });

  it('answers malformed frames with errors and closes after repeated abuse', async () => {
    const a = await newDevice('abuse');
    const d = connect();
    await d.login(a.id, a.key);
    d.send('not json');
    assert.equal((await d.next('error')).code, 'MalformedFrame');
    d.send({ t: 'ack', seq: 1 });
    assert.equal((await d.next('error')).code, 'MalformedFrame');
    d.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await d.next('error')).code, 'BinaryFrame');
    d.send({ t: 'hello', machineId: a.id, signature: 'AAAA', agentVersion: '1' });
    assert.equal((await d.next('error')).code, 'MalformedFrame');
    d.send('[]');
    assert.equal((await d.waitClosed()).code, 1008);
  });

  it('refuses an oversized frame by closing the connection (1009)', async () => {
    const a = await newDevice('big');
    const d = connect();
    await d.login(a.id, a.key);
    d.send({ t: 'progress', seq: 1, actionId: '5382f7ea-7557-4ab7-9782-d50480024a4e', message: 'x'.repeat(1024 * 1024 + 10) });
    assert.equal((await d.waitClosed()).code, 1009);
    await h.waitFor(() => h.audits.find((e) => e.action === 'device.frameRejected' && (e.detail as { code?: string })?.code === 'FrameTooLarge'));
  });

  it('keeps one connection per machine: a newer one replaces the older (4409)', async () => {
    const a = await newDevice('twice');
    const first = connect();
    await first.login(a.id, a.key);
    const second = connect();
    await second.login(a.id, a.key);
    assert.equal((await first.waitClosed()).code, 4409);
    assert.equal(h.gateway.isConnected(a.id), true);
    // The old connection closing must not mark the machine Inactive.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await h.machine(a.id))!.healthStatus, 'Active');
    const action = await h.createAction(a.id);
    assert.equal((await second.next('action')).action.id, action.id);
    second.close();
  });

  it('reaps a connection that stops answering pings and marks the machine Inactive', async () => {
    const a = await newDevice('silent');
    const d = connect({ autoPong: false });
    await d.login(a.id, a.key);
    await h.waitFor(async () => (await h.machine(a.id))?.healthStatus === 'Active');
    await d.waitClosed(6000);
    await h.waitFor(async () => (await h.machine(a.id))?.healthStatus === 'Inactive');
  });

  it('refuses upgrades on other paths', async () => {
    const ws = new WebSocket(`${h.url.replace('http', 'ws')}/agent/v2/connect`);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    assert.equal(status, 404);
  });

  it('records facts, observations and vault reports from the device', async () => {
    const a = await newDevice('reports');
    const d = connect();
    await d.login(a.id, a.key);
    d.send({ t: 'facts', seq: 1, facts: linuxFacts('reports-renamed', { ipAddresses: [{ ipAddress: '10.1.1.1', macAddress: null, type: 'Ethernet', operationalStatus: 'Up' }] }) });
    assert.equal((await d.next('accepted')).seq, 1);
    const m = (await h.machine(a.id))!;
    assert.equal(m.computerDnsName, 'reports-renamed');
    assert.equal(m.lastIpAddress, '10.1.1.1');
    const sha1 = 'AB'.repeat(20);
    d.send({ t: 'observations', seq: 2, complete: true, files: [{ sha1, sha256: null, path: '/opt/x', size: 3, signer: null, trusted: false }] });
    assert.equal((await d.next('accepted')).seq, 2);
    assert.equal(await h.store.fileSeenOnMachine(a.id, sha1.toLowerCase()), 'seen');
    assert.equal(await h.store.fileSeenOnMachine(a.id, 'c'.repeat(40)), 'notSeen');
    const action = await h.createAction(a.id);
    await d.next('action');
    d.send({
      t: 'vault',
      seq: 3,
      items: [{ itemId: 'q-1', actionId: action.id, sha1, sha256: null, originalPath: '/opt/x', size: 3, quarantinedAt: '2026-11-29T06:57:06.123Z', state: 'quarantined' }],
    });
    assert.equal((await d.next('accepted')).seq, 3);
    const vault = await h.store.listVaultItems(a.id);
    assert.equal(vault.length, 1);
    assert.equal(vault[0]!.sha1, sha1.toLowerCase());
    // A vault item naming another machine's action is refused.
    const other = await newDevice('reports-other');
    const foreign = await h.createAction(other.id);
    d.send({
      t: 'vault',
      seq: 4,
      items: [{ itemId: 'q-2', actionId: foreign.id, sha1, sha256: null, originalPath: '/opt/x', size: 3, quarantinedAt: '2026-11-29T06:57:06Z', state: 'quarantined' }],
    });
    assert.equal((await d.next('error')).code, 'NotYourAction');
    d.close();
  });

  it('accepts the same signed result twice but stores it once', async () => {
    const a = await newDevice('dup');
    const d = connect();
    await d.login(a.id, a.key);
    const action = await h.createAction(a.id);
    await d.next('action');
    const frame = d.result(a.id, a.key, action.id);
    d.send(frame);
    await d.next('accepted');
    const first = (await h.store.getAction(action.id))!;
    d.send({ ...frame, seq: ++d.seq });
    assert.equal((await d.next('accepted')).seq, d.seq);
    const second = (await h.store.getAction(action.id))!;
    assert.equal(second.status, 'Succeeded');
    assert.deepEqual(second.deviceResult, first.deviceResult);
    assert.equal(h.audits.filter((e) => e.action === 'device.result' && e.target === action.id).length, 1);
    d.close();
  });

  it('accepts a result without a prior ack (Pending → Succeeded) and stores the signed detail', async () => {
    const a = await newDevice('fast');
    const d = connect();
    await d.login(a.id, a.key);
    const action = await h.createAction(a.id);
    await d.next('action');
    d.send(d.result(a.id, a.key, action.id, 'Failed', 0, EMPTY_DETAIL));
    await d.next('accepted');
    const done = (await h.store.getAction(action.id))!;
    assert.equal(done.status, 'Failed');
    assert.equal(done.errorHResult, -2147467259); // a Failed result always carries a failure code
    assert.equal(done.deviceResult?.applied, true);
    assert.equal(typeof (done.deviceResult?.detail as { signature?: string }).signature, 'string');
    d.close();
  });
});
