// Measures durable createAction throughput with and without group commit (a script, not a test):
//   node --import tsx bench/store/createActionThroughput.ts [seconds=3] [concurrency=64] [target]
// target: a directory for the SQLite file (default os.tmpdir()), or a postgres:// URL (a scratch schema is
// created and dropped). `concurrency` writers each await their previous insert, as in-flight requests would.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { isPostgresUrl } from '../../src/store/open.ts';
import { openPostgresStore } from '../../src/store/postgres/openPostgresStore.ts';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import type { Store } from '../../src/store/store.ts';
import { action, keyOf, machine } from '../../test/store/fixtures.ts';

const seconds = Number(process.argv[2] ?? 3);
const concurrency = Number(process.argv[3] ?? 64);
const target = process.argv[4] ?? tmpdir();

async function withStore<T>(groupCommit: boolean, fn: (s: Store) => Promise<T>): Promise<T> {
  if (isPostgresUrl(target)) {
    const schema = `tq_bench_${randomBytes(4).toString('hex')}`;
    const s = await openPostgresStore({ url: target, schema, groupCommit, poolSize: 16 });
    try {
      return await fn(s);
    } finally {
      await s.close();
      const c = new pg.Client(target);
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    }
  }
  const dir = mkdtempSync(join(target, 'tq-bench-'));
  const s = await openSqliteStore({ path: join(dir, 'bench.db'), groupCommit });
  try {
    return await fn(s);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(store: Store): Promise<{ perSec: number; p50: number; p99: number }> {
  const machines = Array.from({ length: 100 }, () => machine());
  for (const m of machines) await store.upsertMachine(m);
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  let done = 0;
  async function writer(w: number): Promise<void> {
    while (performance.now() < end) {
      const a = action(machines[(w + done) % machines.length]!);
      const t0 = performance.now();
      await store.createAction(a, keyOf(a));
      latencies.push(performance.now() - t0);
      done++;
    }
  }
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => writer(w)));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return { perSec: done / elapsed, p50: q(0.5), p99: q(0.99) };
}

for (const groupCommit of [false, true]) {
  const r = await withStore(groupCommit, measure);
  console.log(
    `${isPostgresUrl(target) ? 'postgres' : 'sqlite'} group commit ${groupCommit ? 'on ' : 'off'}: ` +
      `${Math.round(r.perSec)} actions/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms ` +
      `(concurrency ${concurrency}, ${seconds}s)`,
  );
}
