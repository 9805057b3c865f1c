// The SQLite store's writer thread (TOURNIQUET_SQLITE_WRITER_THREAD=1): what users rely on when batches leave the main
// thread — nothing interleaves wrongly, errors keep their meaning, a lock held elsewhere never freezes the server, and
// an idle store never keeps the process alive. (The whole store suite also runs through it, in sqlite.test.ts.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { MdeError } from '../../src/core/errors.ts';
import { verifyAuditChain } from '../../src/store/auditChain.ts';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import { action, app, auditEntry, keyOf, machine, query, raceTwinActions } from './fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'tourniquet-writer-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(root, `w${++n}`, 'tourniquet.db');

describe('sqlite writer thread', () => {
  it('keeps batches and multi-statement transactions apart when they overlap', async () => {
    const s = await openSqliteStore({ path: freshPath(), writerThread: true });
    const m = machine();
    await s.upsertMachine(m);
    // Machine upserts are BEGIN … COMMIT transactions of several messages; action and audit batches arrive
    // in between. None may land inside another's transaction, and none may fail for it.
    const work: Promise<unknown>[] = [];
    const created: string[] = [];
    for (let i = 0; i < 300; i++) {
      const a = action(m);
      created.push(a.id);
      work.push(s.createAction(a, keyOf(a), auditEntry({ target: a.id })));
      if (i % 10 === 0) work.push(s.upsertMachine(machine({ computerDnsName: `host-${i}` })));
      if (i % 7 === 0) work.push(s.appendAudit(auditEntry({ action: 'token.issue' })));
    }
    const results = await Promise.allSettled(work);
    assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);
    const { items } = await s.listActions(query({ top: 10_000 }));
    assert.equal(items.length, created.length);
    const audit = await s.listAudit({ top: 10_000, skip: 0 });
    assert.equal(audit.length, 300 + Math.ceil(300 / 7));
    assert.equal(verifyAuditChain(audit).ok, true, 'one unbroken hash chain');
    await s.close();
  });

  it('reports a duplicate as ActiveRequestAlreadyExists and a constraint failure with its SQLite code', async () => {
    const s = await openSqliteStore({ path: freshPath(), writerThread: true });
    const m = machine();
    await s.upsertMachine(m);
    const a = action(m);
    await s.createAction(a, keyOf(a));
    const dup = action(m, { relatedFileInfo: a.relatedFileInfo });
    await assert.rejects(s.createAction(dup, keyOf(dup)), (err: unknown) => {
      assert.ok(err instanceof MdeError, 'an MdeError, as the route expects');
      assert.equal(err.status, 400);
      assert.equal(err.code, 'ActiveRequestAlreadyExists');
      return true;
    });
    const first = app();
    await s.createApp(first);
    await assert.rejects(s.createApp({ ...first, name: 'again' }), (err: unknown) => {
      assert.match(String((err as { code?: unknown }).code), /^SQLITE_CONSTRAINT/);
      return true;
    });
    await s.close();
  });

  it('waits for another connection’s write lock without stalling the event loop', async () => {
    const path = freshPath();
    const s = await openSqliteStore({ path, writerThread: true });
    const m = machine();
    await s.upsertMachine(m);
    const other = new BetterSqlite3(path);
    other.exec('begin immediate');
    let worstLagMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      worstLagMs = Math.max(worstLagMs, now - last - 10);
      last = now;
    }, 10);
    try {
      const a = action(m);
      let done = false;
      const pending = s.createAction(a, keyOf(a)).then(() => (done = true));
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(done, false, 'the write waits for the lock');
      other.exec('commit');
      await pending;
      assert.ok(await s.getAction(a.id));
    } finally {
      clearInterval(ticker);
      other.close();
    }
    assert.ok(worstLagMs < 250, `event loop stalled ${worstLagMs.toFixed(0)} ms while the writer waited`);
    await s.close();
  });

  it('does not keep an idle process alive', async () => {
    const script = `
      import { openSqliteStore } from ${JSON.stringify(new URL('../../src/store/sqlite/openSqliteStore.ts', import.meta.url).href)};
      import { action, keyOf, machine } from ${JSON.stringify(new URL('./fixtures.ts', import.meta.url).href)};
      const s = await openSqliteStore({ path: process.argv[1], writerThread: true });
      const m = machine();
      await s.upsertMachine(m);
      const a = action(m);
      await s.createAction(a, keyOf(a));
      console.log('written');
    `;
    const path = freshPath();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('process with an idle, unclosed store did not exit'));
      }, 20_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 0);
    assert.match(out, /written/);
    // What it wrote is there, though it never closed the store.
    const s = await openSqliteStore({ path });
    assert.equal((await s.listActions(query({ count: true }))).count, 1);
    await s.close();
  });

  it('refuses the second of two racing twins, as in place', async () => {
    const s = await openSqliteStore({ path: freshPath(), writerThread: true });
    assert.deepEqual(await raceTwinActions(s), ['fulfilled', 'rejected']);
    await s.close();
  });
});
