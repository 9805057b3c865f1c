// Crash safety: a quarantine running in a child process is SIGKILLed at every step boundary and at random
// moments; after recover() the file must be either fully in place (all its names, original SHA-1, no item) or
// fully in the vault (no name left, exactly one item that decrypts to the SHA-1) — never lost, never both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vault } from '../../src/agent/vault/vault.ts';
import type { QuarantineStep } from '../../src/agent/vault/vault.ts';
import { sha1Of, sha1OfFile, tempDir } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/quarantineChild.ts', import.meta.url));

interface Trial {
  crashAt?: QuarantineStep;
  crashAtCount?: number;
  /** The child kills itself this many ms after it starts the quarantine (random trials). */
  killAfterMs?: number;
  hardLink: boolean;
  immutable: boolean;
  trace?: boolean;
}

interface TrialResult {
  outcome: 'in-place' | 'in-vault';
  childFinished: boolean;
  /** How long the quarantine took in the child, when it finished. */
  childMs: number | null;
  /** Step → ms after "go", for traced runs. */
  stepMs: Record<string, number>;
}

async function runTrial(root: string, n: number, trial: Trial): Promise<TrialResult> {
  const dir = join(root, `t${n}`);
  mkdirSync(dir);
  const stateDir = join(dir, 'state');
  const file = join(dir, 'victim');
  const content = randomBytes(512 * 1024 + n);
  writeFileSync(file, content, { mode: 0o755 });
  const sha1 = sha1Of(content);
  const names = [file];
  if (trial.hardLink) {
    linkSync(file, join(dir, 'victim-link'));
    names.push(join(dir, 'victim-link'));
  }
  if (trial.immutable) execFileSync('chattr', ['+i', file]);
  const args = { vaultDir: join(stateDir, 'vault'), keyFile: join(stateDir, 'vault.key'), source: file, paths: names, sha1, crashAt: trial.crashAt, crashAtCount: trial.crashAtCount, trace: trial.trace, killAfterMs: trial.killAfterMs };
  // Create the key first so every trial (even one killed at once) has a vault to recover.
  Vault.open({ dir: args.vaultDir, keyFile: args.keyFile });

  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    child.on('exit', () => reject(new Error(`child exited before ready: ${out}`)));
  });
  child.stdin!.write('go\n');
  await exited;
  const childFinished = out.includes('done ');
  const doneLine = /done (\{.*\})/.exec(out);
  const childMs = doneLine ? (JSON.parse(doneLine[1]!) as { ms: number }).ms : null;
  const stepMs: Record<string, number> = {};
  for (const m of out.matchAll(/^step (\S+) ([\d.]+)$/gm)) stepMs[m[1]!] ??= Number(m[2]);

  const vault = Vault.open({ dir: args.vaultDir, keyFile: args.keyFile });
  const report = vault.recover();
  assert.deepEqual(report.problems, [], `trial ${n}: ${JSON.stringify(report)}`);
  assert.deepEqual(readdirSync(join(args.vaultDir, 'journal')), [], `trial ${n}: journal not empty`);
  assert.deepEqual(readdirSync(args.vaultDir).filter((x) => x.startsWith('tmp-') || x.endsWith('.tmp')), [], `trial ${n}: temp left`);
  const present = names.filter((p) => existsSync(p));
  const items = vault.list().filter((i) => i.sha1 === sha1 && i.state === 'quarantined');
  let outcome: TrialResult['outcome'];
  if (present.length === names.length) {
    for (const p of names) assert.equal(sha1OfFile(p), sha1, `trial ${n}: ${p} changed`);
    assert.equal(items.length, 0, `trial ${n}: file both in place and in the vault`);
    if (trial.immutable) assert.match(execFileSync('lsattr', ['-d', file], { encoding: 'utf8' }), /^\S*i/, `trial ${n}: +i lost`);
    outcome = 'in-place';
  } else {
    assert.equal(present.length, 0, `trial ${n}: half the names removed (${present.join(', ')})`);
    assert.equal(items.length, 1, `trial ${n}: file neither in place nor in the vault (lost)`);
    assert.equal(sha1Of(vault.decryptToBuffer(items[0]!.itemId)), sha1, `trial ${n}: vault copy does not decrypt to the SHA-1`);
    assert.equal(vault.get(items[0]!.itemId).flags.immutable, trial.immutable);
    outcome = 'in-vault';
  }
  // Recovery is idempotent.
  const again = vault.recover();
  assert.deepEqual([again.rolledBack, again.rolledForward, again.problems], [[], [], []]);
  return { outcome, childFinished, childMs, stepMs };
}

