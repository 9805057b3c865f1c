// The agent's state directory, configuration file and runtime wiring.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openAgentRuntime } from '../../src/agent/runtime.ts';
import { DEFAULT_CONFIG, ensureStateDir, loadAgentConfig, parseAgentConfig, saveAgentConfig, stateLayout } from '../../src/agent/state.ts';
import { tempDir } from './helpers.ts';

test('state dir is created 0700 and tightened; layout is derived from it', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const dir = join(tmp.dir, 'state');
  const layout = ensureStateDir(dir);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.deepEqual(layout, {
    dir,
    configFile: join(dir, 'agent.json'),
    vaultDir: join(dir, 'vault'),
    vaultKeyFile: join(dir, 'vault.key'),
    indexFile: join(dir, 'hashindex.sqlite'),
  });
  chmodSync(dir, 0o755);
  ensureStateDir(dir);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(stateLayout(dir, { vaultDir: '/srv/vault' }).vaultDir, '/srv/vault');
  assert.throws(() => ensureStateDir('relative'), /absolute/);
  symlinkSync(dir, join(tmp.dir, 'link'));
  assert.throws(() => ensureStateDir(join(tmp.dir, 'link')), /not a symlink/);
  const foreign = join(tmp.dir, 'foreign');
  mkdirSync(foreign);
  chownSync(foreign, 1000, 1000);
  assert.throws(() => ensureStateDir(foreign), /owned by uid 1000/);
});

test('config: defaults, round trip, and every bad input refused with a clear message', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const dir = join(tmp.dir, 'state');
  assert.deepEqual(loadAgentConfig(dir), { ...DEFAULT_CONFIG });
  const cfg = parseAgentConfig({ roots: ['/srv/app/'], allowSha1: ['A'.repeat(40)], respawnWindowMs: 0, sizeScan: 'always' });
  assert.deepEqual(cfg.roots, ['/srv/app/']);
  assert.deepEqual(cfg.allowSha1, ['a'.repeat(40)]);
  saveAgentConfig(dir, cfg);
  assert.equal(statSync(join(dir, 'agent.json')).mode & 0o777, 0o600);
  assert.deepEqual(loadAgentConfig(dir), cfg);

  const bad: [unknown, RegExp][] = [
    [null, /JSON object/],
    [[], /JSON object/],
    ['x', /JSON object/],
    [{ rootz: [] }, /unknown setting "rootz"/],
    [{ roots: '/tmp' }, /roots must be an array/],
    [{ roots: ['tmp'] }, /roots\[0\] must be an absolute path/],
    [{ roots: [42] }, /roots\[0\]/],
    [{ allowPaths: ['/ok', 'rel'] }, /allowPaths\[1\]/],
    [{ allowSha1: 'abc' }, /allowSha1 must be an array/],
    [{ allowSha1: ['xyz'] }, /allowSha1\[0\] is not a SHA-1/],
    [{ vaultDir: 'vault' }, /vaultDir must be an absolute path/],
    [{ respawnWindowMs: -1 }, /respawnWindowMs must be an integer between 0 and 60000/],
    [{ respawnWindowMs: 1.5 }, /respawnWindowMs/],
    [{ respawnWindowMs: '300' }, /respawnWindowMs/],
    [{ indexRescanSeconds: 1 }, /indexRescanSeconds/],
    [{ indexMaxFileBytes: -5 }, /indexMaxFileBytes/],
    [{ includeMappedFiles: 'yes' }, /includeMappedFiles must be true or false/],
    [{ sizeScan: 'sometimes' }, /sizeScan must be/],
  ];
  for (const [input, message] of bad) assert.throws(() => parseAgentConfig(input), message, JSON.stringify(input));

  const file = join(dir, 'agent.json');
  writeFileSync(file, '{ not json');
  assert.throws(() => loadAgentConfig(dir), /not valid JSON/);
  writeFileSync(file, '{}');
  chmodSync(file, 0o666);
  assert.throws(() => loadAgentConfig(dir), /writable by group or others/);
  chmodSync(file, 0o600);
  chownSync(file, 1000, 1000);
  assert.throws(() => loadAgentConfig(dir), /owned by uid 1000/);
  chownSync(file, 0, 0);
  const other = join(tmp.dir, 'other.json');
  writeFileSync(other, '{}');
  const dir2 = join(tmp.dir, 'state2');
  mkdirSync(dir2);
  symlinkSync(other, join(dir2, 'agent.json'));
  assert.throws(() => loadAgentConfig(dir2), /symlink/);
});

test('runtime: opens vault (recovering it), index and protection from a state dir', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const dir = join(tmp.dir, 'state');
  mkdirSync(join(tmp.dir, 'root'));
  saveAgentConfig(dir, parseAgentConfig({ roots: [join(tmp.dir, 'root')], allowSha1: ['b'.repeat(40)] }));
  const rt = openAgentRuntime(dir);
  t.after(() => rt.close());
  assert.equal(statSync(join(dir, 'vault.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'vault')).mode & 0o777, 0o700);
  assert.deepEqual(rt.recovery.problems, []);
  assert.equal(rt.protection.checkHash('b'.repeat(40), null).protected, true);
  assert.equal(rt.protection.checkPath(join(dir, 'vault', 'x')).protected, true);
  writeFileSync(join(tmp.dir, 'root', 'f'), 'x');
  const first = await new Promise<number>((resolve, reject) => {
    const stop = rt.startIndexing((report, error) => {
      stop();
      if (error) reject(error);
      else resolve(report!.files);
    });
  });
  assert.equal(first, 1);
  assert.equal(rt.index.lookupPath(join(tmp.dir, 'root', 'f'))?.size, 1);
  assert.equal(rt.deps.respawnWindowMs, 300);
});
