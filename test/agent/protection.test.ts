// Protection decisions against this machine's real package database and runtime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProtectionPolicy } from '../../src/agent/protection.ts';
import { sha1OfFile, tempDir } from './helpers.ts';

test('dpkg-owned files are protected under every spelling (merged /usr), others are not', () => {
  const p = new ProtectionPolicy();
  for (const path of ['/bin/sleep', '/usr/bin/sleep', '/usr/bin/../bin/sleep']) {
    const v = p.checkPath(path);
    assert.equal(v.protected, true, path);
    assert.equal(v.protected && v.kind, 'package');
    assert.match(v.protected ? v.reason : '', /coreutils \(dpkg\)/);
  }
  assert.equal(p.checkPath('/tmp/definitely-not-packaged').protected, false);
  // A file dropped into a packaged directory is not owned by the package.
  assert.equal(p.checkPath('/usr/bin/tq-dropped-by-malware').protected, false);
  assert.equal(new ProtectionPolicy({ packageOwnership: false }).checkPath('/usr/bin/sleep').protected, false);
});

test('the dpkg database is re-read when dpkg changes it', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  mkdirSync(join(tmp.dir, 'info'));
  writeFileSync(join(tmp.dir, 'status'), '');
  writeFileSync(join(tmp.dir, 'info', 'pkg-a.list'), '/opt/a/bin/tool\n/opt/a\n');
  const p = new ProtectionPolicy({ dpkgDir: tmp.dir });
  assert.equal(p.checkPath('/opt/a/bin/tool').protected, true);
  assert.equal(p.checkPath('/opt/b/bin/tool').protected, false);
  writeFileSync(join(tmp.dir, 'info', 'pkg-b.list'), '/opt/b/bin/tool\n');
  writeFileSync(join(tmp.dir, 'status'), 'changed\n');
  const v = p.checkPath('/opt/b/bin/tool');
  assert.equal(v.protected && v.reason, '/opt/b/bin/tool is owned by the OS package pkg-b (dpkg)');
});

test('the agent, its runtime and its state are protected; allow lists by hash and by path', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const installDir = fileURLToPath(new URL('../../', import.meta.url));
  const p = new ProtectionPolicy({
    packageOwnership: false,
    agentPaths: [join(tmp.dir, 'state')],
    allowSha1: ['ABCDEF0123456789ABCDEF0123456789ABCDEF01'],
    allowPathPrefixes: [join(tmp.dir, 'trusted')],
  });
  for (const path of [process.execPath, join(installDir, 'src', 'agent', 'executor.ts'), join(installDir, 'node_modules', 'x'), join(tmp.dir, 'state', 'vault', 'x')]) {
    const v = p.checkPath(path);
    assert.equal(v.protected && v.kind, 'agent', path);
  }
  const v1 = p.checkPath(join(tmp.dir, 'trusted', 'tool'));
  assert.equal(v1.protected && v1.kind, 'allowPath');
  assert.equal(p.checkPath(join(tmp.dir, 'trusted-not', 'tool')).protected, false, 'prefix means directory, not string prefix');
  const v2 = p.checkHash('abcdef0123456789abcdef0123456789abcdef01', null);
  assert.equal(v2.protected && v2.kind, 'allowHash');
  // The runtime binary's content is protected wherever a copy of it lives.
  const node = sha1OfFile(process.execPath);
  const v3 = p.checkHash(node, null);
  assert.equal(v3.protected && v3.kind, 'agent');
  assert.equal(p.checkHash('0'.repeat(40), 12).protected, false, 'a size that cannot be the runtime is not hashed');
});
