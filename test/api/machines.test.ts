// GET /api/machines, /api/machines/{id}, findbyip, /api/files/{sha1}/machines, /api/alerts, /api/$metadata.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { nowTimestamp } from '../../src/server/clock.ts';
import { call, startTestServer, type TestServer } from '../helpers/testServer.ts';

const MACHINE_KEYS = [
  'id', 'mergedIntoMachineId', 'isPotentialDuplication', 'isExcluded', 'exclusionReason', 'computerDnsName',
  'firstSeen', 'lastSeen', 'osPlatform', 'osVersion', 'osProcessor', 'version', 'lastIpAddress',
  'lastExternalIpAddress', 'agentVersion', 'osBuild', 'healthStatus', 'deviceValue', 'rbacGroupId', 'rbacGroupName',
  'riskScore', 'exposureLevel', 'isAadJoined', 'aadDeviceId', 'machineTags', 'defenderAvStatus', 'onboardingStatus',
  'osArchitecture', 'managedBy', 'managedByStatus', 'ipAddresses', 'vmMetadata',
];

describe('machines', () => {
  let s: TestServer;
  let token: string;
  let linux: any;
  let win: any;
  before(async () => {
    s = await startTestServer();
    token = await s.token(['Machine.Read.All', 'Alert.Read.All']);
    linux = await s.seedMachine({
      computerDnsName: 'web-01.contoso.local', osPlatform: 'Linux', riskScore: 'High', machineTags: ['prod', 'web'],
      aadDeviceId: null, lastIpAddress: '10.1.2.3', healthStatus: 'Active',
    });
    win = await s.seedMachine({
      computerDnsName: 'pc1.contoso.local', aadDeviceId: '80fe8ff8-2624-418e-9591-41f0491218f9', healthStatus: 'Inactive',
      lastIpAddress: '10.9.9.9',
    });
    await s.store.recordMachineIp(linux.id, '10.1.2.3', nowTimestamp());
  });
  after(() => s.close());

  it('serves all 32 properties in live order', async () => {
    const r = await call(`${s.url}/api/machines/${linux.id}`, { token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['@odata.context', ...MACHINE_KEYS]);
    assert.equal(r.json['@odata.context'], `${s.url}/api/$metadata#Machines/$entity`);
    assert.equal(r.headers.get('odata-version'), '4.0');
    assert.deepEqual(r.json.machineTags, ['prod', 'web']);
  });

  it('looks a machine up by id, aadDeviceId or DNS name (case-insensitive)', async () => {
    for (const key of [win.id, win.id.toUpperCase(), win.aadDeviceId, 'PC1.contoso.LOCAL']) {
      const r = await call(`${s.url}/api/machines/${key}`, { token });
      assert.equal(r.status, 200, key);
      assert.equal(r.json.id, win.id);
    }
    const r = await call(`${s.url}/api/machines/nope.contoso.local`, { token });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.message, 'Machine nope.contoso.local was not found');
  });

  it('filters as Cortex sends it (raw $, raw quotes, + for space) and finds nothing briefly', async () => {
    const hit = await call(`${s.url}/api/v1.0/machines?$filter=computerDnsName+eq+'web-01.contoso.local'`, { token });
    assert.equal(hit.json.value.length, 1);
    assert.ok(hit.text.length > 100);
    const miss = await call(`${s.url}/api/v1.0/machines?$filter=computerDnsName+eq+'none'`, { token });
    assert.equal(miss.status, 200);
    assert.equal(miss.text, `{"@odata.context":"${s.url}/api/$metadata#Machines","value":[]}`);
    assert.ok(miss.text.length <= 100);
  });

  it('supports startswith, ne, tags and $top as clients send them', async () => {
    const sw = await call(`${s.url}/api/machines?$filter=startswith(computerDnsName,'web')`, { token });
    assert.deepEqual(sw.json.value.map((m: any) => m.id), [linux.id]);
    const ne = await call(`${s.url}/api/machines?$filter=healthStatus ne 'Active'&$top=100`, { token });
    assert.deepEqual(ne.json.value.map((m: any) => m.id), [win.id]);
    const tags = await call(`${s.url}/api/machines?$filter=machineTags/any(t: t eq 'web')`, { token });
    assert.deepEqual(tags.json.value.map((m: any) => m.id), [linux.id]);
    const risk = await call(`${s.url}/api/machines?%24filter=computerDnsName+eq+%27web-01.contoso.local%27+and+riskScore+eq+%27High%27`, { token });
    assert.equal(risk.json.value.length, 1);
    const all = await call(`${s.url}/api/machines?%24top=10000`, { token });
    assert.equal(all.json.value.length, 2);
  });

  it('findbyip finds machines seen with the IP within 15 minutes of the timestamp', async () => {
    const ts = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const r = await call(`${s.url}/api/v1.0/machines/findbyip(ip='10.1.2.3',timestamp=${ts})`, { token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.value.map((m: any) => m.id), [linux.id]);
    const old = await call(`${s.url}/api/machines/findbyip(ip='10.1.2.3',timestamp=2019-09-22T08:44:05Z)`, { token });
    assert.equal(old.status, 400);
    const badIp = await call(`${s.url}/api/machines/findbyip(ip='10.1.2',timestamp=${ts})`, { token });
    assert.equal(badIp.status, 400);
    assert.equal(badIp.json.error.code, 'InvalidIpAddress');
  });

  it('files/{sha1}/machines lists machines that reported the file; unknown hash → empty list', async () => {
    const h = randomBytes(20).toString('hex');
    await s.store.recordFileObservations(
      linux.id,
      [{ sha1: h, sha256: null, path: '/tmp/x', size: 3, signer: null, trusted: false, seenAt: nowTimestamp() }],
      false,
    );
    const r = await call(`${s.url}/api/files/${h.toUpperCase()}/machines`, { token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.value.map((m: any) => m.id), [linux.id]);
    const none = await call(`${s.url}/api/files/${randomBytes(20).toString('hex')}/machines`, { token });
    assert.deepEqual(none.json.value, []);
    const bad = await call(`${s.url}/api/files/abc/machines`, { token });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'InvalidHashValue');
  });

  it('alerts?$top=1 answers for connection tests', async () => {
    const r = await call(`${s.url}/api/alerts?$top=1`, { token });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.value, []);
  });

  it('$metadata is an EDM document', async () => {
    const r = await call(`${s.url}/api/$metadata`);
    assert.equal(r.status, 200);
    assert.match(r.text, /<EntityType Name="MachineAction">/);
  });
});
