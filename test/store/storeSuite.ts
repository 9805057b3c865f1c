// The behaviour every Store adapter must show, registered once per adapter (sqlite.test.ts, postgres.test.ts).
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { MachineAction, Transition } from '../../src/core/actions.ts';
import { ACTION_STATUSES, duplicateKey, HRESULT, isFinal, nextStatus } from '../../src/core/actions.ts';
import { ACTION_IN_PROGRESS, MdeError, ODataQueryError } from '../../src/core/errors.ts';
import { placeMachine, UNGROUPED_ID, UNGROUPED_NAME, type DeviceGroupRule } from '../../src/core/deviceGroups.ts';
import type { Machine } from '../../src/core/machines.ts';
import { BUILT_IN_ROLE_IDS, BUILT_IN_ROLES } from '../../src/core/rbac.ts';
import { millisToTimestamp } from '../../src/core/time.ts';
import type { ListQuery } from '../../src/core/query.ts';
import { GENESIS_HASH, verifyAuditChain } from '../../src/store/auditChain.ts';
import { RbacConflictError } from '../../src/store/rbacErrors.ts';
import type { AuthCodeRecord, RoleAssignmentRecord, RoleRecord, Store, StoreNotification, UserRecord } from '../../src/store/store.ts';
import {
  action,
  and,
  app,
  auditEntry,
  boolLit,
  cmp,
  dt,
  enrollToken,
  hex40,
  keyOf,
  machine,
  nil,
  not,
  num,
  or,
  query,
  signingKey,
  str,
  ts,
  vaultItem,
} from './fixtures.ts';

export interface StoreHarness {
  readonly name: string;
  /** A new store on a new, empty database. */
  open(): Promise<Store>;
  /** Another store instance on the same database as `s` (same file / same schema), as a second node would be. */
  openSibling(s: Store): Promise<Store>;
  /** Raw SQL on the store's database, bypassing the store (to tamper with rows). */
  exec(s: Store, sqlText: string): Promise<void>;
  /** Whether two instances on one database hear each other's notifications. */
  readonly crossInstanceNotifications: boolean;
  /** Drops every database the harness created. */
  cleanup(): Promise<void>;
}

function isActiveRequestAlreadyExists(e: unknown): boolean {
  return e instanceof MdeError && e.code === 'ActiveRequestAlreadyExists' && e.status === 400 && e.message === ACTION_IN_PROGRESS;
}

const ids = (xs: readonly { id: string }[]): string[] => xs.map((x) => x.id);
const pick = (m: Machine | null): [number, string | null] => [m!.rbacGroupId, m!.rbacGroupName];
const sorted = (xs: readonly string[]): string[] => [...xs].sort();

async function settle<T>(ps: Promise<T>[]): Promise<{ ok: T[]; errors: unknown[] }> {
  const rs = await Promise.allSettled(ps);
  return {
    ok: rs.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
    errors: rs.flatMap((r) => (r.status === 'rejected' ? [r.reason] : [])),
  };
}

function nextEvent(s: Store, timeoutMs = 3000): Promise<StoreNotification> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('no notification within timeout'));
    }, timeoutMs);
    const off = s.subscribe((n) => {
      clearTimeout(timer);
      off();
      resolve(n);
    });
  });
}

