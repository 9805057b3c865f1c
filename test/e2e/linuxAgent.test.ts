// End to end, as a security team would run it: a real agent process enrolled with a real server quarantines
// real running files through the MDE API, then the extension API restores them byte-identically.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { linkSync, mkdirSync, statSync, writeFileSync, existsSync, copyFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ALL_ACTION_ROLES, call, startTestServer, type TestServer } from '../helpers/testServer.ts';
import { Procs, isRunning, makeEvil, sha1OfFile, tempDir, waitFor } from '../agent/helpers.ts';

const BIN = join(import.meta.dirname, '../../bin/tourniquet.js');

function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('exit', (status) => resolve({ status, stdout, stderr })));
}

async function poll<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await sleep(100);
  }
}

describe('the Linux agent, end to end', () => {
  let s: TestServer;
  let token: string;
  let agent: ChildProcess;
  let machineId: string;
  const procs = new Procs();
  const tmp = tempDir('tq-e2e-');
  const work = join(tmp.dir, 'work');
  const state = join(tmp.dir, 'state');

  before(async () => {
    s = await startTestServer();
    token = await s.token([...ALL_ACTION_ROLES], 'E2E SOAR');
    mkdirSync(work);
    mkdirSync(state, { mode: 0o700 });
    writeFileSync(join(state, 'agent.json'), JSON.stringify({ roots: [work], indexRescanSeconds: 10 }), { mode: 0o600 });
    // Asynchronously: the server runs in this process and must answer while the CLI waits.
    const enroll = await runCli(['agent', 'enroll', '--server', s.url, '--token', await s.enrollToken('linux'), '--state', state]);
    assert.equal(enroll.status, 0, enroll.stderr);
    machineId = /enrolled as machine ([0-9a-f]{40})/.exec(enroll.stdout)![1]!;
    agent = spawn(process.execPath, [BIN, 'agent', 'run', '--state', state, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await poll(() => call(`${s.url}/api/machines/${machineId}`, { token }), (r) => r.json?.healthStatus === 'Active', 15_000, 'agent online');
  });

  after(async () => {
    procs.cleanup();
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
    }
    await s.close();
    tmp.cleanup();
  });

  it('reports itself as a Linux machine MDE clients can address', async () => {
    const m = await call(`${s.url}/api/machines/${machineId}`, { token });
    assert.equal(m.json.osPlatform, 'Linux');
    assert.equal(m.json.onboardingStatus, 'Onboarded');
    assert.equal(m.json.agentVersion, '0.1.0');
  });

  it('stops every running instance and quarantines every copy, then restores them byte-identically', async (t) => {
    const evil = makeEvil(join(work, 'evil'), 0o750);
    mkdirSync(join(work, 'sub'));
    const copy = join(work, 'sub', 'evil-copy');
    copyFileSync(evil.path, copy);
    chmodSync(copy, 0o700);
    const link = join(work, 'evil-link');
    linkSync(evil.path, link);
    const modeBefore = statSync(evil.path).mode;
    const children = [
      procs.start(evil.path, ['300']),
      procs.start(evil.path, ['301']),
      procs.start('/bin/bash', ['-c', `${copy} 302; true`]),
    ];
    await waitFor(() => children.every((c) => c.pid !== undefined && isRunning(c.pid)), 5000, 'malware running');
    await sleep(1500); // let the agent's index see the copies

    const t0 = Date.now();
    const post = await call(`${s.url}/api/machines/${machineId}/StopAndQuarantineFile`, {
      method: 'POST', token, body: JSON.stringify({ Comment: 'e2e: contain the implant', Sha1: evil.sha1 }),
    });
    assert.equal(post.status, 201, post.text);
    const done = await poll(
      () => call(`${s.url}/api/machineactions/${post.json.id}`, { token }),
      (r) => r.json && !['Pending', 'InProgress'].includes(r.json.status),
      20_000,
      'action final',
    );
    const elapsed = Date.now() - t0;
    assert.equal(done.json.status, 'Succeeded', JSON.stringify((await s.store.getAction(post.json.id))?.deviceResult));
    assert.equal(done.json.errorHResult, 0);
    for (const c of children.slice(0, 2)) await waitFor(() => !isRunning(c.pid!), 3000, `pid ${c.pid} dead`);
    for (const p of [evil.path, copy, link]) assert.ok(!existsSync(p), `${p} is gone`);
    t.diagnostic(`POST → Succeeded observed by polling every 100 ms: ${elapsed} ms`);
    assert.ok(elapsed < 10_000, `took ${elapsed} ms`);

    const detail = (await s.store.getAction(post.json.id))!.deviceResult!.detail as any;
    assert.ok(detail.processes.length >= 3 && detail.processes.every((p: any) => p.killed), JSON.stringify(detail.processes));
    assert.ok(detail.files.some((f: any) => f.status === 'quarantined'));

    const vault = await poll(
      () => call(`${s.url}/tourniquet/v1/machines/${machineId}/vault`, { token }),
      (r) => r.json?.value?.filter((i: any) => i.state === 'quarantined').length >= 2,
      10_000,
      'vault inventory',
    );
    const items = vault.json.value.filter((i: any) => i.sha1 === evil.sha1 && i.state === 'quarantined');
    assert.ok(items.length >= 2, JSON.stringify(vault.json.value));

    for (const item of items) {
      const r = await call(`${s.url}/tourniquet/v1/machines/${machineId}/vault/${item.itemId}/restore`, {
        method: 'POST', token, body: JSON.stringify({ Comment: 'false positive' }),
      });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.type, 'RestoreQuarantinedFile');
      const fin = await poll(
        () => call(`${s.url}/api/machineactions/${r.json.id}`, { token }),
        (x) => x.json && !['Pending', 'InProgress'].includes(x.json.status),
        15_000,
        'restore final',
      );
      assert.equal(fin.json.status, 'Succeeded');
    }
    for (const p of [evil.path, copy, link]) {
      assert.ok(existsSync(p), `${p} restored`);
      assert.equal(sha1OfFile(p), evil.sha1);
    }
    assert.equal(statSync(evil.path).mode, modeBefore);
    assert.equal(statSync(copy).mode & 0o777, 0o700);
    assert.equal(statSync(evil.path).ino, statSync(link).ino, 'hard link restored as a link');

    // Restore actions never show up in MDE lists; clients there know only MDE's types.
    const list = await call(`${s.url}/api/machineactions?$filter=machineId eq '${machineId}'`, { token });
    assert.ok(list.json.value.every((a: any) => a.type !== 'RestoreQuarantinedFile'));
    const audit = await call(`${s.url}/tourniquet/v1/audit?action=vault.restore`, { token });
    assert.equal(audit.json.value.length, items.length);
  });

  it('refuses a package-owned file without killing anything', async () => {
    const sleepSha1 = sha1OfFile('/usr/bin/sleep');
    const p = procs.start('/usr/bin/sleep', ['300']);
    await waitFor(() => p.pid !== undefined && isRunning(p.pid), 3000, 'sleep running');
    const post = await call(`${s.url}/api/machines/${machineId}/StopAndQuarantineFile`, {
      method: 'POST', token, body: JSON.stringify({ Comment: 'e2e: protected', Sha1: sleepSha1 }),
    });
    assert.equal(post.status, 201);
    const done = await poll(
      () => call(`${s.url}/api/machineactions/${post.json.id}`, { token }),
      (r) => r.json && !['Pending', 'InProgress'].includes(r.json.status),
      20_000,
      'action final',
    );
    assert.equal(done.json.status, 'Failed');
    assert.notEqual(done.json.errorHResult, 0);
    assert.ok(isRunning(p.pid!), 'the protected process is alive');
    assert.ok(existsSync('/usr/bin/sleep'));
  });

  it('restore requests are validated', async () => {
    const bad = await call(`${s.url}/tourniquet/v1/machines/${machineId}/vault/${'0'.repeat(32)}/restore`, {
      method: 'POST', token, body: '{"Comment":"x"}',
    });
    assert.equal(bad.status, 404);
    const noComment = await call(`${s.url}/tourniquet/v1/machines/${machineId}/vault/${'0'.repeat(32)}/restore`, {
      method: 'POST', token, body: '{}',
    });
    assert.equal(noComment.json.error.code, 'MissingRequiredParameter');
    const reader = await s.token(['Machine.Read.All']);
    const denied = await call(`${s.url}/tourniquet/v1/machines/${machineId}/vault/${'0'.repeat(32)}/restore`, {
      method: 'POST', token: reader, body: '{"Comment":"x"}',
    });
    assert.equal(denied.status, 403);
  });
});
