// The store suite on PostgreSQL (one fresh schema per store, dropped afterwards), plus what only the shared
// database has: schema isolation, connection failures, and the LISTEN connection coming back after a drop.
// Set TOURNIQUET_TEST_PG_URL to use another server; TOURNIQUET_SKIP_PG=1 skips the file — nothing else does.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import pg from 'pg';
import { openStore } from '../../src/store/open.ts';
import { openPostgresStore } from '../../src/store/postgres/openPostgresStore.ts';
import type { Store, StoreNotification } from '../../src/store/store.ts';
import { hex40, machine, query } from './fixtures.ts';
import { registerStoreSuite } from './storeSuite.ts';

const URL = process.env.TOURNIQUET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SKIP = process.env.TOURNIQUET_SKIP_PG === '1';

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: URL, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const run = `tq_${process.pid}_${randomBytes(4).toString('hex')}`;
const schemas = new Set<string>();
const schemaOf = new Map<Store, string>();
let n = 0;

if (SKIP) {
  it('PostgreSQL store suite skipped: TOURNIQUET_SKIP_PG=1', { skip: true }, () => undefined);
} else {
  // Fail loudly, first, when the database is not there: a silently skipped suite would look like a pass.
  it('connects to PostgreSQL (set TOURNIQUET_SKIP_PG=1 to skip this file)', async () => {
    await admin((c) => c.query('select 1'));
  });

  registerStoreSuite({
    name: 'postgres',
    async open() {
      const schema = `${run}_${++n}`;
      schemas.add(schema);
      const s = await openPostgresStore({ url: URL, schema, poolSize: 4 });
      schemaOf.set(s, schema);
      return s;
    },
    async openSibling(s) {
      const schema = schemaOf.get(s)!;
      const s2 = await openPostgresStore({ url: URL, schema, poolSize: 4 });
      schemaOf.set(s2, schema);
      return s2;
    },
    async exec(s, sqlText) {
      await admin(async (c) => {
        await c.query(`set search_path = ${schemaOf.get(s)!}`);
        await c.query(sqlText);
      });
    },
    crossInstanceNotifications: true,
    async cleanup() {
      await admin(async (c) => {
        for (const schema of schemas) await c.query(`drop schema if exists "${schema}" cascade`);
      });
    },
  });

  describe('postgres: connection, schema and LISTEN', () => {
    it('refuses unsafe schema names and non-PostgreSQL URLs', async () => {
      for (const schema of ['Public', 'a-b', 'x; drop table y', '1abc', '', 'a'.repeat(64)]) {
        await assert.rejects(openPostgresStore({ url: URL, schema }), TypeError, schema);
      }
      await assert.rejects(openPostgresStore({ url: 'mysql://localhost/x' }), TypeError);
    });

    it('fails (does not hang) when the server is unreachable', async () => {
      const dead = 'postgres://postgres@127.0.0.1:1/test';
      await assert.rejects(openPostgresStore({ url: dead, schema: `${run}_dead` }));
      await assert.rejects(openStore({ dataDir: '/nonexistent', databaseUrl: dead }));
    });

    it('openStore picks PostgreSQL for postgres:// and postgresql:// URLs', async () => {
      for (const url of [URL, URL.replace(/^postgres:/, 'postgresql:')]) {
        const s = await openStore({ dataDir: '/nonexistent', databaseUrl: url });
        try {
          assert.equal(s.kind, 'postgres');
          await s.listMachines(query());
        } finally {
          await s.close();
        }
      }
    });

    it('keeps schemas apart: same tables, different data', async () => {
      const a = `${run}_iso_a`;
      const b = `${run}_iso_b`;
      schemas.add(a);
      schemas.add(b);
      const sa = await openPostgresStore({ url: URL, schema: a });
      const sb = await openPostgresStore({ url: URL, schema: b });
      try {
        const m = machine();
        await sa.upsertMachine(m);
        assert.ok(await sa.getMachine(m.id));
        assert.equal(await sb.getMachine(m.id), null);
      } finally {
        await Promise.all([sa.close(), sb.close()]);
      }
    });

    it('re-establishes the LISTEN connection after it is killed', async () => {
      const schema = `${run}_listen`;
      schemas.add(schema);
      const s = await openPostgresStore({ url: URL, schema });
      const s2 = await openPostgresStore({ url: URL, schema });
      try {
        const killed = await admin(async (c) => {
          const r = await c.query(
            `select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = $1`,
            [`tourniquet-listen:${schema}`],
          );
          return r.rows.length;
        });
        assert.equal(killed, 2, 'one listening connection per store');
        // Publish until the re-established listener hears one (reconnect backoff starts at 100 ms).
        const heard = new Promise<StoreNotification>((resolve) => {
          const off = s2.subscribe((x) => {
            off();
            resolve(x);
          });
        });
        const n: StoreNotification = { channel: 'machine', machineId: hex40('after-kill') };
        let done = false;
        void heard.then(() => (done = true));
        const deadline = Date.now() + 5000;
        while (!done && Date.now() < deadline) {
          await s.publish(n);
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.deepEqual(await heard, n);
        // And the pool survived the terminated connections too.
        assert.equal((await s.listMachines(query({ count: true }))).count, 0);
      } finally {
        await Promise.all([s.close(), s2.close()]);
      }
    });

    it('ignores foreign payloads on the channel', async () => {
      const schema = `${run}_foreign`;
      schemas.add(schema);
      const s = await openPostgresStore({ url: URL, schema });
      try {
        const heard: StoreNotification[] = [];
        s.subscribe((x) => heard.push(x));
        await admin(async (c) => {
          for (const payload of ['not json', '42', 'null', JSON.stringify({ scope: schema, n: { channel: 'x' } }), JSON.stringify({ scope: schema })]) {
            await c.query(`select pg_notify('tourniquet', $1)`, [payload]);
          }
        });
        const own: StoreNotification = { channel: 'machine', machineId: hex40('own') };
        await s.publish(own);
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(heard, [own]);
      } finally {
        await s.close();
      }
    });
  });
}