export function registerStoreSuite(h: StoreHarness): void {
  async function fresh(t: TestContext): Promise<Store> {
    const s = await h.open();
    t.after(() => s.close());
    return s;
  }
  async function sibling(t: TestContext, s: Store): Promise<Store> {
    const s2 = await h.openSibling(s);
    t.after(() => s2.close());
    return s2;
  }
  async function withMachine(s: Store, over: Partial<Machine> = {}): Promise<Machine> {
    const m = machine(over);
    await s.upsertMachine(m);
    return m;
  }

  after(() => h.cleanup());

  describe(`${h.name}: tenant, apps, signing keys`, () => {
    it('creates the tenant once; later calls return it without creating', async (t) => {
      const s = await fresh(t);
      const first = await s.getOrCreateTenant(() => ({ id: randomUUID(), name: 'Contoso', createdAt: ts(0) }));
      let called = false;
      const again = await s.getOrCreateTenant(() => {
        called = true;
        return { id: randomUUID(), name: 'Other', createdAt: ts(1) };
      });
      assert.deepEqual(again, first);
      assert.equal(called, false);
    });

    it('racing nodes agree on one tenant', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const got = await Promise.all(
        [s, s2, s, s2].map((x, i) => x.getOrCreateTenant(() => ({ id: randomUUID(), name: `T${i}`, createdAt: ts(i) }))),
      );
      for (const g of got) assert.deepEqual(g, got[0]);
    });

    it('stores, finds and lists apps; refuses duplicates and non-GUID ids', async (t) => {
      const s = await fresh(t);
      const a = app({ createdAt: ts(1) });
      const b = app({ createdAt: ts(0), disabled: true, roles: [] });
      await s.createApp(a);
      await s.createApp(b);
      assert.deepEqual(await s.getApp(a.clientId), a);
      assert.deepEqual(await s.getApp(b.clientId), b);
      assert.equal(await s.getApp(randomUUID()), null);
      assert.deepEqual(await s.listApps(), [b, a]);
      await assert.rejects(s.createApp({ ...a, name: 'dup' }));
      await assert.rejects(s.createApp(app({ clientId: 'not-a-guid' })), TypeError);
      assert.equal((await s.listApps()).length, 2);
    });

    it('keeps one active signing key; rotation retires then inserts', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const k1 = signingKey({ createdAt: ts(0) });
      const k2 = signingKey({ createdAt: ts(1) });
      await Promise.all([s.insertSigningKey(k1), s2.insertSigningKey(k2)]);
      const active = (await s.listSigningKeys()).filter((k) => k.status === 'active');
      assert.equal(active.length, 1, 'two racing nodes leave exactly one active key');
      const winner = active[0]!;
      await s.retireSigningKey(winner.kid, ts(10));
      const k3 = signingKey({ createdAt: ts(11) });
      await s.insertSigningKey(k3);
      const all = await s.listSigningKeys();
      assert.deepEqual(
        all.map((k) => [k.kid, k.status, k.retiredAt]),
        [
          [winner.kid, 'retired', ts(10)],
          [k3.kid, 'active', null],
        ],
      );
      assert.deepEqual(all[1], k3);
      await s.retireSigningKey('unknown', ts(12)); // no-op
      await s.insertSigningKey(k3); // same kid again: no-op
      assert.equal((await s.listSigningKeys()).length, 2);
    });
  });

  describe(`${h.name}: enroll tokens`, () => {
    it('finds by hash and counts uses', async (t) => {
      const s = await fresh(t);
      const tok = enrollToken({ group: 'linux-servers', maxUses: 2 });
      await s.createEnrollToken(tok);
      assert.deepEqual(await s.findEnrollTokenByHash(tok.tokenHash), tok);
      assert.equal(await s.findEnrollTokenByHash('0'.repeat(64)), null);
      assert.equal((await s.consumeEnrollToken(tok.tokenHash, ts(1)))?.uses, 1);
      assert.equal((await s.consumeEnrollToken(tok.tokenHash, ts(2)))?.uses, 2);
      assert.equal(await s.consumeEnrollToken(tok.tokenHash, ts(3)), null, 'used up');
      assert.equal((await s.findEnrollTokenByHash(tok.tokenHash))?.uses, 2);
    });

    it('refuses expired, revoked, unknown and zero-use tokens', async (t) => {
      const s = await fresh(t);
      const expiring = enrollToken({ expiresAt: ts(100) });
      const revoked = enrollToken();
      const zero = enrollToken({ maxUses: 0 });
      const unlimited = enrollToken({ maxUses: null });
      for (const x of [expiring, revoked, zero, unlimited]) await s.createEnrollToken(x);
      assert.ok(await s.consumeEnrollToken(expiring.tokenHash, ts(99)));
      assert.equal(await s.consumeEnrollToken(expiring.tokenHash, ts(100)), null, 'expiry instant is expired');
      assert.equal(await s.consumeEnrollToken(expiring.tokenHash, ts(101)), null);
      assert.equal(await s.revokeEnrollToken(revoked.id, ts(5)), true);
      assert.equal(await s.revokeEnrollToken(revoked.id, ts(6)), true, 'revoking again still reports the token exists');
      assert.equal((await s.findEnrollTokenByHash(revoked.tokenHash))?.revokedAt, ts(5), 'first revocation time kept');
      assert.equal(await s.consumeEnrollToken(revoked.tokenHash, ts(7)), null);
      assert.equal(await s.revokeEnrollToken(randomUUID(), ts(5)), false);
      assert.equal(await s.consumeEnrollToken(zero.tokenHash, ts(1)), null);
      assert.equal(await s.consumeEnrollToken('f'.repeat(64), ts(1)), null);
      for (let i = 1; i <= 5; i++) assert.equal((await s.consumeEnrollToken(unlimited.tokenHash, ts(i)))?.uses, i);
      await assert.rejects(s.createEnrollToken(enrollToken({ maxUses: -1 })), TypeError);
      await assert.rejects(s.createEnrollToken({ ...enrollToken(), tokenHash: unlimited.tokenHash }), 'hash is unique');
    });

    it('never exceeds maxUses under concurrent consumption from two nodes', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const tok = enrollToken({ maxUses: 5 });
      await s.createEnrollToken(tok);
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => (i % 2 ? s : s2).consumeEnrollToken(tok.tokenHash, ts(1))),
      );
      const granted = results.filter((r) => r !== null);
      assert.equal(granted.length, 5);
      assert.deepEqual(sorted(granted.map((g) => String(g!.uses))), ['1', '2', '3', '4', '5']);
      assert.equal((await s.findEnrollTokenByHash(tok.tokenHash))?.uses, 5);
    });
  });

  describe(`${h.name}: machines`, () => {
    it('upserts, reads back exactly, and replaces on a second upsert', async (t) => {
      const s = await fresh(t);
      const m = machine({
        machineTags: ['prod', 'Linux Servers'],
        vmMetadata: { vmId: 'vm-1', cloudProvider: 'Azure', resourceId: null, subscriptionId: null },
        osBuild: 19044,
        rbacGroupId: 7,
        rbacGroupName: 'Berlin',
        isAadJoined: true,
        aadDeviceId: randomUUID(),
      });
      await s.upsertMachine(m);
      assert.deepEqual(await s.getMachine(m.id), m);
      assert.deepEqual(await s.getMachine(m.id.toUpperCase()), m);
      const changed: Machine = { ...m, healthStatus: 'Inactive', machineTags: ['dev'], lastSeen: ts(50), protectionRunning: false };
      await s.upsertMachine(changed);
      assert.deepEqual(await s.getMachine(m.id), changed);
      assert.equal(await s.getMachine(hex40('nobody')), null);
      const tagged = await s.listMachines(query({ filter: { kind: 'any', field: 'machineTags', value: 'prod' } }));
      assert.deepEqual(tagged.items, [], 'old tags are gone from the tag index');
    });

    it('refuses machines with invalid ids or tags', async (t) => {
      const s = await fresh(t);
      await assert.rejects(s.upsertMachine(machine({ id: 'abc' })), TypeError);
      await assert.rejects(s.upsertMachine(machine({ id: 'g'.repeat(40) })), TypeError);
      await assert.rejects(s.upsertMachine(machine({ machineTags: [1 as unknown as string] })), TypeError);
      assert.equal((await s.listMachines(query({ count: true }))).count, 0);
    });

    it('resolves by MDE id, aadDeviceId, then DNS name (case-insensitive, most recently seen)', async (t) => {
      const s = await fresh(t);
      const aad = randomUUID();
      const a = await withMachine(s, { computerDnsName: 'web-01.contoso.com', lastSeen: ts(10), aadDeviceId: aad });
      const older = await withMachine(s, { computerDnsName: 'DB-01.contoso.com', lastSeen: ts(5) });
      const newer = await withMachine(s, { computerDnsName: 'db-01.Contoso.com', lastSeen: ts(20) });
      // A machine whose DNS name is another machine's id must not shadow that machine.
      await withMachine(s, { computerDnsName: a.id, lastSeen: ts(99) });
      assert.equal((await s.resolveMachine(a.id))?.id, a.id);
      assert.equal((await s.resolveMachine(a.id.toUpperCase()))?.id, a.id);
      assert.equal((await s.resolveMachine(aad.toUpperCase()))?.id, a.id);
      assert.equal((await s.resolveMachine('WEB-01.CONTOSO.COM'))?.id, a.id);
      assert.equal((await s.resolveMachine('db-01.contoso.com'))?.id, newer.id);
      assert.notEqual(newer.id, older.id);
      assert.equal(await s.resolveMachine('web-01'), null, 'no prefix matching');
      assert.equal(await s.resolveMachine(''), null);
      assert.equal(await s.resolveMachine(hex40('unknown')), null);
      assert.equal(await s.resolveMachine("x' or '1'='1"), null);
    });

    it('resolves names among the machines a caller may see', async (t) => {
      const s = await fresh(t);
      const east = (await s.createDeviceGroup({ name: 'East', description: '', rank: null, rule: { tags: ['east'] } }, ts(1))).group.id;
      const inEast = await withMachine(s, { computerDnsName: 'db-01.contoso.com', lastSeen: ts(5), machineTags: ['east'] });
      const ungrouped = await withMachine(s, { computerDnsName: 'DB-01.contoso.com', lastSeen: ts(20) });
      assert.equal((await s.getMachine(inEast.id))?.rbacGroupId, east);
      assert.equal((await s.resolveMachine('db-01.contoso.com'))?.id, ungrouped.id, 'everything visible: most recent');
      assert.equal((await s.resolveMachine('db-01.contoso.com', { rbacGroupIds: [east] }))?.id, inEast.id);
      assert.equal((await s.resolveMachine('db-01.contoso.com', { rbacGroupIds: [0] }))?.id, ungrouped.id);
      assert.equal(await s.resolveMachine(ungrouped.id, { rbacGroupIds: [east] }), null, 'an id outside the groups');
      assert.equal(await s.resolveMachine('db-01.contoso.com', { rbacGroupIds: [] }), null);
    });

    it('updates with a patch; the id cannot change; unknown id gives null', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s, { machineTags: ['a'] });
      const updated = await s.updateMachine(m.id, { healthStatus: 'Inactive', machineTags: ['b', 'b', 'c'], id: hex40('other') });
      assert.equal(updated?.id, m.id);
      assert.equal(updated?.healthStatus, 'Inactive');
      assert.deepEqual(await s.getMachine(m.id), updated);
      assert.equal(await s.getMachine(hex40('other')), null);
      const byTag = await s.listMachines(query({ filter: { kind: 'any', field: 'machineTags', value: 'c' } }));
      assert.deepEqual(ids(byTag.items), [m.id]);
      assert.equal(await s.updateMachine(hex40('missing'), { healthStatus: 'Active' }), null);
      await assert.rejects(s.updateMachine('nope', {}), TypeError);
    });

    it('concurrent patches to different fields are all kept', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const m = await withMachine(s);
      await Promise.all([
        s.updateMachine(m.id, { healthStatus: 'Inactive' }),
        s2.updateMachine(m.id, { agentVersion: '9.9.9' }),
        s.updateMachine(m.id, { riskScore: 'High' }),
        s2.updateMachine(m.id, { domain: 'contoso' }),
      ]);
      const got = await s.getMachine(m.id);
      assert.deepEqual(
        [got?.healthStatus, got?.agentVersion, got?.riskScore, got?.domain],
        ['Inactive', '9.9.9', 'High', 'contoso'],
      );
    });

    it('finds machines by IP within the window, respecting visibility', async (t) => {
      const s = await fresh(t);
      const a = await withMachine(s, { rbacGroupId: 1, lastSeen: ts(1) });
      const b = await withMachine(s, { rbacGroupId: 2, lastSeen: ts(2) });
      const c = await withMachine(s, { rbacGroupId: 1 });
      for (let i = 0; i <= 600; i += 60) await s.recordMachineIp(a.id, '10.1.1.1', ts(i)); // one 10-minute interval
      await s.recordMachineIp(b.id, '10.1.1.1', ts(3600));
      await s.recordMachineIp(c.id, '10.9.9.9', ts(300));
      await s.recordMachineIp(a.id, '10.1.1.1', ts(300)); // out of order, inside the interval: nothing new
      const around = (sec: number) => [ts(sec - 900), ts(sec + 900)] as const;
      assert.deepEqual(ids(await s.findMachinesByIp('10.1.1.1', ...around(300))), [a.id]);
      assert.deepEqual(ids(await s.findMachinesByIp('10.1.1.1', ...around(1400))), [a.id], 'interval end + 15 min');
      assert.deepEqual(ids(await s.findMachinesByIp('10.1.1.1', ...around(2500))), []);
      assert.deepEqual(ids(await s.findMachinesByIp('10.1.1.1', ts(0), ts(4000))), [b.id, a.id], 'most recently seen first');
      assert.deepEqual(ids(await s.findMachinesByIp('10.1.1.1', ts(0), ts(4000), { rbacGroupIds: [1] })), [a.id]);
      assert.deepEqual(await s.findMachinesByIp('10.1.1.1', ts(0), ts(4000), { rbacGroupIds: [] }), []);
      assert.deepEqual(await s.findMachinesByIp('10.1.1.2', ts(0), ts(4000)), []);
      await assert.rejects(s.recordMachineIp('bad', '10.1.1.1', ts(0)), TypeError);
      await assert.rejects(s.recordMachineIp(a.id, '', ts(0)), TypeError);
    });
  });

  describe(`${h.name}: listMachines ($filter, $orderby, paging, visibility)`, () => {
    async function seed(s: Store) {
      const aad = randomUUID();
      const m1 = await withMachine(s, {
        computerDnsName: 'Alpha.contoso.com',
        lastSeen: ts(30),
        firstSeen: ts(-300),
        osPlatform: 'Windows10',
        osBuild: 19044,
        rbacGroupId: 1,
        rbacGroupName: 'Berlin',
        riskScore: 'High',
        healthStatus: 'Active',
        machineTags: ['prod', 'web'],
        isAadJoined: true,
        aadDeviceId: aad,
        version: '21H2',
      });
      const m2 = await withMachine(s, {
        computerDnsName: 'beta.contoso.com',
        lastSeen: ts(20),
        firstSeen: ts(-200),
        osPlatform: 'Linux',
        osBuild: null,
        rbacGroupId: 2,
        rbacGroupName: 'Paris',
        riskScore: 'Low',
        healthStatus: 'Inactive',
        machineTags: ['prod'],
        version: null,
      });
      const m3 = await withMachine(s, {
        computerDnsName: 'gamma.fabrikam.com',
        lastSeen: ts(10),
        firstSeen: ts(-100),
        osPlatform: 'Linux',
        osBuild: 5,
        rbacGroupId: 1,
        rbacGroupName: 'Berlin',
        riskScore: null,
        healthStatus: 'Active',
        machineTags: ['Web'],
        version: '6.1',
      });
      return { m1, m2, m3, aad };
    }

    it('filters with every operator and keeps OData null semantics', async (t) => {
      const s = await fresh(t);
      const { m1, m2, m3, aad } = await seed(s);
      const cases: [string, ListQuery['filter'], string[]][] = [
        ['default order lastSeen desc', null, [m1.id, m2.id, m3.id]],
        ['dns eq, case-insensitive', cmp('computerDnsName', 'eq', str('ALPHA.CONTOSO.COM')), [m1.id]],
        ['dns ne', cmp('computerDnsName', 'ne', str('alpha.contoso.com')), [m2.id, m3.id]],
        ['id eq upper-case literal', cmp('id', 'eq', str(m2.id.toUpperCase())), [m2.id]],
        ['aadDeviceId eq', cmp('aadDeviceId', 'eq', str(aad.toUpperCase())), [m1.id]],
        ['osPlatform exact', cmp('osPlatform', 'eq', str('linux')), []],
        ['osPlatform eq', cmp('osPlatform', 'eq', str('Linux')), [m2.id, m3.id]],
        ['osBuild gt (null excluded)', cmp('osBuild', 'gt', num(5)), [m1.id]],
        ['osBuild ge', cmp('osBuild', 'ge', num(5)), [m1.id, m3.id]],
        ['osBuild lt', cmp('osBuild', 'lt', num(19044)), [m3.id]],
        ['osBuild le', cmp('osBuild', 'le', num(19044)), [m1.id, m3.id]],
        ['osBuild fractional', cmp('osBuild', 'gt', num(4.5)), [m1.id, m3.id]],
        ['osBuild ne includes null', cmp('osBuild', 'ne', num(5)), [m1.id, m2.id]],
        ['osBuild eq null', cmp('osBuild', 'eq', nil), [m2.id]],
        ['osBuild ne null', cmp('osBuild', 'ne', nil), [m1.id, m3.id]],
        ['gt null is false', cmp('osBuild', 'gt', nil), []],
        ['not (riskScore eq High) includes null', not(cmp('riskScore', 'eq', str('High'))), [m2.id, m3.id]],
        ['not-null column eq null', cmp('computerDnsName', 'eq', nil), []],
        ['not-null column ne null', cmp('computerDnsName', 'ne', nil), [m1.id, m2.id, m3.id]],
        ['lastSeen gt datetime', cmp('lastSeen', 'gt', dt(ts(15))), [m1.id, m2.id]],
        ['lastSeen le datetime', cmp('lastSeen', 'le', dt(ts(20))), [m2.id, m3.id]],
        ['firstSeen lt as ISO string', cmp('firstSeen', 'lt', str('2026-03-01T11:56:00Z')), [m1.id]],
        ['rbacGroupId eq', cmp('rbacGroupId', 'eq', num(1)), [m1.id, m3.id]],
        ['isAadJoined eq true', cmp('isAadJoined', 'eq', boolLit(true)), [m1.id]],
        ['isAadJoined ne true', cmp('isAadJoined', 'ne', boolLit(true)), [m2.id, m3.id]],
        ['in', { kind: 'in', field: 'riskScore', values: [str('High'), str('Low')] }, [m1.id, m2.id]],
        ['in with null', { kind: 'in', field: 'riskScore', values: [str('Low'), nil] }, [m2.id, m3.id]],
        ['in empty', { kind: 'in', field: 'riskScore', values: [] }, []],
        ['not in', not({ kind: 'in', field: 'version', values: [str('6.1')] }), [m1.id, m2.id]],
        ['in dns case-insensitive', { kind: 'in', field: 'computerDnsName', values: [str('BETA.contoso.com')] }, [m2.id]],
        ['startswith dns case-insensitive', { kind: 'startswith', field: 'computerDnsName', value: 'ALPHA.' }, [m1.id]],
        ['startswith exact field', { kind: 'startswith', field: 'osPlatform', value: 'Win' }, [m1.id]],
        ['startswith exact field, wrong case', { kind: 'startswith', field: 'osPlatform', value: 'win' }, []],
        ['startswith LIKE wildcards are literal', { kind: 'startswith', field: 'computerDnsName', value: '%' }, []],
        ['startswith underscore literal', { kind: 'startswith', field: 'computerDnsName', value: '_lpha' }, []],
        ['startswith empty', { kind: 'startswith', field: 'computerDnsName', value: '' }, [m1.id, m2.id, m3.id]],
        ['startswith on nullable', { kind: 'startswith', field: 'version', value: '2' }, [m1.id]],
        ['not startswith on nullable', not({ kind: 'startswith', field: 'version', value: '2' }), [m2.id, m3.id]],
        ['any tag', { kind: 'any', field: 'machineTags', value: 'prod' }, [m1.id, m2.id]],
        ['any tag is exact', { kind: 'any', field: 'machineTags', value: 'web' }, [m1.id]],
        ['not any', not({ kind: 'any', field: 'machineTags', value: 'prod' }), [m3.id]],
        [
          'nested and/or',
          or(and(cmp('osPlatform', 'eq', str('Linux')), cmp('healthStatus', 'eq', str('Active'))), cmp('riskScore', 'eq', str('High'))),
          [m1.id, m3.id],
        ],
        [
          'and binds inside or',
          and(cmp('rbacGroupId', 'eq', num(1)), or(cmp('osBuild', 'eq', num(5)), cmp('osBuild', 'eq', num(19044)))),
          [m1.id, m3.id],
        ],
        ['not not', not(not(cmp('healthStatus', 'eq', str('Inactive')))), [m2.id]],
        ['injection attempt is data', cmp('computerDnsName', 'eq', str("x' or '1'='1")), []],
      ];
      for (const [label, filter, expected] of cases) {
        const got = await s.listMachines(query({ filter }));
        assert.deepEqual(ids(got.items), expected, label);
      }
    });

    it('orders, pages and counts', async (t) => {
      const s = await fresh(t);
      const { m1, m2, m3 } = await seed(s);
      const order = async (field: string, direction: 'asc' | 'desc') =>
        ids((await s.listMachines(query({ orderBy: [{ field, direction }] }))).items);
      assert.deepEqual(await order('computerDnsName', 'asc'), [m1.id, m2.id, m3.id]);
      assert.deepEqual(await order('lastSeen', 'asc'), [m3.id, m2.id, m1.id]);
      assert.deepEqual(await order('osBuild', 'asc'), [m2.id, m3.id, m1.id], 'nulls first ascending');
      assert.deepEqual(await order('osBuild', 'desc'), [m1.id, m3.id, m2.id], 'nulls last descending');
      const two = await s.listMachines(
        query({ orderBy: [{ field: 'rbacGroupId', direction: 'asc' }, { field: 'lastSeen', direction: 'desc' }] }),
      );
      assert.deepEqual(ids(two.items), [m1.id, m3.id, m2.id]);
      const page = await s.listMachines(query({ top: 1, skip: 1, count: true }));
      assert.deepEqual(ids(page.items), [m2.id]);
      assert.equal(page.count, 3);
      const filtered = await s.listMachines(query({ filter: cmp('osPlatform', 'eq', str('Linux')), top: 1, count: true }));
      assert.equal(filtered.items.length, 1);
      assert.equal(filtered.count, 2);
      assert.equal((await s.listMachines(query({ count: false }))).count, null);
      const none = await s.listMachines(query({ top: 0, count: true }));
      assert.deepEqual([none.items.length, none.count], [0, 3]);
      assert.deepEqual((await s.listMachines(query({ skip: 10 }))).items, []);
    });

    it('shows only the visible device groups', async (t) => {
      const s = await fresh(t);
      const { m1, m2, m3 } = await seed(s);
      const r = await s.listMachines(query({ count: true }), { rbacGroupIds: [1] });
      assert.deepEqual(ids(r.items), [m1.id, m3.id]);
      assert.equal(r.count, 2);
      const f = await s.listMachines(query({ filter: cmp('id', 'eq', str(m2.id)), count: true }), { rbacGroupIds: [1] });
      assert.deepEqual([f.items, f.count], [[], 0]);
      assert.deepEqual(await s.listMachines(query({ count: true }), { rbacGroupIds: [] }), { items: [], count: 0 });
      assert.deepEqual(ids((await s.listMachines(query(), { rbacGroupIds: [1, 2] })).items), [m1.id, m2.id, m3.id]);
      await assert.rejects(s.listMachines(query(), { rbacGroupIds: [Number.NaN] }), TypeError);
    });

    it('rejects unknown fields, mismatched literals and bad paging', async (t) => {
      const s = await fresh(t);
      await seed(s);
      const bad: [string, Partial<ListQuery>][] = [
        ['unknown field', { filter: cmp('nope', 'eq', str('x')) }],
        ['prototype key', { filter: cmp('constructor', 'eq', str('x')) }],
        ['string vs number', { filter: cmp('osBuild', 'eq', str('5')) }],
        ['number vs string', { filter: cmp('computerDnsName', 'eq', num(5)) }],
        ['boolean vs string', { filter: cmp('isAadJoined', 'eq', str('true')) }],
        ['bad date string', { filter: cmp('lastSeen', 'gt', str('yesterday')) }],
        ['collection compared', { filter: cmp('machineTags', 'eq', str('prod')) }],
        ['any on scalar', { filter: { kind: 'any', field: 'computerDnsName', value: 'x' } }],
        ['startswith on number', { filter: { kind: 'startswith', field: 'osBuild', value: '1' } }],
        ['in with wrong type', { filter: { kind: 'in', field: 'rbacGroupId', values: [str('1')] } }],
        ['order by unknown', { orderBy: [{ field: 'nope', direction: 'asc' }] }],
        ['order by collection', { orderBy: [{ field: 'machineTags', direction: 'asc' }] }],
        ['order direction', { orderBy: [{ field: 'lastSeen', direction: 'sideways' as 'asc' }] }],
        ['top too big', { top: 10_001 }],
        ['top negative', { top: -1 }],
        ['top fractional', { top: 1.5 }],
        ['skip negative', { skip: -1 }],
        ['unknown node', { filter: { kind: 'regex' } as unknown as ListQuery['filter'] }],
      ];
      for (const [label, q] of bad) {
        await assert.rejects(s.listMachines(query(q)), ODataQueryError, label);
      }
      let deep: NonNullable<ListQuery['filter']> = cmp('rbacGroupId', 'eq', num(1));
      for (let i = 0; i < 500; i++) deep = not(deep);
      await assert.rejects(s.listMachines(query({ filter: deep })), ODataQueryError, 'nesting limit');
    });
  });

  describe(`${h.name}: machine actions`, () => {
    it('creates durably-readable actions and enforces the duplicate rule', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const a = action(m);
      const created = await s.createAction(a, keyOf(a));
      assert.deepEqual(created, a);
      assert.deepEqual(await s.getAction(a.id), a, 'readable immediately');
      assert.deepEqual(await s.getAction(a.id.toUpperCase()), a);
      const dup = action(m, { relatedFileInfo: a.relatedFileInfo });
      await assert.rejects(s.createAction(dup, keyOf(dup)), isActiveRequestAlreadyExists);
      assert.equal(await s.getAction(dup.id), null, 'nothing written for the duplicate');
      const other = action(m);
      await s.createAction(other, keyOf(other));
      const isolate = action(m, { type: 'Isolate', relatedFileInfo: null, scope: 'Full' });
      await s.createAction(isolate, keyOf(isolate));
      const isolate2 = action(m, { type: 'Isolate', relatedFileInfo: null, scope: 'Selective' });
      await assert.rejects(s.createAction(isolate2, keyOf(isolate2)), isActiveRequestAlreadyExists);
      // The same file on another machine is not a duplicate.
      const m2 = await withMachine(s);
      const elsewhere = action(m2, { relatedFileInfo: a.relatedFileInfo });
      await s.createAction(elsewhere, keyOf(elsewhere));
      // Once final, the key is free again.
      const c = await s.transitionAction(a.id, { kind: 'cancel' }, ts(5));
      assert.equal(c?.changed, true);
      const again = action(m, { relatedFileInfo: a.relatedFileInfo });
      assert.deepEqual(await s.createAction(again, keyOf(again)), again);
      // Restores of two vault items holding the same file are not duplicates; the same item twice is.
      const restore = () => action(m, { type: 'RestoreQuarantinedFile', relatedFileInfo: a.relatedFileInfo });
      const [r1, r2, r1again] = [restore(), restore(), restore()];
      await s.createAction(r1, duplicateKey(m.id, r1.type, 'item-1'));
      await s.createAction(r2, duplicateKey(m.id, r2.type, 'item-2'));
      await assert.rejects(s.createAction(r1again, duplicateKey(m.id, r1again.type, 'item-1')), isActiveRequestAlreadyExists);
    });

    it('commits an action with its audit entry, chained with separately appended entries; a duplicate writes neither', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const first = await s.appendAudit(auditEntry({ at: ts(1), action: 'token.issue' }));
      const batch = Array.from({ length: 6 }, () => action(m));
      await Promise.all(
        batch.map((a) => s.createAction(a, keyOf(a), auditEntry({ at: ts(2), action: 'machineAction.create', target: a.id }))),
      );
      const dup = action(m, { relatedFileInfo: batch[0]!.relatedFileInfo });
      await assert.rejects(
        s.createAction(dup, keyOf(dup), auditEntry({ at: ts(3), action: 'machineAction.create', target: dup.id })),
        isActiveRequestAlreadyExists,
      );
      await s.appendAudit(auditEntry({ at: ts(4), action: 'machineAction.cancel' }));
      const all = await s.listAudit({ top: 100, skip: 0 });
      assert.equal(all[0]!.id, first.id);
      const created = all.filter((e) => e.action === 'machineAction.create').map((e) => e.target);
      assert.deepEqual(new Set(created), new Set(batch.map((a) => a.id)), 'one entry per inserted action, none for the duplicate');
      assert.equal(all.length, 8);
      assert.deepEqual(verifyAuditChain(all), { ok: true });
    });

    it('normalizes ids and the SHA-1 to lower case', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const sha = hex40('upper').toUpperCase();
      const a = action(m, { id: randomUUID().toUpperCase(), relatedFileInfo: { fileIdentifier: sha, fileIdentifierType: 'Sha1' } });
      const created = await s.createAction(a, keyOf(a));
      assert.equal(created.id, a.id.toLowerCase());
      assert.equal(created.relatedFileInfo?.fileIdentifier, sha.toLowerCase());
      assert.deepEqual(await s.getAction(a.id), created);
    });

    it('lets exactly one of many concurrent duplicates through, from two nodes, alongside distinct ones', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const m = await withMachine(s);
      const sha = { fileIdentifier: hex40('same'), fileIdentifierType: 'Sha1' as const };
      const dups = Array.from({ length: 20 }, () => action(m, { relatedFileInfo: sha }));
      const distinct = Array.from({ length: 20 }, () => action(m));
      const all = [...dups, ...distinct];
      const r = await settle(all.map((a, i) => (i % 2 ? s : s2).createAction(a, keyOf(a))));
      assert.equal(r.ok.length, 21);
      assert.equal(r.errors.length, 19);
      assert.ok(r.errors.every(isActiveRequestAlreadyExists));
      const listed = await s.listActions(query({ count: true }));
      assert.equal(listed.count, 21);
    });

    it('fails only the bad item of a batch', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const good = Array.from({ length: 5 }, () => action(m));
      // Its key sorts after every good one: the good rows are written first in the batch, and must be rolled
      // back with it and written again alone (not reported as duplicates of themselves).
      const orphan = action({ id: 'f'.repeat(40), computerDnsName: 'x' });
      const r = await settle([...good, orphan].map((a) => s.createAction(a, keyOf(a))));
      assert.equal(r.ok.length, 5);
      assert.equal(r.errors.length, 1);
      assert.ok(!isActiveRequestAlreadyExists(r.errors[0]), 'a missing machine is not reported as a duplicate');
      for (const g of good) assert.ok(await s.getAction(g.id));
    });

    it('refuses malformed actions', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const bad: [string, MachineAction, string][] = [
        ['id', action(m, { id: 'x' }), 'k1'],
        ['machineId', action(m, { machineId: 'x' }), 'k2'],
        ['type', action(m, { type: 'Reboot' as MachineAction['type'] }), 'k3'],
        ['status', action(m, { status: 'Done' as MachineAction['status'] }), 'k4'],
        ['errorHResult', action(m, { errorHResult: 1.5 }), 'k5'],
        ['empty key', action(m), ''],
      ];
      for (const [label, a, key] of bad) await assert.rejects(s.createAction(a, key), TypeError, label);
      assert.equal((await s.listActions(query({ count: true }))).count, 0);
    });

    it('refuses timestamps that are not in the fixed-width stored form, everywhere', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const a = action(m);
      await s.createAction(a, keyOf(a));
      const tok = enrollToken();
      await s.createEnrollToken(tok);
      const iso = '2026-03-01T12:00:00.123Z'; // 3 digits: would sort after 12:00:00.1230000Z
      const calls: [string, () => Promise<unknown>][] = [
        ['createAction', () => { const b = action(m, { creationDateTimeUtc: iso }); return s.createAction(b, keyOf(b)); }],
        ['createAction expiresAt', () => { const b = action(m, { expiresAt: '2026-03-08' }); return s.createAction(b, keyOf(b)); }],
        ['transitionAction', () => s.transitionAction(a.id, { kind: 'cancel' }, iso)],
        ['transition patch', () => s.transitionAction(a.id, { kind: 'cancel' }, ts(1), { cancellationDateTimeUtc: iso })],
        ['expireDueActions', () => s.expireDueActions(iso, 10)],
        ['consumeEnrollToken', () => s.consumeEnrollToken(tok.tokenHash, iso)],
        ['revokeEnrollToken', () => s.revokeEnrollToken(tok.id, iso)],
        ['createEnrollToken', () => s.createEnrollToken(enrollToken({ expiresAt: iso }))],
        ['upsertMachine', () => s.upsertMachine(machine({ lastSeen: iso }))],
        ['updateMachine', () => s.updateMachine(m.id, { firstSeen: iso })],
        ['recordMachineIp', () => s.recordMachineIp(m.id, '10.0.0.9', iso)],
        ['findMachinesByIp', () => s.findMachinesByIp('10.0.0.9', iso, ts(1))],
        ['appendAudit', () => s.appendAudit(auditEntry({ at: iso }))],
        ['listAudit', () => s.listAudit({ top: 1, skip: 0, since: iso })],
      ];
      for (const [label, call] of calls) await assert.rejects(call(), TypeError, label);
      const got = await s.getAction(a.id);
      assert.deepEqual(got, a, 'the action was not touched');
      assert.equal((await s.findEnrollTokenByHash(tok.tokenHash))?.revokedAt, null);
      assert.deepEqual(await s.listAudit({ top: 10, skip: 0 }), []);
    });

    it('stores an action created in a final state without holding its key', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const done = action(m, { status: 'Succeeded' });
      await s.createAction(done, keyOf(done));
      const next = action(m, { relatedFileInfo: done.relatedFileInfo });
      await s.createAction(next, keyOf(next));
    });

    it('applies every transition exactly as nextStatus says, writing only on change', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const transitions: Transition[] = [
        { kind: 'deviceAck' },
        { kind: 'deviceResult', outcome: 'Succeeded' },
        { kind: 'deviceResult', outcome: 'Failed' },
        { kind: 'cancel' },
        { kind: 'expire' },
      ];
      for (const from of ACTION_STATUSES) {
        for (const tr of transitions) {
          const a = action(m, { status: from });
          await s.createAction(a, keyOf(a));
          const patch = { cancellationRequestor: 'analyst@contoso.com', cancellationComment: 'stop', cancellationDateTimeUtc: ts(9) };
          const r = await s.transitionAction(a.id, tr, ts(9), patch);
          const expected = nextStatus(from, tr);
          const label = `${from} --${tr.kind}${'outcome' in tr ? `:${tr.outcome}` : ''}-->`;
          assert.ok(r, label);
          if (expected === null) {
            assert.equal(r.changed, false, label);
            assert.deepEqual(r.action, a, `${label} nothing written`);
            assert.deepEqual(await s.getAction(a.id), a, label);
          } else {
            assert.equal(r.changed, true, label);
            assert.equal(r.action.status, expected, label);
            assert.equal(r.action.lastUpdateDateTimeUtc, ts(9), label);
            assert.equal(r.action.cancellationComment, 'stop', `${label} patch written on change`);
            const hresult = expected === 'TimeOut' ? HRESULT.timeout : expected === 'Failed' ? HRESULT.fail : 0;
            assert.equal(r.action.errorHResult, hresult, `${label} errorHResult`);
            assert.deepEqual(await s.getAction(a.id), r.action, label);
            // The duplicate key is held exactly while the action is active.
            const probe = action(m, { relatedFileInfo: a.relatedFileInfo });
            if (isFinal(expected)) await s.createAction(probe, keyOf(probe));
            else await assert.rejects(s.createAction(probe, keyOf(probe)), isActiveRequestAlreadyExists, label);
            if (isFinal(expected)) await s.transitionAction(probe.id, { kind: 'cancel' }, ts(9));
            else await s.transitionAction(a.id, { kind: 'cancel' }, ts(9));
          }
        }
      }
      assert.equal(await s.transitionAction(randomUUID(), { kind: 'cancel' }, ts(1)), null);
    });

    it('keeps Cancelled when a late device result arrives, and records the result', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const a = action(m);
      await s.createAction(a, keyOf(a));
      await s.transitionAction(a.id, { kind: 'deviceAck' }, ts(1));
      const c = await s.transitionAction(a.id, { kind: 'cancel' }, ts(2), {
        cancellationRequestor: 'analyst@contoso.com',
        cancellationComment: 'false positive',
        cancellationDateTimeUtc: ts(2),
      });
      assert.equal(c?.action.status, 'Cancelled');
      const late = await s.transitionAction(a.id, { kind: 'deviceResult', outcome: 'Failed' }, ts(3), { errorHResult: HRESULT.fail });
      assert.equal(late?.changed, false);
      assert.equal(late?.action.status, 'Cancelled');
      assert.equal(late?.action.errorHResult, 0, 'patch not written when nothing changed');
      const result = { outcome: 'Failed' as const, errorHResult: HRESULT.fail, reason: 'late', reportedAt: ts(3), applied: false, detail: { items: [1] } };
      await s.recordDeviceResult(a.id, result);
      const got = await s.getAction(a.id);
      assert.equal(got?.status, 'Cancelled');
      assert.equal(got?.lastUpdateDateTimeUtc, ts(2));
      assert.deepEqual(got?.deviceResult, result);
      await s.recordDeviceResult(randomUUID(), result); // unknown id: nothing to do
    });

    it("a device's result moves the action and stores its record in one write; a late one is kept, not applied", async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const a = action(m);
      await s.createAction(a, keyOf(a));
      await s.transitionAction(a.id, { kind: 'deviceAck' }, ts(1));
      const r = { outcome: 'Failed' as const, errorHResult: HRESULT.fail, reason: 'refused', reportedAt: ts(2), detail: { files: 1 } };
      const moved = await s.applyDeviceResult(a.id, ts(2), r);
      assert.equal(moved?.changed, true);
      assert.equal(moved?.action.status, 'Failed');
      assert.equal(moved?.action.errorHResult, HRESULT.fail);
      // The action as the write returned it already holds the record: no reader sees one without the other.
      assert.deepEqual(moved?.action.deviceResult, { ...r, applied: true });
      const late = await s.applyDeviceResult(a.id, ts(3), { ...r, outcome: 'Succeeded', errorHResult: 0, reportedAt: ts(3) });
      assert.equal(late?.changed, false);
      const got = await s.getAction(a.id);
      assert.equal(got?.status, 'Failed');
      assert.equal(got?.lastUpdateDateTimeUtc, ts(2));
      assert.deepEqual(got?.deviceResult, { ...r, outcome: 'Succeeded', errorHResult: 0, reportedAt: ts(3), applied: false });
      assert.equal(await s.applyDeviceResult(randomUUID(), ts(3), r), null);
    });

    it('20 parallel cancels from two nodes: exactly one changes the action', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const m = await withMachine(s);
      const a = action(m);
      await s.createAction(a, keyOf(a));
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? s : s2).transitionAction(a.id, { kind: 'cancel' }, ts(i + 1), { cancellationComment: `c${i}` }),
        ),
      );
      const changed = results.filter((r) => r?.changed);
      assert.equal(changed.length, 1);
      const got = await s.getAction(a.id);
      assert.equal(got?.status, 'Cancelled');
      assert.equal(got?.cancellationComment, changed[0]!.action.cancellationComment);
    });

    it('a cancel racing a device result resolves to exactly one final state', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const m = await withMachine(s);
      for (let i = 0; i < 10; i++) {
        const a = action(m);
        await s.createAction(a, keyOf(a));
        const [c, r] = await Promise.all([
          s.transitionAction(a.id, { kind: 'cancel' }, ts(1)),
          s2.transitionAction(a.id, { kind: 'deviceResult', outcome: 'Succeeded' }, ts(1)),
        ]);
        assert.equal(Number(c?.changed) + Number(r?.changed), 1);
        const final = (await s.getAction(a.id))?.status;
        assert.equal(final, c?.changed ? 'Cancelled' : 'Succeeded');
      }
    });

    it('lists active actions of a machine oldest first, and counts by status', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const other = await withMachine(s);
      const a1 = action(m, { creationDateTimeUtc: ts(2) });
      const a2 = action(m, { creationDateTimeUtc: ts(1) });
      const a3 = action(m, { creationDateTimeUtc: ts(3) });
      const a4 = action(other);
      for (const a of [a1, a2, a3, a4]) await s.createAction(a, keyOf(a));
      await s.transitionAction(a1.id, { kind: 'deviceAck' }, ts(4));
      await s.transitionAction(a3.id, { kind: 'deviceResult', outcome: 'Succeeded' }, ts(4));
      assert.deepEqual(ids(await s.activeActionsForMachine(m.id.toUpperCase())), [a2.id, a1.id]);
      assert.deepEqual(await s.countActionsByStatus(), {
        Pending: 2,
        InProgress: 1,
        Succeeded: 1,
        Failed: 0,
        TimeOut: 0,
        Cancelled: 0,
      });
    });
  });

  describe(`${h.name}: listActions`, () => {
    async function seed(s: Store) {
      const m1 = await withMachine(s, { computerDnsName: 'Alpha.contoso.com', rbacGroupId: 1 });
      const m2 = await withMachine(s, { computerDnsName: 'beta.contoso.com', rbacGroupId: 2 });
      const sha = hex40('evil');
      const a1 = action(m1, {
        creationDateTimeUtc: ts(10),
        lastUpdateDateTimeUtc: ts(10),
        relatedFileInfo: { fileIdentifier: sha, fileIdentifierType: 'Sha1' },
        requestor: 'XSOAR',
      });
      const a2 = action(m2, {
        creationDateTimeUtc: ts(20),
        lastUpdateDateTimeUtc: ts(20),
        relatedFileInfo: { fileIdentifier: sha, fileIdentifierType: 'Sha1' },
      });
      const a3 = action(m1, { type: 'Isolate', scope: 'Full', relatedFileInfo: null, creationDateTimeUtc: ts(30), lastUpdateDateTimeUtc: ts(30) });
      // Same creation time as a2: the id breaks the tie, so paging is stable.
      const a4 = action(m2, { type: 'RunAntiVirusScan', scope: 'Quick', relatedFileInfo: null, creationDateTimeUtc: ts(20), lastUpdateDateTimeUtc: ts(20) });
      for (const a of [a1, a2, a3, a4]) await s.createAction(a, keyOf(a));
      await s.transitionAction(a1.id, { kind: 'deviceResult', outcome: 'Failed' }, ts(40), { errorHResult: HRESULT.fileNotFound });
      const tied = [a2.id, a4.id].sort();
      return { m1, m2, sha, a1, a2, a3, a4, tied };
    }

    it('filters, orders newest first by default, pages and counts', async (t) => {
      const s = await fresh(t);
      const { m1, sha, a1, a2, a3, a4, tied } = await seed(s);
      const cases: [string, ListQuery['filter'], string[]][] = [
        ['default order', null, [a3.id, ...tied, a1.id]],
        ['status eq', cmp('status', 'eq', str('Pending')), [a3.id, ...tied]],
        ['status ne', cmp('status', 'ne', str('Pending')), [a1.id]],
        ['type in', { kind: 'in', field: 'type', values: [str('Isolate'), str('RunAntiVirusScan')] }, [a3.id, a4.id]],
        ['machineId upper-case literal', cmp('machineId', 'eq', str(m1.id.toUpperCase())), [a3.id, a1.id]],
        ['fileIdentifier', cmp('fileIdentifier', 'eq', str(sha.toUpperCase())), [a2.id, a1.id]],
        ['fileIdentifier ne includes actions without a file', cmp('fileIdentifier', 'ne', str(sha)), [a3.id, a4.id]],
        ['scope eq null', cmp('scope', 'eq', nil), [a2.id, a1.id]],
        ['computerDnsName case-insensitive', cmp('computerDnsName', 'eq', str('ALPHA.contoso.com')), [a3.id, a1.id]],
        ['requestor exact', cmp('requestor', 'eq', str('XSOAR')), [a1.id]],
        ['errorHResult', cmp('errorHResult', 'eq', num(HRESULT.fileNotFound)), [a1.id]],
        ['errorHResult lt 0', cmp('errorHResult', 'lt', num(0)), [a1.id]],
        ['creation range', and(cmp('creationDateTimeUtc', 'ge', dt(ts(20))), cmp('creationDateTimeUtc', 'lt', dt(ts(30)))), tied],
        ['lastUpdate gt', cmp('lastUpdateDateTimeUtc', 'gt', dt(ts(35))), [a1.id]],
        ['requestSource', cmp('requestSource', 'eq', str('PublicApi')), [a3.id, ...tied, a1.id]],
        ['id eq', cmp('id', 'eq', str(a4.id.toUpperCase())), [a4.id]],
        ['startswith id', { kind: 'startswith', field: 'id', value: a3.id.slice(0, 8).toUpperCase() }, [a3.id]],
        [
          'XSOAR DNF',
          or(
            and(cmp('machineId', 'eq', str(m1.id)), cmp('status', 'eq', str('Pending'))),
            and(cmp('type', 'eq', str('RunAntiVirusScan')), cmp('status', 'eq', str('Pending'))),
          ),
          [a3.id, a4.id],
        ],
      ];
      for (const [label, filter, expected] of cases) {
        assert.deepEqual(ids((await s.listActions(query({ filter }))).items), expected, label);
      }
      const asc = await s.listActions(query({ orderBy: [{ field: 'creationDateTimeUtc', direction: 'asc' }] }));
      assert.deepEqual(ids(asc.items), [a1.id, ...tied, a3.id]);
      const byType = await s.listActions(query({ orderBy: [{ field: 'type', direction: 'desc' }] }));
      assert.deepEqual(ids(byType.items).slice(0, 2).sort(), [a1.id, a2.id].sort());
      const page = await s.listActions(query({ top: 2, skip: 1, count: true }));
      assert.deepEqual(ids(page.items), tied);
      assert.equal(page.count, 4);
      await assert.rejects(s.listActions(query({ filter: cmp('machineTags', 'eq', str('x')) })), ODataQueryError);
      await assert.rejects(s.listActions(query({ filter: cmp('creationDateTimeUtc', 'gt', num(1)) })), ODataQueryError);
    });

    it("shows only actions on the caller's device groups", async (t) => {
      const s = await fresh(t);
      const { a1, a3, a2, a4, tied } = await seed(s);
      const vis = await s.listActions(query({ count: true }), { rbacGroupIds: [1] });
      assert.deepEqual(ids(vis.items), [a3.id, a1.id]);
      assert.equal(vis.count, 2);
      const hidden = await s.listActions(query({ filter: cmp('id', 'eq', str(a2.id)), count: true }), { rbacGroupIds: [1] });
      assert.deepEqual([hidden.items, hidden.count], [[], 0]);
      assert.deepEqual(await s.listActions(query({ count: true }), { rbacGroupIds: [] }), { items: [], count: 0 });
      assert.deepEqual(ids((await s.listActions(query(), { rbacGroupIds: [2] })).items), tied);
      assert.ok(a4);
    });
  });

  describe(`${h.name}: expiry`, () => {
    it('expires due active actions once, with TimeOut and the timeout HRESULT', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const due1 = action(m, { expiresAt: ts(100) });
      const due2 = action(m, { expiresAt: ts(50) });
      const notYet = action(m, { expiresAt: ts(101) });
      const done = action(m, { expiresAt: ts(10), status: 'Succeeded' });
      const running = action(m, { expiresAt: ts(60) });
      for (const a of [due1, due2, notYet, done, running]) await s.createAction(a, keyOf(a));
      await s.transitionAction(running.id, { kind: 'deviceAck' }, ts(1));
      const expired = await s.expireDueActions(ts(100), 100);
      assert.deepEqual(ids(expired), [due2.id, running.id, due1.id], 'oldest expiry first');
      for (const e of expired) {
        assert.equal(e.status, 'TimeOut');
        assert.equal(e.errorHResult, HRESULT.timeout);
        assert.equal(e.lastUpdateDateTimeUtc, ts(100));
        assert.deepEqual(await s.getAction(e.id), e);
      }
      assert.deepEqual(await s.expireDueActions(ts(100), 100), []);
      assert.equal((await s.getAction(done.id))?.status, 'Succeeded');
      assert.equal((await s.getAction(notYet.id))?.status, 'Pending');
      // The key is free after TimeOut.
      const again = action(m, { relatedFileInfo: due1.relatedFileInfo });
      await s.createAction(again, keyOf(again));
      await assert.rejects(s.expireDueActions(ts(100), 0), TypeError);
      await assert.rejects(s.expireDueActions(ts(100), 1.5), TypeError);
    });

    it('honours the limit', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const all = Array.from({ length: 7 }, (_, i) => action(m, { expiresAt: ts(i) }));
      for (const a of all) await s.createAction(a, keyOf(a));
      assert.deepEqual(ids(await s.expireDueActions(ts(100), 3)), ids(all.slice(0, 3)));
      assert.deepEqual(ids(await s.expireDueActions(ts(100), 3)), ids(all.slice(3, 6)));
      assert.deepEqual(ids(await s.expireDueActions(ts(100), 3)), ids(all.slice(6)));
    });

    it('expires each action exactly once under parallel callers on two nodes', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const m = await withMachine(s);
      const all = Array.from({ length: 120 }, (_, i) => action(m, { expiresAt: ts(i % 10) }));
      await Promise.all(all.map((a) => s.createAction(a, keyOf(a))));
      const rounds = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? s : s2).expireDueActions(ts(100), 15)));
      let got = rounds.flat();
      // Whatever the first wave left (callers that found nothing to lock), a second wave finishes.
      got = got.concat((await Promise.all([s.expireDueActions(ts(100), 1000), s2.expireDueActions(ts(100), 1000)])).flat());
      assert.equal(got.length, all.length, 'every action reported once');
      assert.equal(new Set(ids(got)).size, all.length, 'no action reported twice');
      assert.equal((await s.countActionsByStatus()).TimeOut, all.length);
    });

    it('an expiry racing a cancel: one of them wins, never both', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const m = await withMachine(s);
      const all = Array.from({ length: 30 }, () => action(m, { expiresAt: ts(0) }));
      for (const a of all) await s.createAction(a, keyOf(a));
      const [expired, cancels] = await Promise.all([
        s.expireDueActions(ts(10), 1000),
        Promise.all(all.map((a) => s2.transitionAction(a.id, { kind: 'cancel' }, ts(10)))),
      ]);
      const cancelled = cancels.filter((c) => c?.changed).map((c) => c!.action.id);
      assert.equal(expired.length + cancelled.length, all.length);
      const exp = new Set(ids(expired));
      assert.ok(cancelled.every((id) => !exp.has(id)));
    });
  });

  describe(`${h.name}: file observations and vault`, () => {
    it('records sightings, answers seen/notSeen/unknown, and lists machines for a file', async (t) => {
      const s = await fresh(t);
      const m1 = await withMachine(s, { rbacGroupId: 1, lastSeen: ts(2) });
      const m2 = await withMachine(s, { rbacGroupId: 2, lastSeen: ts(1) });
      const m3 = await withMachine(s);
      const sha = hex40('payload');
      const other = hex40('other');
      const obs = (sha1: string, path: string, over = {}) => ({
        sha1,
        sha256: null,
        path,
        size: 10,
        signer: null,
        trusted: false,
        seenAt: ts(0),
        ...over,
      });
      await s.recordFileObservations(m1.id, [obs(sha.toUpperCase(), '/tmp/a'), obs(sha, '/opt/a', { size: 5_000_000_000 })], false);
      await s.recordFileObservations(m2.id, [obs(other, '/bin/x')], true);
      assert.equal(await s.fileSeenOnMachine(m1.id, sha), 'seen');
      assert.equal(await s.fileSeenOnMachine(m1.id, other), 'unknown', 'no complete inventory from m1');
      assert.equal(await s.fileSeenOnMachine(m2.id, sha.toUpperCase()), 'notSeen');
      assert.equal(await s.fileSeenOnMachine(m2.id, other), 'seen');
      assert.equal(await s.fileSeenOnMachine(m3.id, sha), 'unknown');
      const paths = await s.fileObservationsForMachine(m1.id, sha);
      assert.deepEqual(paths.map((p) => [p.path, p.size, p.sha1]), [
        ['/opt/a', 5_000_000_000, sha],
        ['/tmp/a', 10, sha],
      ]);
      // A later report updates the same (sha1, path); repeated rows in one report are fine.
      await s.recordFileObservations(m1.id, [obs(sha, '/tmp/a', { size: 11, seenAt: ts(5), trusted: true, signer: 'PackageManager' }), obs(sha, '/tmp/a', { size: 12, seenAt: ts(6) })], false);
      const updated = (await s.fileObservationsForMachine(m1.id, sha)).find((p) => p.path === '/tmp/a');
      assert.deepEqual(updated, { sha1: sha, sha256: null, path: '/tmp/a', size: 12, signer: null, trusted: false, seenAt: ts(6) });
      await s.recordFileObservations(m2.id, [obs(sha, '/home/u/a')], false);
      assert.deepEqual(ids(await s.machinesForFile(sha.toUpperCase())), [m1.id, m2.id]);
      assert.deepEqual(ids(await s.machinesForFile(sha, { rbacGroupIds: [2] })), [m2.id]);
      assert.deepEqual(await s.machinesForFile(sha, { rbacGroupIds: [] }), []);
      assert.deepEqual(await s.machinesForFile(hex40('never')), []);
      // A complete inventory replaces what was known.
      await s.recordFileObservations(m1.id, [obs(other, '/x')], true);
      assert.equal(await s.fileSeenOnMachine(m1.id, sha), 'notSeen');
      assert.deepEqual(ids(await s.machinesForFile(sha)), [m2.id]);
      await s.recordFileObservations(m1.id, [], true);
      assert.equal(await s.fileSeenOnMachine(m1.id, other), 'notSeen');
    });

    it("createAction refuses, inside its batch, a file the machine's complete inventory lacks; nothing is written", async (t) => {
      const s = await fresh(t);
      const inventoried = await withMachine(s);
      const unknown = await withMachine(s);
      const held = hex40('held');
      const obs = { sha1: held, sha256: null, path: '/bin/held', size: 1, signer: null, trusted: false, seenAt: ts(0) };
      await s.recordFileObservations(inventoried.id, [obs], true);
      const about = (m: Machine, sha1: string) => action(m, { relatedFileInfo: { fileIdentifier: sha1, fileIdentifierType: 'Sha1' } });
      const message = (m: Machine, sha1: string) => ({ fileNotSeenMessage: `Sha1 ${sha1} was not found in machine ${m.id}` });
      const lacking = about(inventoried, hex40('lacking'));
      const batch = [
        about(inventoried, held.toUpperCase()),
        lacking,
        about(unknown, hex40('lacking')), // no complete inventory: allowed
      ];
      const outcomes = await Promise.allSettled(
        batch.map((a) =>
          s.createAction(a, keyOf(a), auditEntry({ target: a.id }), message(a.machineId === inventoried.id ? inventoried : unknown, a.relatedFileInfo!.fileIdentifier)),
        ),
      );
      assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
      const err = (outcomes[1] as PromiseRejectedResult).reason as MdeError;
      assert.equal(err.status, 404);
      assert.equal(err.message, `Sha1 ${lacking.relatedFileInfo!.fileIdentifier} was not found in machine ${inventoried.id}`);
      assert.equal(await s.getAction(lacking.id), null);
      const entries = await s.listAudit({ top: 100, skip: 0 });
      assert.equal(entries.filter((e) => e.target === lacking.id).length, 0, 'no audit entry for the refused action');
      assert.equal(entries.filter((e) => e.target === batch[0]!.id || e.target === batch[2]!.id).length, 2);
      // Without the option the rule is not applied (other action types, vault restores).
      const plain = about(inventoried, hex40('lacking-2'));
      assert.equal((await s.createAction(plain, keyOf(plain))).id, plain.id);
      await assert.rejects(s.createAction(action(inventoried, { relatedFileInfo: null }), 'k', undefined, { fileNotSeenMessage: 'x' }), TypeError);
    });

    it('refuses malformed observations without writing any of the report', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const good = { sha1: hex40('g'), sha256: null, path: '/a', size: 1, signer: null, trusted: false, seenAt: ts(0) };
      await assert.rejects(s.recordFileObservations(m.id, [good, { ...good, sha1: 'zz' }], true), TypeError);
      await assert.rejects(s.recordFileObservations(m.id, [{ ...good, size: -1 }], false), TypeError);
      await assert.rejects(s.recordFileObservations(m.id, [{ ...good, path: '' }], false), TypeError);
      await assert.rejects(s.recordFileObservations('bad', [good], false), TypeError);
      assert.equal(await s.fileSeenOnMachine(m.id, good.sha1), 'unknown');
    });

    it('upserts and lists vault items', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s);
      const v1 = vaultItem(m.id, { quarantinedAt: ts(2) });
      const v2 = vaultItem(m.id, { quarantinedAt: ts(1), detail: null, sha256: hex40('a') + hex40('b').slice(0, 24) });
      await s.upsertVaultItems([v1, v2]);
      assert.deepEqual(await s.listVaultItems(m.id), [v2, v1]);
      const restored = { ...v1, state: 'restored' as const, detail: { by: 'analyst' } };
      await s.upsertVaultItems([restored]);
      assert.deepEqual(await s.listVaultItems(m.id.toUpperCase()), [v2, restored]);
      await s.upsertVaultItems([]);
      assert.deepEqual(await s.listVaultItems(hex40('none')), []);
      await assert.rejects(s.upsertVaultItems([{ ...v1, state: 'lost' as 'purged' }]), TypeError);
      await assert.rejects(s.upsertVaultItems([{ ...v1, sha1: 'x' }]), TypeError);
      await assert.rejects(s.upsertVaultItems([{ ...v1, itemId: '' }]), TypeError);
    });
  });

  describe(`${h.name}: audit log`, () => {
    it('chains entries from the genesis hash and lists them', async (t) => {
      const s = await fresh(t);
      const e1 = await s.appendAudit(auditEntry({ at: ts(1), action: 'token.issue' }));
      const e2 = await s.appendAudit(auditEntry({ at: ts(2), detail: undefined }));
      const e3 = await s.appendAudit(auditEntry({ at: ts(3), result: 'failure', status: 400, detail: { z: 1, a: { y: [2, 1] } } }));
      assert.equal(e1.id, 1);
      assert.equal(e1.prevHash, GENESIS_HASH);
      assert.equal(e2.prevHash, e1.hash);
      assert.equal(e3.prevHash, e2.hash);
      assert.equal(e2.detail, null);
      const all = await s.listAudit({ top: 100, skip: 0 });
      assert.deepEqual(all, [e1, e2, e3]);
      assert.deepEqual(verifyAuditChain(all), { ok: true });
      assert.deepEqual(await s.listAudit({ top: 1, skip: 1 }), [e2]);
      assert.deepEqual(await s.listAudit({ top: 10, skip: 0, since: ts(2) }), [e2, e3]);
      assert.deepEqual(await s.listAudit({ top: 10, skip: 0, action: 'token.issue' }), [e1]);
      assert.deepEqual(verifyAuditChain([e2, e3], e1.hash), { ok: true }, 'a page verifies from its predecessor');
      await assert.rejects(s.listAudit({ top: -1, skip: 0 }), TypeError);
    });

    it('detects a changed, deleted or re-hashed entry', async (t) => {
      const s = await fresh(t);
      for (let i = 0; i < 5; i++) await s.appendAudit(auditEntry({ at: ts(i) }));
      assert.deepEqual(verifyAuditChain(await s.listAudit({ top: 100, skip: 0 })), { ok: true });
      await h.exec(s, `update audit_log set actor_name = 'someone else' where id = 3`);
      const changed = verifyAuditChain(await s.listAudit({ top: 100, skip: 0 }));
      assert.deepEqual(changed, { ok: false, badId: 3, reason: 'hash does not match the entry' });
      await h.exec(s, `delete from audit_log where id = 3`);
      const deleted = verifyAuditChain(await s.listAudit({ top: 100, skip: 0 }));
      assert.equal(deleted.ok, false);
      assert.equal(!deleted.ok && deleted.badId, 4);
      await h.exec(s, `update audit_log set detail = '{"b":2}' where id = 5`);
      const rest = await s.listAudit({ top: 100, skip: 0 });
      const e4 = rest.find((e) => e.id === 4)!;
      const e5 = rest.find((e) => e.id === 5)!;
      assert.equal(verifyAuditChain([e5], e4.hash).ok, false, 'changed detail');
    });

    it('stays one correct chain under concurrent appends from two nodes', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const written = await Promise.all(
        Array.from({ length: 60 }, (_, i) => (i % 2 ? s : s2).appendAudit(auditEntry({ at: ts(i), target: `t${i}` }))),
      );
      const all = await s.listAudit({ top: 1000, skip: 0 });
      assert.equal(all.length, 60);
      assert.deepEqual(all.map((e) => e.id), Array.from({ length: 60 }, (_, i) => i + 1));
      assert.deepEqual(verifyAuditChain(all), { ok: true });
      const byId = new Map(all.map((e) => [e.id, e] as const));
      for (const w of written) assert.deepEqual(byId.get(w.id), w, 'each caller got the stored entry');
    });

    it('rejects a malformed entry alone', async (t) => {
      const s = await fresh(t);
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      const r = await settle([
        s.appendAudit(auditEntry()),
        s.appendAudit(auditEntry({ actorType: 'robot' as 'app' })),
        s.appendAudit(auditEntry({ result: 'maybe' as 'success' })),
        s.appendAudit(auditEntry({ action: '' })),
        s.appendAudit(auditEntry({ status: 2.5 })),
        s.appendAudit(auditEntry({ detail: circular })),
        s.appendAudit(auditEntry()),
      ]);
      assert.equal(r.ok.length, 2);
      assert.equal(r.errors.length, 5);
      assert.deepEqual(verifyAuditChain(await s.listAudit({ top: 10, skip: 0 })), { ok: true });
    });
  });

  describe(`${h.name}: users, roles, role assignments (RBAC)`, () => {
    const user = (over: Partial<UserRecord> = {}): UserRecord => ({
      oid: randomUUID(),
      upn: `u-${randomUUID().slice(0, 8)}@contoso.com`,
      displayName: 'User',
      passwordHash: 'scrypt$32768$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==',
      enabled: true,
      failedLogins: 0,
      lockedUntil: null,
      createdAt: ts(0),
      updatedAt: ts(0),
      ...over,
    });
    const role = (over: Partial<RoleRecord> = {}): RoleRecord => ({
      id: randomUUID(),
      name: `Role ${randomUUID().slice(0, 8)}`,
      description: '',
      permissions: ['View data'],
      builtIn: false,
      createdAt: ts(0),
      updatedAt: ts(0),
      ...over,
    });
    const assignment = (over: Partial<RoleAssignmentRecord> & Pick<RoleAssignmentRecord, 'assignee' | 'roleId'>): RoleAssignmentRecord => ({
      id: randomUUID(),
      assigneeKind: 'user',
      allGroups: true,
      deviceGroupIds: [],
      createdAt: ts(0),
      updatedAt: ts(0),
      ...over,
    });
    const conflict = (kind: string) => (e: unknown) => e instanceof RbacConflictError && e.kind === kind;

    it('stores users; UPNs are unique and found case-insensitively; bad ids refused', async (t) => {
      const s = await fresh(t);
      const u = user({ upn: 'Alice@Contoso.com' });
      await s.createUser(u);
      assert.deepEqual(await s.getUser(u.oid), u);
      assert.deepEqual(await s.getUser(u.oid.toUpperCase()), u);
      assert.deepEqual(await s.findUserByUpn('alice@contoso.COM'), u);
      assert.equal(await s.findUserByUpn("x' or '1'='1"), null);
      await assert.rejects(s.createUser(user({ upn: 'ALICE@contoso.com' })), conflict('duplicate'));
      await assert.rejects(s.createUser(user({ oid: 'nope' })), TypeError);
      const b = user({ upn: 'bob@contoso.com' });
      await s.createUser(b);
      assert.deepEqual((await s.listUsers()).map((x) => x.upn), ['Alice@Contoso.com', 'bob@contoso.com']);
      await assert.rejects(s.updateUser(b.oid, { upn: 'alice@contoso.com' }, ts(1)), conflict('duplicate'));
      const changed = await s.updateUser(b.oid, { displayName: 'Bob', enabled: false }, ts(2));
      assert.deepEqual(changed, { ...b, displayName: 'Bob', enabled: false, updatedAt: ts(2) });
      assert.equal(await s.updateUser(randomUUID(), { displayName: 'x' }, ts(2)), null);
      assert.equal(await s.deleteUser(b.oid), true);
      assert.equal(await s.deleteUser(b.oid), false);
      assert.equal(await s.getUser(b.oid), null);
    });

    it('counts wrong passwords atomically across nodes and locks at the threshold', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const u = user();
      await s.createUser(u);
      const four = await Promise.all(Array.from({ length: 4 }, (_, i) => (i % 2 ? s : s2).recordLoginFailure(u.oid, ts(1), 5, ts(900))));
      assert.deepEqual(four.map((x) => x!.failedLogins).sort(), [1, 2, 3, 4]);
      assert.equal((await s.getUser(u.oid))!.lockedUntil, null);
      const fifth = await s2.recordLoginFailure(u.oid, ts(2), 5, ts(900));
      assert.equal(fifth!.lockedUntil, ts(900));
      assert.equal(fifth!.failedLogins, 0, 'the count restarts with the lock');
      await s.recordLoginFailure(u.oid, ts(3), 5, ts(901));
      await s.recordLoginSuccess(u.oid, ts(4));
      const after = (await s.getUser(u.oid))!;
      assert.deepEqual([after.failedLogins, after.lockedUntil], [0, null]);
      assert.equal(await s.recordLoginFailure(randomUUID(), ts(1), 5, ts(900)), null);
      await assert.rejects(s.recordLoginFailure(u.oid, ts(1), 0, ts(900)), TypeError);
      await assert.rejects(s.recordLoginFailure(u.oid, '2026-01-01T00:00:00Z', 5, ts(900)), TypeError);
    });

    it('has the built-in roles; custom roles are unique by name; built-ins and assigned roles are protected', async (t) => {
      const s = await fresh(t);
      const builtIn = await s.listRoles();
      assert.deepEqual(
        builtIn.map((r) => [r.id, r.name, r.builtIn]),
        BUILT_IN_ROLES.map((r) => [r.id, r.name, true]).sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
      );
      const r = role({ name: 'Tier 2', permissions: ['View data', 'Active remediation actions'] });
      await s.createRole(r);
      assert.deepEqual(await s.findRoleByName('TIER 2'), r);
      assert.deepEqual(await s.getRole(r.id), r);
      await assert.rejects(s.createRole(role({ name: 'tier 2' })), conflict('duplicate'));
      await assert.rejects(s.createRole(role({ name: 'security READER' })), conflict('duplicate'));
      const updated = await s.updateRole(r.id, { permissions: ['View data'] }, ts(5));
      assert.deepEqual(updated!.permissions, ['View data']);
      assert.equal(updated!.updatedAt, ts(5));
      await assert.rejects(s.updateRole(BUILT_IN_ROLE_IDS.reader, { name: 'x' }, ts(5)), conflict('builtIn'));
      await assert.rejects(s.deleteRole(BUILT_IN_ROLE_IDS.reader), conflict('builtIn'));
      const u = user();
      await s.createUser(u);
      await s.upsertRoleAssignment(assignment({ assignee: u.oid, roleId: r.id }));
      await assert.rejects(s.deleteRole(r.id), conflict('inUse'));
      assert.equal(await s.deleteRole(randomUUID()), false);
    });

    it('assignments: one per (assignee, role), replaced on re-assignment; references checked; who gets what', async (t) => {
      const s = await fresh(t);
      const u = user();
      await s.createUser(u);
      const g1 = (await s.createDeviceGroup({ name: 'G1', description: '', rank: null, rule: { tags: ['g1'] } }, ts(1))).group.id;
      const g2 = (await s.createDeviceGroup({ name: 'G2', description: '', rank: null, rule: { tags: ['g2'] } }, ts(1))).group.id;
      const first = await s.upsertRoleAssignment(assignment({ assignee: u.oid.toUpperCase(), roleId: BUILT_IN_ROLE_IDS.reader, allGroups: false, deviceGroupIds: [g2, g1, g1] }));
      assert.equal(first.assignee, u.oid);
      assert.deepEqual(first.deviceGroupIds, [g1, g2]);
      const again = await s.upsertRoleAssignment(assignment({ assignee: u.oid, roleId: BUILT_IN_ROLE_IDS.reader, allGroups: false, deviceGroupIds: [0] }));
      assert.equal(again.id, first.id);
      assert.equal(again.createdAt, first.createdAt);
      assert.deepEqual((await s.getRoleAssignment(first.id))!.deviceGroupIds, [0]);
      await assert.rejects(s.upsertRoleAssignment(assignment({ assignee: u.oid, roleId: randomUUID() })), conflict('missingReference'));
      await assert.rejects(s.upsertRoleAssignment(assignment({ assignee: randomUUID(), roleId: BUILT_IN_ROLE_IDS.reader })), conflict('missingReference'));
      await assert.rejects(
        s.upsertRoleAssignment(assignment({ assignee: u.oid, roleId: BUILT_IN_ROLE_IDS.responder, allGroups: false, deviceGroupIds: [987654] })),
        conflict('missingReference'),
      );
      await assert.rejects(s.upsertRoleAssignment(assignment({ assignee: 'x', roleId: BUILT_IN_ROLE_IDS.reader, assigneeKind: 'robot' as never })), TypeError);

      const entraGroup = randomUUID();
      await s.upsertRoleAssignment(assignment({ assigneeKind: 'group', assignee: entraGroup.toUpperCase(), roleId: BUILT_IN_ROLE_IDS.responder, allGroups: false, deviceGroupIds: [g1] }));
      await s.upsertRoleAssignment(assignment({ assigneeKind: 'group', assignee: 'SOC-Team', roleId: BUILT_IN_ROLE_IDS.reader }));
      await s.upsertRoleAssignment(assignment({ assigneeKind: 'upn', assignee: 'Ext@Fabrikam.com', roleId: BUILT_IN_ROLE_IDS.administrator }));
      const mine = await s.assignmentsFor({ userOid: u.oid });
      assert.deepEqual(mine.map((a) => [a.roleName, a.permissions, a.deviceGroupIds]), [['Security reader', ['View data'], [0]]]);
      const ext = await s.assignmentsFor({ groups: [entraGroup, 'soc-team', 'SOC-Team'], upn: 'EXT@fabrikam.com' });
      assert.deepEqual(ext.map((a) => a.roleName).sort(), ['Security reader', 'Security responder', 'Tourniquet Administrator']);
      assert.deepEqual(await s.assignmentsFor({}), []);
      assert.deepEqual(await s.assignmentsFor({ groups: [] }), []);

      // Deleting a device group takes it out of every assignment; an assignment left with no group reaches nothing.
      await s.deleteDeviceGroup(g1);
      const responder = (await s.listRoleAssignments({ assigneeKind: 'group', assignee: entraGroup }))[0]!;
      assert.deepEqual([responder.allGroups, responder.deviceGroupIds], [false, []]);
      assert.equal((await s.listRoleAssignments({ roleId: BUILT_IN_ROLE_IDS.administrator })).length, 1);
      assert.equal(await s.deleteRoleAssignment(responder.id), true);
      assert.equal(await s.deleteRoleAssignment(responder.id), false);
      await s.deleteUser(u.oid);
      assert.deepEqual(await s.listRoleAssignments({ assigneeKind: 'user' }), [], "a user's assignments go with it");
    });
  });

  describe(`${h.name}: device groups and machine placement`, () => {
    const group = (name: string, rule: DeviceGroupRule, rank: number | null = null) => ({ name, description: '', rank, rule });

    it('leaves writers’ values alone until a group exists; then every write is placed by the rules', async (t) => {
      const s = await fresh(t);
      const groups = await s.listDeviceGroups();
      assert.deepEqual(groups.map((g) => [g.id, g.name, g.rank, g.builtIn, g.rule]), [[0, 'Ungrouped devices', 1, true, null]]);
      const m = await withMachine(s, { computerDnsName: 'web-1.contoso.com', rbacGroupId: 7, rbacGroupName: 'Legacy' });
      assert.equal((await s.getMachine(m.id))!.rbacGroupId, 7);
      const created = await s.createDeviceGroup(group('Web', { name: ['web-*'] }), ts(1));
      assert.equal(created.moved, 1);
      assert.deepEqual(created.group, { id: created.group.id, name: 'Web', description: '', rank: 1, rule: { name: ['web-*'] }, builtIn: false, createdAt: ts(1), updatedAt: ts(1) });
      assert.deepEqual(pick(await s.getMachine(m.id)), [created.group.id, 'Web']);
      const other = await withMachine(s, { computerDnsName: 'db-1', rbacGroupId: 7, rbacGroupName: 'Legacy' });
      assert.deepEqual(pick(await s.getMachine(other.id)), [UNGROUPED_ID, UNGROUPED_NAME]);
      const retagged = await s.updateMachine(other.id, { computerDnsName: 'web-9' });
      assert.deepEqual(pick(retagged), [created.group.id, 'Web'], 'updateMachine returns the placed machine');
      assert.deepEqual(pick(await s.getMachine(other.id)), [created.group.id, 'Web']);
    });

    it('ranks: insert at a position, move, delete; ranks stay 1..n; ids never reused', async (t) => {
      const s = await fresh(t);
      const m = await withMachine(s, { computerDnsName: 'web-1', machineTags: ['prod'] });
      const a = (await s.createDeviceGroup(group('A', { name: ['web-*'] }), ts(1))).group;
      const b = (await s.createDeviceGroup(group('B', { tags: ['prod'] }, 1), ts(2))).group;
      const c = (await s.createDeviceGroup(group('C', { tags: ['none'] }, 99), ts(3))).group;
      const order = async () => (await s.listDeviceGroups()).map((g) => [g.name, g.rank]);
      assert.deepEqual(await order(), [['B', 1], ['A', 2], ['C', 3], ['Ungrouped devices', 4]]);
      assert.deepEqual(pick(await s.getMachine(m.id)), [b.id, 'B']);
      const moved = await s.updateDeviceGroup(a.id, { rank: 1 }, ts(4));
      assert.equal(moved!.moved, 1);
      assert.deepEqual(await order(), [['A', 1], ['B', 2], ['C', 3], ['Ungrouped devices', 4]]);
      assert.deepEqual(pick(await s.getMachine(m.id)), [a.id, 'A']);
      const renamed = await s.updateDeviceGroup(a.id, { name: 'A2', rule: { name: ['db-*'] } }, ts(5));
      assert.equal(renamed!.group.name, 'A2');
      assert.deepEqual(pick(await s.getMachine(m.id)), [b.id, 'B']);
      assert.deepEqual((await s.deleteDeviceGroup(b.id))!, { moved: 1 });
      assert.deepEqual(await order(), [['A2', 1], ['C', 2], ['Ungrouped devices', 3]]);
      assert.deepEqual(pick(await s.getMachine(m.id)), [UNGROUPED_ID, UNGROUPED_NAME]);
      const d = (await s.createDeviceGroup(group('D', { name: ['x'] }), ts(6))).group;
      assert.ok(d.id > c.id);
      assert.equal(await s.deleteDeviceGroup(b.id), null);
      assert.equal(await s.updateDeviceGroup(b.id, { name: 'x' }, ts(7)), null);
      await s.deleteDeviceGroup(a.id);
      await s.deleteDeviceGroup(c.id);
      await s.deleteDeviceGroup(d.id);
      assert.deepEqual(pick(await s.getMachine(m.id)), [0, null], 'no group left: back to "no group"');
    });

    it('refuses duplicate names and changes to the built-in group', async (t) => {
      const s = await fresh(t);
      const a = (await s.createDeviceGroup(group('Berlin', { name: ['b*'] }), ts(1))).group;
      await assert.rejects(s.createDeviceGroup(group('BERLIN', { name: ['x'] }), ts(1)), (e) => e instanceof RbacConflictError && e.kind === 'duplicate');
      await assert.rejects(s.createDeviceGroup(group('ungrouped devices', { name: ['x'] }), ts(1)), (e) => e instanceof RbacConflictError);
      const b = (await s.createDeviceGroup(group('Paris', { name: ['p*'] }), ts(1))).group;
      await assert.rejects(s.updateDeviceGroup(b.id, { name: 'berlin' }, ts(2)), (e) => e instanceof RbacConflictError && e.kind === 'duplicate');
      await assert.rejects(s.updateDeviceGroup(UNGROUPED_ID, { name: 'x' }, ts(2)), (e) => e instanceof RbacConflictError && e.kind === 'builtIn');
      await assert.rejects(s.deleteDeviceGroup(UNGROUPED_ID), (e) => e instanceof RbacConflictError && e.kind === 'builtIn');
      assert.equal((await s.getDeviceGroup(a.id))!.name, 'Berlin');
      assert.equal(await s.getDeviceGroup(Number.NaN), null);
    });

    it('machine writes racing a rule change on another node all end up placed by the final rules', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const ms = await Promise.all(Array.from({ length: 12 }, (_, i) => withMachine(s, { computerDnsName: `web-${i}`, machineTags: [] })));
      await s.createDeviceGroup(group('Prod', { tags: ['prod'] }), ts(1));
      const writes = ms.map((m, i) => s2.updateMachine(m.id, { machineTags: i % 2 ? ['prod'] : [] }));
      const change = s.createDeviceGroup(group('Web', { name: ['web-*'] }, 1), ts(2));
      await Promise.all([...writes, change]);
      const rules = (await s.listDeviceGroups()).filter((g) => !g.builtIn).map((g) => ({ id: g.id, name: g.name, rank: g.rank, rule: g.rule! }));
      for (const m of ms) {
        const now = (await s.getMachine(m.id))!;
        const want = placeMachine(rules, now);
        assert.deepEqual(pick(now), [want.rbacGroupId, want.rbacGroupName]);
        assert.equal(now.rbacGroupName, 'Web');
      }
    });
  });

  describe(`${h.name}: authorization codes and public clients`, () => {
    const code = (over: Partial<AuthCodeRecord> = {}): AuthCodeRecord => ({
      codeHash: createHash('sha256').update(randomUUID()).digest('hex'),
      clientId: randomUUID(),
      redirectUri: 'https://console.example.org/cb',
      codeChallenge: 'c'.repeat(43),
      userOid: randomUUID(),
      audience: 'https://api.securitycenter.microsoft.com',
      scopes: ['Machine.Read'],
      createdAt: ts(0),
      expiresAt: millisToTimestamp(Date.now() + 600_000),
      usedAt: null,
      ...over,
    });

    it('redeems a code exactly once, even when two nodes race; tells used from expired from unknown', async (t) => {
      const s = await fresh(t);
      const s2 = await sibling(t, s);
      const c = code();
      await s.createAuthCode(c);
      const now = millisToTimestamp(Date.now());
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? s : s2).redeemAuthCode(c.codeHash, now)));
      assert.equal(results.filter((r) => r.outcome === 'redeemed').length, 1);
      assert.equal(results.filter((r) => r.outcome === 'alreadyUsed').length, 7);
      const won = results.find((r) => r.outcome === 'redeemed')!;
      assert.deepEqual(won.outcome === 'redeemed' ? { ...won.code, usedAt: null } : null, c);
      const expired = code({ expiresAt: ts(10) });
      await s.createAuthCode(expired);
      assert.equal((await s.redeemAuthCode(expired.codeHash, ts(10))).outcome, 'expired', 'the expiry instant is expired');
      assert.equal((await s.redeemAuthCode('0'.repeat(64), now)).outcome, 'unknown');
      await assert.rejects(s.createAuthCode(code({ codeHash: 'not-hex' })), TypeError);
    });

    it('keeps a public client’s flag and redirect URIs; confidential apps read back unchanged', async (t) => {
      const s = await fresh(t);
      const pub = app({ publicClient: true, redirectUris: ['https://console.example.org/cb', 'http://127.0.0.1:8400/'] });
      await s.createApp(pub);
      assert.deepEqual(await s.getApp(pub.clientId), pub);
      const conf = app();
      await s.createApp(conf);
      assert.deepEqual(await s.getApp(conf.clientId), conf);
    });
  });

  describe(`${h.name}: notifications and lifecycle`, () => {
    it('delivers to its own subscribers, stops after unsubscribe, and refuses malformed notifications', async (t) => {
      const s = await fresh(t);
      const got = nextEvent(s);
      const n: StoreNotification = { channel: 'action', machineId: hex40('m'), actionId: randomUUID() };
      await s.publish(n);
      assert.deepEqual(await got, n);
      const seen: StoreNotification[] = [];
      const off = s.subscribe((x) => seen.push(x));
      const throwing = s.subscribe(() => {
        throw new Error('subscriber bug');
      });
      const warned = new Promise((r) => process.once('warning', r));
      const after1 = nextEvent(s);
      await s.publish({ channel: 'machine', machineId: hex40('m') });
      await after1;
      await warned;
      off();
      throwing();
      const after2 = nextEvent(s);
      await s.publish({ channel: 'machine', machineId: hex40('n') });
      await after2;
      assert.deepEqual(seen, [{ channel: 'machine', machineId: hex40('m') }]);
      await assert.rejects(s.publish({ channel: 'other' as 'action', machineId: 'x' }), TypeError);
      await assert.rejects(s.publish({ channel: 'action', machineId: '' }), TypeError);
      await assert.rejects(s.publish({ channel: 'action', machineId: 'x', actionId: 5 as unknown as string }), TypeError);
    });

    if (h.crossInstanceNotifications) {
      it('delivers across store instances (nodes), to every subscriber', async (t) => {
        const s = await fresh(t);
        const s2 = await sibling(t, s);
        const onOther = nextEvent(s2);
        const onSelf = nextEvent(s);
        const n: StoreNotification = { channel: 'action', machineId: hex40('x'), actionId: randomUUID() };
        await s.publish(n);
        assert.deepEqual(await onOther, n);
        assert.deepEqual(await onSelf, n);
      });

      it('does not hear another database schema', async (t) => {
        const s = await fresh(t);
        const elsewhere = await fresh(t);
        const heard: StoreNotification[] = [];
        s.subscribe((n) => heard.push(n));
        const own = nextEvent(elsewhere);
        await elsewhere.publish({ channel: 'machine', machineId: hex40('e') });
        await own;
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(heard, []);
      });
    }

    it('commits queued writes before close resolves', async (t) => {
      const s = await h.open();
      const m = machine();
      await s.upsertMachine(m);
      const acts = Array.from({ length: 50 }, () => action(m));
      const creating = acts.map((a) => s.createAction(a, keyOf(a)));
      const auditing = Array.from({ length: 10 }, () => s.appendAudit(auditEntry()));
      const closing = s.close();
      await Promise.all([...creating, ...auditing]);
      await closing;
      await s.close(); // idempotent
      const reopened = await h.openSibling(s);
      t.after(() => reopened.close());
      assert.equal((await reopened.listActions(query({ count: true }))).count, 50);
      assert.deepEqual(verifyAuditChain(await reopened.listAudit({ top: 100, skip: 0 })), { ok: true });
    });
  });
}