async function inBatches<T>(items: T[], size: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) {
    await Promise.all(items.slice(i, i + size).map((item, j) => fn(item, i + j)));
  }
}

test('quarantine survives SIGKILL at every step and at random moments: never lost, never duplicated', { timeout: 90_000 }, async (t) => {
  const tmp = tempDir('tq-crash-');
  t.after(() => tmp.cleanup());
  const steps: [QuarantineStep, number][] = [
    ['journaled', 1],
    ['tmp-created', 1],
    ['encrypted', 1],
    ['data-stored', 1],
    ['meta-written', 1],
    ['name-removed', 1],
    ['name-removed', 2],
    ['meta-updated', 1],
    ['done', 1],
  ];
  const trials: Trial[] = [];
  for (const [crashAt, crashAtCount] of steps) trials.push({ crashAt, crashAtCount, hardLink: true, immutable: true });
  for (const [crashAt, crashAtCount] of steps.slice(3, 7)) trials.push({ crashAt, crashAtCount, hardLink: true, immutable: false });
  const deterministic = trials.length;

  const results: TrialResult[] = [];
  await inBatches(trials, 6, async (trial, i) => {
    results[i] = await runTrial(tmp.dir, i, trial);
  });
  // Calibrate on this machine, now: the time each step is reached in an uninterrupted run. Random kills are
  // then spread over every interval between two steps (a random point in each), so all phases get hit.
  const calibration = await Promise.all([0, 1].map((k) => runTrial(tmp.dir, 100 + k, { hardLink: true, immutable: true, trace: true })));
  const order: QuarantineStep[] = ['journaled', 'tmp-created', 'encrypted', 'data-stored', 'meta-written', 'name-removed', 'meta-updated', 'done'];
  const at = (step: QuarantineStep) => Math.max(...calibration.map((c) => c.stepMs[step] ?? 0));
  const intervals = order.slice(1).map((step, i) => [at(order[i]!) * 0.8, at(step) * 1.2] as const);
  const random: Trial[] = [];
  for (let i = 0; i < 21; i++) {
    const [a, b] = intervals[i % intervals.length]!;
    random.push({ killAfterMs: a + Math.random() * (b - a), hardLink: i % 2 === 0, immutable: i % 3 === 0 });
  }
  const from = intervals[0]![0];
  const to = intervals[intervals.length - 1]![1];
  const randomResults: TrialResult[] = [];
  await inBatches(random, 6, async (trial, i) => {
    randomResults[i] = await runTrial(tmp.dir, 200 + i, trial);
  });

  // Each deterministic crash point lands on the side its position implies.
  for (let i = 0; i < deterministic; i++) {
    const step = trials[i]!.crashAt!;
    const expected = ['journaled', 'tmp-created', 'encrypted', 'data-stored'].includes(step) ? 'in-place' : 'in-vault';
    assert.equal(results[i]!.outcome, expected, `crash at ${step}#${trials[i]!.crashAtCount}`);
  }
  for (const c of calibration) assert.deepEqual([c.outcome, c.childFinished], ['in-vault', true]);
  const count = (o: TrialResult['outcome']) => randomResults.filter((r) => r.outcome === o).length;
  t.diagnostic(
    `random kills ${from.toFixed(1)}–${to.toFixed(1)} ms after start: ${count('in-place')} left in place, ${count('in-vault')} in the vault, ` +
      `${randomResults.filter((r) => !r.childFinished).length} of ${randomResults.length} interrupted`,
  );
  assert.ok(randomResults.some((r) => !r.childFinished), 'no random trial interrupted the quarantine');
});
