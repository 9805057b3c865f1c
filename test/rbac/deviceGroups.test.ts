// Device groups through the API: ranked rules place machines, rank changes and retagging move them, and
// rbacGroupId / rbacGroupName on /api follow.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Machine } from '../../src/core/machines.ts';
import { call } from '../helpers/testServer.ts';
import { startRbacServer, type RbacServer } from './helpers.ts';

let s: RbacServer;
let manager: string;
let reader: string;

before(async () => {
  s = await startRbacServer();
  manager = await s.token(['Tourniquet.Rbac.Manage']);
  reader = await s.token(['Machine.Read.All']);
});
after(() => s.close());

async function createGroup(body: Record<string, unknown>): Promise<{ id: number; rank: number; machinesMoved: number }> {
  const r = await call(`${s.url}/tourniquet/v1/device-groups`, { method: 'POST', token: manager, body: JSON.stringify(body) });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function patchGroup(id: number, body: Record<string, unknown>): Promise<{ machinesMoved: number; rank: number }> {
  const r = await call(`${s.url}/tourniquet/v1/device-groups/${id}`, { method: 'PATCH', token: manager, body: JSON.stringify(body) });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function groupOf(m: Machine): Promise<[number, string | null]> {
  const r = await call(`${s.url}/api/machines/${m.id}`, { token: reader });
  assert.equal(r.status, 200, r.text);
  return [r.json.rbacGroupId, r.json.rbacGroupName];
}

describe('device groups place machines by rank', () => {
  let web1: Machine;
  let web2: Machine;
  let db1: Machine;
  let linuxWeb: number;
  let prod: number;

  before(async () => {
    web1 = await s.seedMachine({ computerDnsName: 'web-1.contoso.local', osPlatform: 'Linux', machineTags: [] });
    web2 = await s.seedMachine({ computerDnsName: 'web-2.contoso.local', osPlatform: 'Linux', machineTags: ['prod'] });
    db1 = await s.seedMachine({ computerDnsName: 'db-1.contoso.local', osPlatform: 'Windows11', machineTags: ['prod'] });
  });

  it('before any group exists machines are in no group (0, null), as MDE reports them', async () => {
    assert.deepEqual(await groupOf(web1), [0, null]);
  });

  it('creating groups re-places every machine; the lowest rank wins', async () => {
    const a = await createGroup({ name: 'Linux web', rule: { name: ['web-*'], osPlatform: ['Linux'] }, description: 'web tier' });
    linuxWeb = a.id;
    assert.equal(a.rank, 1);
    assert.equal(a.machinesMoved, 3, 'all three leave "no group": two to Linux web, one to Ungrouped devices');
    const b = await createGroup({ name: 'Prod', rule: { tags: ['prod'] } });
    prod = b.id;
    assert.equal(b.rank, 2);
    assert.deepEqual(await groupOf(web1), [linuxWeb, 'Linux web']);
    assert.deepEqual(await groupOf(web2), [linuxWeb, 'Linux web'], 'rank 1 beats rank 2');
    assert.deepEqual(await groupOf(db1), [prod, 'Prod']);
  });

  it('moving a group up re-ranks and moves the machines it now wins', async () => {
    const moved = await patchGroup(prod, { rank: 1 });
    assert.equal(moved.rank, 1);
    assert.equal(moved.machinesMoved, 1);
    assert.deepEqual(await groupOf(web2), [prod, 'Prod']);
    assert.deepEqual(await groupOf(web1), [linuxWeb, 'Linux web']);
    const list = await call(`${s.url}/tourniquet/v1/device-groups`, { token: manager });
    assert.deepEqual(
      list.json.value.map((g: { name: string; rank: number; builtIn: boolean }) => [g.name, g.rank, g.builtIn]),
      [
        ['Prod', 1, false],
        ['Linux web', 2, false],
        ['Ungrouped devices', 3, true],
      ],
    );
  });

  it('retagging a machine (what a device facts report does) moves it between groups', async () => {
    await s.store.updateMachine(web1.id, { machineTags: ['prod'] });
    assert.deepEqual(await groupOf(web1), [prod, 'Prod']);
    await s.store.updateMachine(web1.id, { machineTags: [] });
    assert.deepEqual(await groupOf(web1), [linuxWeb, 'Linux web']);
    await s.store.updateMachine(web1.id, { osPlatform: 'Windows11' });
    assert.deepEqual(await groupOf(web1), [0, 'Ungrouped devices']);
    await s.store.updateMachine(web1.id, { osPlatform: 'Linux' });
    // A full upsert (enrollment) is placed too, whatever group the writer put in the row.
    const current = (await s.store.getMachine(web1.id))!;
    await s.store.upsertMachine({ ...current, rbacGroupId: 999, rbacGroupName: 'forged' });
    assert.deepEqual(await groupOf(web1), [linuxWeb, 'Linux web']);
  });

  it('$filter on rbacGroupId and rbacGroupName follows the placement', async () => {
    const r = await call(`${s.url}/api/machines?$filter=rbacGroupId eq ${prod}&$count=true`, { token: reader });
    assert.deepEqual(r.json.value.map((m: { id: string }) => m.id).sort(), [web2.id, db1.id].sort());
    const byName = await call(`${s.url}/api/machines?$filter=rbacGroupName eq 'Linux web'`, { token: reader });
    assert.deepEqual(byName.json.value.map((m: { id: string }) => m.id), [web1.id]);
  });

  it('renaming and changing a rule re-place at once', async () => {
    await patchGroup(linuxWeb, { name: 'Web', rule: { name: ['web-*', 'db-*'] } });
    assert.deepEqual(await groupOf(web1), [linuxWeb, 'Web']);
    assert.deepEqual(await groupOf(db1), [prod, 'Prod'], 'Prod still ranks first');
  });

  it('domain and enroll-group rules', async () => {
    const inDomain = await s.seedMachine({ computerDnsName: 'kiosk-7', domain: 'retail.contoso', machineTags: [] });
    const enrolled = await s.seedMachine({ computerDnsName: 'pos-1.shop.local', enrollGroup: 'stores', machineTags: [] });
    const retail = await createGroup({ name: 'Retail', rule: { domain: ['retail.*'] } });
    const stores = await createGroup({ name: 'Stores', rule: { enrollGroup: ['stores'] }, rank: 1 });
    assert.deepEqual(await groupOf(inDomain), [retail.id, 'Retail']);
    assert.deepEqual(await groupOf(enrolled), [stores.id, 'Stores']);
  });

  it('deleting a group re-places its machines; ids are never reused', async () => {
    const temp = await createGroup({ name: 'Temp', rule: { name: ['db-*'] }, rank: 1 });
    assert.deepEqual(await groupOf(db1), [temp.id, 'Temp']);
    const del = await call(`${s.url}/tourniquet/v1/device-groups/${temp.id}`, { method: 'DELETE', token: manager });
    assert.equal(del.status, 200, del.text);
    assert.equal(del.json.machinesMoved, 1);
    assert.deepEqual(await groupOf(db1), [prod, 'Prod']);
    const next = await createGroup({ name: 'Temp', rule: { name: ['nothing-*'] } });
    assert.ok(next.id > temp.id, 'a new group never gets a deleted group’s id');
  });

  it('the built-in Ungrouped devices cannot be changed or deleted', async () => {
    for (const [method, body] of [['PATCH', '{"name":"x"}'], ['DELETE', undefined]] as const) {
      const r = await call(`${s.url}/tourniquet/v1/device-groups/0`, { method, token: manager, ...(body ? { body } : {}) });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error.message, /built in/);
    }
  });

  it('deleting every group returns machines to no group (0, null)', async () => {
    const list = await call(`${s.url}/tourniquet/v1/device-groups`, { token: manager });
    for (const g of list.json.value.filter((x: { builtIn: boolean }) => !x.builtIn)) {
      assert.equal((await call(`${s.url}/tourniquet/v1/device-groups/${g.id}`, { method: 'DELETE', token: manager })).status, 200);
    }
    for (const m of [web1, web2, db1]) assert.deepEqual(await groupOf(m), [0, null]);
  });
});
