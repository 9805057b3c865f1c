// The store suite on SQLite, plus what only the embedded store has: files, permissions and crash durability.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { openStore } from '../../src/store/open.ts';
import { actionToRow, machineToRow } from '../../src/store/rowMapping.ts';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import type { Store } from '../../src/store/store.ts';
import { action, cmp, keyOf, machine, query, raceTwinActions, str, ts } from './fixtures.ts';
import { registerStoreSuite } from './storeSuite.ts';

/** WAL frames not yet copied into the database file: the wal-index header's mxFrame (at 16) minus nBackfill (at 96). */
function framesAwaitingCheckpoint(dbPath: string): number {
  const shm = readFileSync(`${dbPath}-shm`);
  const u32 = (at: number) => (endianness() === 'LE' ? shm.readUInt32LE(at) : shm.readUInt32BE(at));
  return u32(16) - u32(96);
}

const root = mkdtempSync(join(tmpdir(), 'tourniquet-store-'));
const paths = new Map<Store, string>();
let n = 0;

// In place (the default), and with group-commit batches on the writer thread (TOURNIQUET_SQLITE_WRITER_THREAD=1).
for (const writerThread of [false, true]) {
  registerStoreSuite({
    name: writerThread ? 'sqlite (writer thread)' : 'sqlite',
    async open() {
      const path = join(root, `db${++n}`, 'tourniquet.db');
      const s = await openSqliteStore({ path, writerThread });
      paths.set(s, path);
      return s;
    },
    async openSibling(s) {
      const path = paths.get(s)!;
      const s2 = await openSqliteStore({ path, writerThread });
      paths.set(s2, path);
      return s2;
    },
    async exec(s, sqlText) {
      const db = new BetterSqlite3(paths.get(s)!);
      try {
        db.exec(sqlText);
      } finally {
        db.close();
      }
    },
    crossInstanceNotifications: false,
    async cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  });
}

