// Machines kept between reads on SQLite: a read never returns a machine older than the last write anyone made —
// through this store, through another store on the same file, or through another connection altogether.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import { machine } from './fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'tourniquet-machine-cache-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(root, `c${++n}`, 'tourniquet.db');

describe('sqlite machine rows between reads', () => {
  for (const writerThread of [false, true]) {
    const mode = writerThread ? ' (writer thread)' : '';

    it(`sees a change committed by another connection from the next turn on${mode}`, async () => {
      const path = freshPath();
      const s = await openSqliteStore({ path, writerThread });
      const m = machine({ computerDnsName: 'before.contoso.local' });
      await s.upsertMachine(m);
      assert.equal((await s.getMachine(m.id))?.computerDnsName, 'before.contoso.local');
      assert.equal((await s.getMachine(m.id))?.computerDnsName, 'before.contoso.local', 'second read');
      const other = new BetterSqlite3(path);
      other.prepare('update machines set computer_dns_name = ?, offboarded = 1 where id = ?').run('after.contoso.local', m.id);
      other.close();
      // Another connection's commit is seen from the next turn of the event loop on — the earliest another process's
      // commit could become known here anyway (through I/O).
      await new Promise((r) => setImmediate(r));
      const again = await s.getMachine(m.id);
      assert.equal(again?.computerDnsName, 'after.contoso.local');
      assert.equal(again?.offboarded, true, 'an offboarding elsewhere is honoured at once');
      await s.close();
    });

    it(`sees a change made through a sibling store on the same file${mode}`, async () => {
      const path = freshPath();
      const a = await openSqliteStore({ path, writerThread });
      const b = await openSqliteStore({ path, writerThread });
      const m = machine();
      await a.upsertMachine(m);
      assert.equal((await a.getMachine(m.id))?.healthStatus, m.healthStatus);
      await b.updateMachine(m.id, { healthStatus: 'Inactive' });
      assert.equal((await a.getMachine(m.id))?.healthStatus, 'Inactive');
      await Promise.all([a.close(), b.close()]);
    });

    it(`never keeps a row read while a write was under way${mode}`, async () => {
      const s = await openSqliteStore({ path: freshPath(), writerThread });
      const m = machine();
      await s.upsertMachine(m);
      // Reads interleaved with writes: whatever order they settle in, the read after the last write sees it.
      for (let i = 0; i < 50; i++) {
        const reads = Array.from({ length: 5 }, () => s.getMachine(m.id));
        await Promise.all([...reads, s.updateMachine(m.id, { computerDnsName: `host-${i}.contoso.local` })]);
        assert.equal((await s.getMachine(m.id))?.computerDnsName, `host-${i}.contoso.local`, `round ${i}`);
      }
      await s.close();
    });
  }

  it('shares one read-only machine between callers: writing to it throws and changes nothing', async () => {
    const s = await openSqliteStore({ path: freshPath() });
    const m = machine({ ipAddresses: [{ ipAddress: '10.0.0.1', macAddress: null, type: 'Ethernet', operationalStatus: 'Up' }] });
    await s.upsertMachine(m);
    const first = (await s.getMachine(m.id))!;
    assert.throws(() => first.ipAddresses.push({ ipAddress: '10.9.9.9', macAddress: null, type: 'Ethernet', operationalStatus: 'Up' }), TypeError);
    assert.throws(() => {
      first.ipAddresses[0]!.type = 'Wireless';
    }, TypeError);
    assert.throws(() => first.machineTags.push('x'), TypeError);
    assert.throws(() => {
      first.computerDnsName = 'mutated';
    }, TypeError);
    const second = (await s.getMachine(m.id))!;
    assert.deepEqual(second, m);
    await s.close();
  });
});
