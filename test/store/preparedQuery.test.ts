// Compiled-once queries: the same SQL Kysely builds, with each call's values bound in the right places.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, sql, type Dialect } from 'kysely';
import { PreparedQuery } from '../../src/store/preparedQuery.ts';
import type { Database } from '../../src/store/schema.ts';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import { machine } from './fixtures.ts';

// Compiles PostgreSQL SQL without a server: the prepared form must not depend on a connection.
const compileOnly: Dialect = {
  createAdapter: () => new PostgresAdapter(),
  createQueryCompiler: () => new PostgresQueryCompiler(),
  createIntrospector: (db) => new PostgresIntrospector(db),
  createDriver: () => new DummyDriver(),
};
const pg = new Kysely<Database>({ dialect: compileOnly });

describe('PreparedQuery', () => {
  it('compiles once and binds each call’s values in place, keeping constants', () => {
    const q = new PreparedQuery<[machineId: string, sha1: string], unknown>(2, (mid, sha1) =>
      pg
        .selectFrom('file_observations')
        .select('path')
        .where('machine_id', '=', mid)
        .where('sha1', '=', sha1)
        .where('path', '!=', '/constant')
        .where(sql<boolean>`lower(${mid}) = ${mid}`),
    );
    const a = q.bind(['m1', 's1']);
    const b = q.bind(['m2', 's2']);
    assert.equal(a.sql, b.sql, 'one SQL text');
    assert.match(a.sql, /\$5/);
    assert.deepEqual(a.parameters, ['m1', 's1', '/constant', 'm1', 'm1']);
    assert.deepEqual(b.parameters, ['m2', 's2', '/constant', 'm2', 'm2']);
  });

  it('refuses a builder that does not use every argument as a value', () => {
    assert.throws(
      () => new PreparedQuery<[string, string], unknown>(2, (id) => pg.selectFrom('machines').selectAll().where('id', '=', id)),
      /not used as values/,
    );
  });

  it('reads the same rows as the built query (SQLite)', async () => {
    const s = await openSqliteStore({ path: ':memory:' });
    const m = machine();
    await s.upsertMachine(m);
    // getMachine is served by a prepared query; upper-case ids still resolve (lower-cased before binding).
    assert.deepEqual(await s.getMachine(m.id.toUpperCase()), m);
    assert.equal(await s.getMachine('f'.repeat(40)), null);
    await s.close();
  });
});