describe('sqlite: files and durability', () => {
  it('creates the parent directory and private files, in WAL mode; reopening migrates nothing twice', async () => {
    const dir = join(root, 'nested', 'deeper');
    const path = join(dir, 'x.db');
    const s = await openSqliteStore({ path });
    const m = machine();
    await s.upsertMachine(m);
    await s.close();
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o077, 0, 'database not readable by group/others');
    const raw = new BetterSqlite3(path, { readonly: true });
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    assert.deepEqual(
      raw.prepare('select name from kysely_migration').all(),
      Object.keys(MIGRATIONS).map((name) => ({ name })),
    );
    raw.close();
    const again = await openSqliteStore({ path });
    assert.deepEqual(await again.getMachine(m.id), m);
    await again.close();
  });

  it('migration 0004 keeps every action and the duplicate rule, with one index for both it and SHA-1 lookups', async () => {
    const path = join(root, 'v3', 'tourniquet.db');
    const m = machine();
    const sha1 = 'ab'.repeat(20);
    const file = { fileIdentifier: sha1, fileIdentifierType: 'Sha1' as const };
    const activeFile = action(m, { relatedFileInfo: file });
    const finalFile = action(m, { relatedFileInfo: file, status: 'Succeeded', lastUpdateDateTimeUtc: ts(5) });
    const activeIsolate = action(m, { type: 'Isolate', relatedFileInfo: null });
    const finalIsolate = action(m, { type: 'Isolate', relatedFileInfo: null, status: 'Cancelled' });
    // A database as version 0003 left it, holding active and final actions of both kinds.
    mkdirSync(join(root, 'v3'));
    const v3 = new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path) }) });
    const upTo3 = Object.fromEntries(Object.entries(MIGRATIONS).filter(([name]) => name <= '0003'));
    const migrated = await new Migrator({ db: v3, provider: { getMigrations: async () => upTo3 } }).migrateToLatest();
    assert.equal(migrated.error, undefined);
    await v3.insertInto('machines').values(machineToRow(m)).execute();
    for (const a of [activeFile, finalFile, activeIsolate, finalIsolate]) {
      await v3.insertInto('machine_actions').values(actionToRow(a, a.status === 'Pending' ? keyOf(a) : null)).execute();
    }
    await v3.destroy();

    const s = await openSqliteStore({ path });
    try {
      for (const a of [activeFile, finalFile, activeIsolate, finalIsolate]) assert.deepEqual(await s.getAction(a.id), a);
      const refused = (e: unknown) => (e as { code?: string }).code === 'ActiveRequestAlreadyExists';
      const again = action(m, { relatedFileInfo: file });
      await assert.rejects(s.createAction(again, keyOf(again)), refused, 'the active file action still holds its key');
      const isolateAgain = action(m, { type: 'Isolate', relatedFileInfo: null });
      await assert.rejects(s.createAction(isolateAgain, keyOf(isolateAgain)), refused, 'and the active isolation its own');
      const otherMachine = machine();
      await s.upsertMachine(otherMachine);
      const elsewhere = action(otherMachine, { relatedFileInfo: file });
      await s.createAction(elsewhere, keyOf(elsewhere));
      const bySha1 = await s.listActions(query({ filter: cmp('fileIdentifier', 'eq', str(sha1)) }));
      assert.deepEqual(new Set(bySha1.items.map((a) => a.id)), new Set([activeFile.id, finalFile.id, elsewhere.id]));
    } finally {
      await s.close();
    }

    const raw = new BetterSqlite3(path, { readonly: true });
    try {
      const indexes = raw
        .prepare(`select name from sqlite_master where type = 'index' and tbl_name = 'machine_actions' order by name`)
        .all()
        .map((r) => (r as { name: string }).name);
      assert.deepEqual(indexes, [
        'ix_actions_active_expiry',
        'ix_actions_created',
        'ix_actions_machine_status',
        'sqlite_autoindex_machine_actions_1',
        'ux_actions_active_key_no_file',
        'ux_actions_file_active_key',
      ]);
      assert.deepEqual(raw.prepare(`select name from sqlite_master where name = 'machine_actions_v3'`).all(), []);
      const plan = raw.prepare('explain query plan select id from machine_actions where file_identifier = ?').all(sha1);
      assert.match(JSON.stringify(plan), /USING (COVERING )?INDEX ux_actions_file_active_key/);
      // The listing's default order (newest first, id as tie-breaker) walks the creation index backwards, no sort;
      // the index is stored ascending so that new actions append to it (migration 0005).
      const listing = JSON.stringify(
        raw.prepare('explain query plan select id from machine_actions order by creation_date_time_utc desc, id asc limit 10').all(),
      );
      assert.match(listing, /INDEX ix_actions_created/);
      assert.doesNotMatch(listing, /TEMP B-TREE/);
      const createdIndex = raw.prepare(`select sql from sqlite_master where name = 'ix_actions_created'`).get() as { sql: string };
      assert.match(createdIndex.sql, /\("creation_date_time_utc", "id" desc\)/);
    } finally {
      raw.close();
    }
  });

  it('acknowledges writes made with synchronous=OFF only after the WAL is synced, and keeps the WAL checkpointed', async () => {
    // walDurability.ts: the connection itself never fsyncs; the store syncs the WAL off the event loop and checkpoints
    // every ~1,000 frames (no automatic checkpoint runs). Without those checkpoints this load leaves ~9,000 frames.
    const path = join(root, 'wal-durability', 'tourniquet.db');
    const s = await openSqliteStore({ path });
    const m = machine();
    await s.upsertMachine(m);
    const created = [];
    for (let round = 0; round < 30; round++) {
      created.push(...(await Promise.all(Array.from({ length: 100 }, () => action(m)).map((a) => s.createAction(a, keyOf(a))))));
    }
    assert.equal(created.length, 3000);
    const notCheckpointed = framesAwaitingCheckpoint(path);
    assert.ok(notCheckpointed < 1500, `${notCheckpointed} frames wait for a checkpoint`);
    assert.ok(statSync(`${path}-wal`).size < 12 * 1024 * 1024, 'the WAL is reused from its start after checkpoints');
    const probe = new BetterSqlite3(path, { readonly: true });
    try {
      // A connection of its own sees the defaults; the store's connection is the one in synchronous=OFF.
      assert.equal(probe.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      probe.close();
    }
    await s.close();
    // Closing checkpoints everything (as synchronous=FULL) and removes the WAL; nothing is lost.
    assert.equal(existsSync(`${path}-wal`), false);
    const again = await openSqliteStore({ path });
    const { count } = await again.listActions(query({ count: true, top: 1 }));
    assert.equal(count, 3000);
    await again.close();
  });

  it('keeps writing while another connection holds an old snapshot, and checkpoints once it lets go', async () => {
    const path = join(root, 'wal-reader', 'tourniquet.db');
    const s = await openSqliteStore({ path });
    const m = machine();
    await s.upsertMachine(m);
    const reader = new BetterSqlite3(path, { readonly: true });
    const pending = () => framesAwaitingCheckpoint(path);
    try {
      // A read transaction pins the snapshot: checkpoints may not copy past it, so the WAL grows meanwhile.
      reader.exec('begin');
      reader.prepare('select count(*) from machine_actions').get();
      for (let round = 0; round < 20; round++) {
        await Promise.all(Array.from({ length: 100 }, () => action(m)).map((a) => s.createAction(a, keyOf(a))));
      }
      assert.ok(pending() >= 1000, 'the pinned snapshot held checkpoints back');
      reader.exec('commit');
      for (let round = 0; round < 2; round++) {
        await Promise.all(Array.from({ length: 50 }, () => action(m)).map((a) => s.createAction(a, keyOf(a))));
      }
      assert.ok(pending() < 1000, `${pending()} frames still wait once the reader is gone`);
    } finally {
      reader.close();
    }
    const { count } = await s.listActions(query({ count: true, top: 1 }));
    assert.equal(count, 2100);
    await s.close();
  });

  it('shares one file between two stores of one process and another process writing, with nothing lost', async () => {
    const path = join(root, 'wal-shared', 'tourniquet.db');
    const a = await openSqliteStore({ path });
    const b = await openSqliteStore({ path });
    const m = machine();
    await a.upsertMachine(m);
    const other = new BetterSqlite3(path);
    other.pragma('busy_timeout = 5000');
    const writes: Promise<unknown>[] = [];
    for (let round = 0; round < 20; round++) {
      for (const s of [a, b]) writes.push(...Array.from({ length: 50 }, () => action(m)).map((x) => s.createAction(x, keyOf(x))));
      // A foreign connection (synchronous=FULL, automatic checkpoints) writes in between: a CLI beside the server.
      other.exec(`insert into audit_log (id, at, actor_type, actor_id, action, result, detail, prev_hash, hash)
        values (${1_000_000 + round}, '2026-01-01T00:00:00.0000000Z', 'app', 'x', 'test', 'success', '{}', '', '')`);
      await Promise.all(writes.splice(0));
    }
    other.close();
    await b.close();
    const { count } = await a.listActions(query({ count: true, top: 1 }));
    assert.equal(count, 2000);
    await a.close();
    assert.equal(existsSync(`${path}-wal`), false);
  });

  it('supports :memory: (private per store)', async () => {
    const a = await openSqliteStore({ path: ':memory:' });
    const b = await openSqliteStore({ path: ':memory:' });
    const m = machine();
    await a.upsertMachine(m);
    assert.ok(await a.getMachine(m.id));
    assert.equal(await b.getMachine(m.id), null);
    await Promise.all([a.close(), b.close()]);
  });

  it('openStore picks SQLite at <dataDir>/tourniquet.db without a database URL', async () => {
    const dataDir = join(root, 'data-dir');
    for (const databaseUrl of [undefined, '', '  ']) {
      const s = await openStore({ dataDir, databaseUrl });
      assert.equal(s.kind, 'sqlite');
      await s.close();
    }
    assert.ok(existsSync(join(dataDir, 'tourniquet.db')));
    await assert.rejects(openStore({ dataDir, databaseUrl: 'mysql://x' }), TypeError);
  });

  it('works without group commit too (the measurement baseline)', async () => {
    const s = await openSqliteStore({ path: join(root, 'nogc', 'x.db'), groupCommit: false });
    assert.deepEqual(await raceTwinActions(s), ['fulfilled', 'rejected']);
    await s.close();
  });

  for (const mode of ['in place', 'writer-thread'] as const) {
    it(`keeps every acknowledged action through SIGKILL mid-burst, none twice (${mode})`, async () => {
      const path = join(root, `kill-${mode.replace(' ', '-')}`, 'tourniquet.db');
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./durabilityChild.ts', import.meta.url)), path, mode], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const acknowledged: string[] = [];
      let buffer = '';
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      await new Promise<void>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', () => reject(new Error('child exited before the kill')));
        child.stdout!.on('data', (chunk: Buffer) => {
          buffer += chunk.toString();
          const lines = buffer.split('\n');
          buffer = lines.pop()!;
          for (const line of lines) if (line !== 'ready') acknowledged.push(line);
          if (acknowledged.length >= 1500) {
            child.kill('SIGKILL');
            resolve();
          }
        });
      });
      assert.equal(await exited, 'SIGKILL');
      // Lines already in the pipe when the child died were acknowledged too.
      for (const line of buffer.split('\n')) if (/^[0-9a-f-]{36}$/.test(line)) acknowledged.push(line);

      const s = await openSqliteStore({ path });
      const { items, count } = await s.listActions(query({ count: true, top: 10_000 }));
      await s.close();
      const stored = new Set(items.map((a) => a.id));
      assert.equal(stored.size, items.length, 'no action stored twice');
      assert.equal(count, items.length);
      const missing = acknowledged.filter((id) => !stored.has(id));
      assert.deepEqual(missing, [], 'every acknowledged action survived');
      assert.ok(acknowledged.length >= 1500);
    });
  }
});
