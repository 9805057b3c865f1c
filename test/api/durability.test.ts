// Once the API has answered 201, the action survives a kill -9 of the server: every acknowledged action is
// there after a restart, and none is there twice.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fetchToken, prepareBurstDataDir } from '../helpers/testServer.ts';

const BIN = join(import.meta.dirname, '../../bin/tourniquet.js');

function startChild(dataDir: string, writerThread: boolean): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      TOURNIQUET_RATE_PER_MINUTE: '1000000',
      TOURNIQUET_RATE_PER_HOUR: '10000000',
      TOURNIQUET_SQLITE_WRITER_THREAD: writerThread ? '1' : '0',
    },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 20_000);
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^listening on (http:\/\/\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, url: m[1]! });
      }
    });
  });
}

describe('durability', () => {
  for (const writerThread of [false, true]) {
    it(`keeps every acknowledged action across kill -9${writerThread ? ' (TOURNIQUET_SQLITE_WRITER_THREAD=1)' : ''}`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'tq-durable-'));
      try {
        const { creds, machineId } = await prepareBurstDataDir(dataDir, 'burst');

        const first = await startChild(dataDir, writerThread);
        const token = await fetchToken(first.url, creds);
        const acknowledged: string[] = [];
        let killed = false;
        const worker = async () => {
          while (!killed) {
            try {
              const res = await fetch(`${first.url}/api/machines/${machineId}/StopAndQuarantineFile`, {
                method: 'POST',
                headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
                body: JSON.stringify({ Comment: 'burst', Sha1: randomBytes(20).toString('hex') }),
              });
              const body = await res.text();
              if (res.status === 201) acknowledged.push(JSON.parse(body).id);
              if (acknowledged.length >= 300 && !killed) {
                killed = true;
                first.child.kill('SIGKILL');
              }
            } catch {
              return; // connection reset by the kill
            }
          }
        };
        await Promise.all(Array.from({ length: 16 }, worker));
        await new Promise((r) => (first.child.exitCode !== null || first.child.signalCode ? r(null) : first.child.once('exit', r)));
        assert.ok(acknowledged.length >= 300);

        const second = await startChild(dataDir, writerThread);
        try {
          const token2 = await fetchToken(second.url, creds);
          const res = await fetch(`${second.url}/api/machineactions?$top=10000&$filter=machineId eq '${machineId}'`, {
            headers: { authorization: `Bearer ${token2}` },
          });
          const list = (await res.json()) as { value: { id: string; relatedFileInfo: { fileIdentifier: string } }[] };
          const ids = new Set(list.value.map((a) => a.id));
          for (const id of acknowledged) assert.ok(ids.has(id), `acknowledged action ${id} lost`);
          assert.equal(ids.size, list.value.length, 'no action twice');
          const hashes = new Set(list.value.map((a) => a.relatedFileInfo.fileIdentifier));
          assert.equal(hashes.size, list.value.length, 'no request recorded twice');
        } finally {
          second.child.kill('SIGTERM');
          await new Promise((r) => second.child.once('exit', r));
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }
});
