// The command-line contract, run as a newcomer and the hidden acceptance tests would: `serve --demo` and its
// recipe, `apps create`, `enroll-token create` and `simulate`, with the exact output lines of shared/contract.md.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';

const BIN = join(import.meta.dirname, '../../bin/tourniquet.js');

interface Proc {
  child: ChildProcess;
  lines: string[];
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(): Promise<void>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      const m = w.re.exec(line);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  return {
    child,
    lines,
    waitFor(re, timeoutMs = 30_000) {
      for (const l of lines) {
        const m = re.exec(l);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`)), timeoutMs);
        waiters.push({ re, resolve: (m) => (clearTimeout(t), resolve(m)) });
        child.once('exit', (code) => reject(new Error(`exited ${code} before ${re}; stderr:\n${stderr}`)));
      });
    },
    stop: () =>
      new Promise((r) => {
        if (child.exitCode !== null || child.signalCode) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

function bash(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('command-line contract', () => {
  it('serve --demo prints a recipe that, run as written, ends in Succeeded', async () => {
    const data = mkdtempSync(join(tmpdir(), 'tq-demo-'));
    const server = start(['serve', '--port', '0', '--data', data, '--demo=3']);
    try {
      const [, url] = await server.waitFor(/^listening on (http:\/\/127\.0\.0\.1:\d+)$/);
      await server.waitFor(/^3 devices online$/);
      await server.waitFor(/^done$|^# 3\. Poll/);
      const recipe = join(data, 'demo-recipe.sh');
      assert.equal(statSync(recipe).mode & 0o777, 0o600, 'the recipe holds a secret');
      assert.ok(readFileSync(recipe, 'utf8').includes(`BASE='${url}'`));
      const r = await bash(recipe);
      assert.equal(r.code, 0, r.stderr);
      const statuses = r.stdout.split('\n').filter((l) => l.startsWith('status '));
      assert.equal(statuses.at(-1), 'status Succeeded', r.stdout);
      // The printed recipe is the saved one.
      assert.ok(server.lines.join('\n').includes(readFileSync(recipe, 'utf8').trim().split('\n')[0]!));
    } finally {
      await server.stop();
      rmSync(data, { recursive: true, force: true });
    }
  });

  it('apps create, enroll-token create and simulate speak the contract', async () => {
    const data = mkdtempSync(join(tmpdir(), 'tq-cli-'));
    let server: Proc | null = null;
    let sim: Proc | null = null;
    try {
      const app = await run(['apps', 'create', '--name', 'Contract', '--roles', 'Machine.StopAndQuarantine,Machine.Read.All', '--data', data, '--json']);
      assert.equal(app.code, 0, app.stderr);
      const creds = JSON.parse(app.stdout);
      assert.deepEqual(Object.keys(creds), ['tenantId', 'clientId', 'clientSecret', 'roles']);
      assert.deepEqual(creds.roles, ['Machine.StopAndQuarantine', 'Machine.Read.All']);
      const bad = await run(['apps', 'create', '--name', 'x', '--roles', 'Machine.Everything', '--data', data, '--json']);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /unknown role/);
      const tok = await run(['enroll-token', 'create', '--data', data, '--group', 'lab', '--json']);
      assert.equal(tok.code, 0, tok.stderr);
      const { token } = JSON.parse(tok.stdout);
      assert.equal(typeof token, 'string');
      const db = readFileSync(join(data, 'tourniquet.db')).toString('latin1');
      assert.ok(!db.includes(creds.clientSecret) && !db.includes(token), 'secrets are stored hashed');

      server = start(['serve', '--port', '0', '--data', data]);
      const [, url] = await server.waitFor(/^listening on (http:\/\/127\.0\.0\.1:\d+)$/);
      sim = start(['simulate', '--server', url!, '--enroll-token', token, '--devices', '4', '--seed', '7', '--profile', 'instant']);
      await sim.waitFor(/^4 devices online$/);
      const t = await fetch(`${url}/${creds.tenantId}/oauth2/token`, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.clientSecret, resource: url! }),
      });
      assert.equal(t.status, 200);
      const body = (await t.json()) as Record<string, string>;
      assert.deepEqual(Object.keys(body), ['token_type', 'expires_in', 'ext_expires_in', 'access_token']);
      const machines = await fetch(`${url}/api/machines`, { headers: { authorization: `Bearer ${body.access_token}` } });
      assert.equal(((await machines.json()) as { value: unknown[] }).value.length, 4);
    } finally {
      await sim?.stop();
      await server?.stop();
      rmSync(data, { recursive: true, force: true });
    }
  });
});
