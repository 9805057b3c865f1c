// POST StopAndQuarantineFile throughput and latency with durable commits, against a bare Fastify hello-world
// measured in the same run. Loopback only; bounded in time.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchToken } from '../../test/helpers/testServer.ts';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import { nowTimestamp } from '../../src/server/clock.ts';
import { machine } from '../../test/store/fixtures.ts';
import type autocannon from 'autocannon';
import { load, startChild } from '../lib.ts';

const root = join(import.meta.dirname, '../..');
const BIN = join(root, 'bin/tourniquet.js');
const duration = Number(process.env.BENCH_SECONDS ?? 10);

export async function benchApi() {
  // Both runs send the same requests (headers, a fresh random SHA-1 body each), so the load generator's own cost
  // is the same on both sides of the ratio.
  const request = (url: string, token: string): autocannon.Options => ({
    url,
    method: 'POST',
    duration,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (req: autocannon.Request) => ({
          ...req,
          body: JSON.stringify({ Comment: 'bench', Sha1: randomBytes(20).toString('hex') }),
        }),
      },
    ],
  });
  const hello = await startChild(['--import', 'tsx', join(root, 'bench/api/helloServer.ts')]);
  const baseline = await load(request(`${hello.url}/`, 'x'.repeat(700)));
  await hello.stop();

  const dataDir = mkdtempSync(join(tmpdir(), 'tq-bench-api-'));
  try {
    const created = spawnSync(
      process.execPath,
      [BIN, 'apps', 'create', '--name', 'bench', '--roles', 'Machine.StopAndQuarantine,Machine.Read.All', '--data', dataDir, '--json'],
      { encoding: 'utf8' },
    );
    if (created.status !== 0) throw new Error(created.stderr);
    const creds = JSON.parse(created.stdout);
    const store = await openSqliteStore({ path: join(dataDir, 'tourniquet.db') });
    const machineId = randomBytes(20).toString('hex');
    const now = nowTimestamp();
    await store.upsertMachine(machine({ id: machineId, computerDnsName: 'burst-target', lastSeen: now, capabilities: [] }));
    await store.close();
    const server = await startChild([BIN, 'serve', '--port', '0', '--data', dataDir], {
      TOURNIQUET_RATE_PER_MINUTE: '100000000',
      TOURNIQUET_RATE_PER_HOUR: '1000000000',
    });
    try {
      const token = await fetchToken(server.url, creds);
      const tq = await load(request(`${server.url}/api/machines/${machineId}/StopAndQuarantineFile`, token));
      return {
        name: 'api',
        baseline: { what: 'Fastify hello-world POST', ...baseline },
        tourniquet: { what: 'POST StopAndQuarantineFile (durable, synchronous=FULL)', ...tq },
        ratio: Number((tq.rps / baseline.rps).toFixed(3)),
        target: 0.3,
      };
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchApi(), null, 2));
}
