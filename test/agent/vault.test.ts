// The quarantine vault on real files: encryption, metadata, restore fidelity, tamper evidence, bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Vault, VaultError } from '../../src/agent/vault/vault.ts';
import { loadOrCreateVaultKey } from '../../src/agent/vault/vaultKey.ts';
import { vaultReport, vaultReportChunks } from '../../src/agent/vaultReport.ts';
import { checkDeviceMessage } from '../../src/protocol/schemas.ts';
import { makeEvil, sha1Of, sha1OfFile, tempDir } from './helpers.ts';

function openVault(stateDir: string, vaultDir = join(stateDir, 'vault')): Vault {
  return Vault.open({ dir: vaultDir, keyFile: join(stateDir, 'vault.key') });
}

function lsattrFlags(path: string): string {
  return execFileSync('lsattr', ['-d', path], { encoding: 'utf8' }).split(/\s+/)[0] ?? '';
}

test('quarantine → encrypted item with full metadata → restore puts back bytes, mode, owner, times, xattrs, +i, links', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const vault = openVault(join(tmp.dir, 'state'));
  const f = makeEvil(join(tmp.dir, 'evil'), 0o4750);
  chownSync(f.path, 4321, 8765);
  execFileSync('chmod', ['4750', f.path]);
  execFileSync('/usr/bin/python3', ['-c', `import os; os.setxattr(${JSON.stringify(f.path)}, 'user.origin', b'downloaded')`]);
  execFileSync('touch', ['-a', '-d', '@1600000000.111111111', f.path]);
  execFileSync('touch', ['-m', '-d', '@1700000000.987654321', f.path]);
  linkSync(f.path, join(tmp.dir, 'evil-link'));
  execFileSync('chattr', ['+i', f.path]);
  const before = statSync(f.path, { bigint: true });

  const steps: string[] = [];
  const q = vault.quarantine({
    source: f.path,
    paths: [f.path, join(tmp.dir, 'evil-link')],
    originalPath: f.path,
    expectedSha1: f.sha1,
    actionId: 'act-1',
    killedPids: [11, 12, 11],
    onStep: (s) => steps.push(s),
  });
  assert.equal(q.error, undefined);
  assert.ok(q.itemId);
  assert.deepEqual(steps, ['journaled', 'tmp-created', 'encrypted', 'data-stored', 'meta-written', 'name-removed', 'name-removed', 'meta-updated', 'done']);
  assert.deepEqual(q.paths.map((p) => [p.path, p.removed]), [[f.path, true], [join(tmp.dir, 'evil-link'), true]]);
  assert.equal(q.linksLeft, 0);
  assert.ok(!existsSync(f.path) && !existsSync(join(tmp.dir, 'evil-link')));

  // The stored bytes are ciphertext, not the file (no re-detection, no accidental execution).
  const data = readFileSync(join(vault.dir, `${q.itemId}.data`));
  assert.equal(data.subarray(0, 8).toString(), 'TQVAULT1');
  assert.equal(data.indexOf(readFileSync('/usr/bin/sleep').subarray(0, 4096)), -1);
  assert.equal(statSync(join(vault.dir, `${q.itemId}.data`)).mode & 0o777, 0o600);
  assert.equal(statSync(vault.dir).mode & 0o777, 0o700);

  const meta = vault.get(q.itemId);
  assert.equal(meta.sha1, f.sha1);
  assert.equal(meta.sha256.length, 64);
  assert.equal(meta.actionId, 'act-1');
  assert.deepEqual(meta.killedPids, [11, 12]);
  assert.equal(meta.uid, 4321);
  assert.equal(meta.gid, 8765);
  assert.equal(meta.mode & 0o7777, 0o4750);
  assert.equal(meta.mtimeNs, String(before.mtimeNs));
  assert.equal(meta.flags.immutable, true);
  assert.equal(meta.xattrs.captured, true);
  assert.equal(meta.xattrs.captured && Buffer.from(meta.xattrs.values['user.origin']!, 'base64').toString(), 'downloaded');
  assert.equal(sha1Of(vault.decryptToBuffer(q.itemId)), f.sha1);
  const streamed: Buffer[] = [];
  for await (const c of vault.decryptToStream(q.itemId)) streamed.push(c as Buffer);
  assert.equal(sha1Of(Buffer.concat(streamed)), f.sha1);
  assert.deepEqual(
    vault.list().map((i) => [i.itemId, i.state, i.sha1]),
    [[q.itemId, 'quarantined', f.sha1]],
  );

  const r = vault.restore(q.itemId);
  assert.equal(r.path, f.path);
  assert.deepEqual(r.links, [join(tmp.dir, 'evil-link')]);
  const after = statSync(f.path, { bigint: true });
  assert.equal(sha1OfFile(f.path), f.sha1);
  assert.equal(after.mode, before.mode);
  assert.equal(after.uid, 4321n);
  assert.equal(after.gid, 8765n);
  assert.equal(after.mtimeNs, before.mtimeNs);
  assert.equal(after.atimeNs, before.atimeNs);
  assert.equal(after.ino, statSync(join(tmp.dir, 'evil-link'), { bigint: true }).ino);
  assert.match(lsattrFlags(f.path), /i/);
  const x = execFileSync('/usr/bin/python3', ['-c', `import os,sys; sys.stdout.write(os.getxattr(${JSON.stringify(f.path)}, 'user.origin').decode())`], { encoding: 'utf8' });
  assert.equal(x, 'downloaded');
  assert.equal(vault.get(q.itemId).state, 'restored');
  assert.equal(vault.get(q.itemId).restoredTo, f.path);
  assert.deepEqual(readdirSync(join(vault.dir, 'journal')), []);
  assert.throws(() => vault.restore(q.itemId!), (e: unknown) => e instanceof VaultError && e.code === 'Conflict');
});

test('cross-device (EXDEV): vault on tmpfs for a file on ext4, and the reverse', (t) => {
  const disk = tempDir();
  const shm = { dir: join('/dev/shm', `tq-agent-${randomBytes(4).toString('hex')}`) };
  mkdirSync(shm.dir);
  t.after(() => {
    disk.cleanup();
    execFileSync('rm', ['-rf', shm.dir]);
  });
  assert.notEqual(statSync(disk.dir).dev, statSync(shm.dir).dev);
  for (const [fileDir, stateDir] of [
    [disk.dir, join(shm.dir, 'state')],
    [shm.dir, join(disk.dir, 'state')],
  ] as const) {
    const vault = openVault(stateDir);
    const f = makeEvil(join(fileDir, `evil-${randomBytes(3).toString('hex')}`));
    const q = vault.quarantine({ source: f.path, paths: [f.path], originalPath: f.path, expectedSha1: f.sha1, actionId: null });
    assert.ok(q.itemId, q.error);
    assert.ok(!existsSync(f.path));
    assert.equal(sha1Of(vault.decryptToBuffer(q.itemId)), f.sha1);
    vault.restore(q.itemId!);
    assert.equal(sha1OfFile(f.path), f.sha1);
  }
});

test('tampering is detected: data, metadata, foreign key', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const vault = openVault(join(tmp.dir, 'state'));
  const f = makeEvil(join(tmp.dir, 'evil'));
  const q = vault.quarantine({ source: f.path, paths: [f.path], originalPath: f.path, expectedSha1: f.sha1, actionId: null });
  assert.ok(q.itemId);
  const dataPath = join(vault.dir, `${q.itemId}.data`);
  const original = readFileSync(dataPath);

  // One flipped ciphertext bit: decryption fails, restore writes nothing, verify says no.
  const flipped = Buffer.from(original);
  flipped[100] = flipped[100]! ^ 1;
  writeFileSync(dataPath, flipped);
  assert.equal(vault.verify(q.itemId), false);
  assert.throws(() => vault.decryptToBuffer(q.itemId!), (e: unknown) => e instanceof VaultError && e.code === 'Integrity');
  assert.throws(() => vault.restore(q.itemId!), (e: unknown) => e instanceof VaultError && e.code === 'Integrity');
  assert.ok(!existsSync(f.path));
  assert.deepEqual(readdirSync(tmp.dir).filter((n) => n.startsWith('.tourniquet-restore')), []);
  writeFileSync(dataPath, original);
  assert.equal(vault.verify(q.itemId), true);

  // Metadata edited to send a restore elsewhere: refused, listed as a problem, not as an item.
  const metaPath = join(vault.dir, `${q.itemId}.meta`);
  const metaText = readFileSync(metaPath, 'utf8');
  writeFileSync(metaPath, metaText.replace(f.path, '/etc/evil'));
  assert.throws(() => vault.get(q.itemId!), /failed authentication/);
  assert.deepEqual(vault.list(), []);
  assert.equal(vault.audit()[0]?.itemId, q.itemId);
  writeFileSync(metaPath, 'not json');
  assert.throws(() => vault.get(q.itemId!), /not valid JSON/);
  writeFileSync(metaPath, metaText);

  // Another device's key cannot read the item.
  const other = Vault.open({ dir: vault.dir, keyFile: join(tmp.dir, 'other.key') });
  assert.notEqual(other.keyFingerprint, vault.keyFingerprint);
  assert.throws(() => other.get(q.itemId!), /failed authentication/);
  assert.equal(vault.verify(q.itemId), true);
});

test('refusals: wrong SHA-1, changed file, bad paths and ids, restore conflicts', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const vault = openVault(join(tmp.dir, 'state'));
  const f = makeEvil(join(tmp.dir, 'evil'));
  const clean = () => assert.deepEqual(readdirSync(vault.dir).filter((n) => n !== 'journal'), []);

  const wrong = vault.quarantine({ source: f.path, paths: [f.path], originalPath: f.path, expectedSha1: 'b'.repeat(40), actionId: null });
  assert.equal(wrong.itemId, null);
  assert.match(wrong.error ?? '', /not b{40}/);
  assert.equal(sha1OfFile(f.path), f.sha1);
  clean();

  for (const bad of ['nope', '', 'z'.repeat(40)]) {
    assert.match(vault.quarantine({ source: f.path, paths: [f.path], originalPath: f.path, expectedSha1: bad, actionId: null }).error ?? '', /invalid SHA-1/);
  }
  assert.match(vault.quarantine({ source: 'evil', paths: [], originalPath: 'evil', expectedSha1: f.sha1, actionId: null }).error ?? '', /absolute/);
  assert.match(vault.quarantine({ source: f.path, paths: ['rel'], originalPath: f.path, expectedSha1: f.sha1, actionId: null }).error ?? '', /absolute/);
  assert.match(vault.quarantine({ source: tmp.dir, paths: [], originalPath: tmp.dir, expectedSha1: f.sha1, actionId: null }).error ?? '', /not a regular file/);
  assert.match(vault.quarantine({ source: join(tmp.dir, 'missing'), paths: [], originalPath: '/x', expectedSha1: f.sha1, actionId: null }).error ?? '', /ENOENT/);
  execFileSync('mkfifo', [join(tmp.dir, 'fifo')]);
  assert.match(vault.quarantine({ source: join(tmp.dir, 'fifo'), paths: [], originalPath: '/x', expectedSha1: f.sha1, actionId: null }).error ?? '', /not a regular file/);
  symlinkSync(f.path, join(tmp.dir, 'link'));
  assert.match(vault.quarantine({ source: join(tmp.dir, 'link'), paths: [join(tmp.dir, 'link')], originalPath: '/x', expectedSha1: f.sha1, actionId: null }).error ?? '', /ELOOP/);
  // A path that is not a name of the source's inode is never removed.
  const decoy = makeEvil(join(tmp.dir, 'decoy'));
  const mixed = vault.quarantine({ source: f.path, paths: [decoy.path], originalPath: f.path, expectedSha1: f.sha1, actionId: null });
  assert.equal(mixed.itemId, null);
  assert.ok(existsSync(decoy.path) && existsSync(f.path));
  clean();

  // The file changes after it was stored but before its name is removed: left in place, item undone.
  const changed = vault.quarantine({
    source: f.path,
    paths: [f.path],
    originalPath: f.path,
    expectedSha1: f.sha1,
    actionId: null,
    onStep: (s) => {
      if (s === 'meta-written') appendFileSync(f.path, 'more');
    },
  });
  assert.equal(changed.itemId, null);
  assert.match(changed.error ?? '', /changed between hash and unlink/);
  assert.ok(existsSync(f.path));
  clean();

  // Restore refusals.
  const g = makeEvil(join(tmp.dir, 'g'));
  const q = vault.quarantine({ source: g.path, paths: [g.path], originalPath: g.path, expectedSha1: g.sha1, actionId: null });
  assert.ok(q.itemId);
  for (const id of ['', '../x', 'A'.repeat(32), `${q.itemId}/..`]) {
    assert.throws(() => vault.restore(id), (e: unknown) => e instanceof VaultError && e.code === 'InvalidInput');
  }
  assert.throws(() => vault.restore('f'.repeat(32)), (e: unknown) => e instanceof VaultError && e.code === 'NotFound');
  assert.throws(() => vault.restore(q.itemId!, { destinationPath: 'relative/path' }), /absolute/);
  assert.throws(() => vault.restore(q.itemId!, { destinationPath: join(tmp.dir, 'no-such-dir', 'x') }), /does not exist/);
  writeFileSync(g.path, 'a different file');
  assert.throws(() => vault.restore(q.itemId!), (e: unknown) => e instanceof VaultError && e.code === 'Conflict');
  assert.equal(readFileSync(g.path, 'utf8'), 'a different file');
  const over = vault.restore(q.itemId!, { overwrite: true });
  assert.equal(over.path, g.path);
  assert.equal(sha1OfFile(g.path), g.sha1);

  // Restoring over an identical file is a no-op success.
  const h = makeEvil(join(tmp.dir, 'h'));
  const qh = vault.quarantine({ source: h.path, paths: [h.path], originalPath: h.path, expectedSha1: h.sha1, actionId: null });
  writeFileSync(h.path, vault.decryptToBuffer(qh.itemId!));
  assert.match(vault.restore(qh.itemId!).notes.join(), /identical file was already present/);

  // Purge keeps the metadata for audit, drops the content.
  const p = makeEvil(join(tmp.dir, 'p'));
  const qp = vault.quarantine({ source: p.path, paths: [p.path], originalPath: p.path, expectedSha1: p.sha1, actionId: null });
  vault.purge(qp.itemId!);
  assert.equal(vault.get(qp.itemId!).state, 'purged');
  assert.ok(!existsSync(join(vault.dir, `${qp.itemId}.data`)));
  assert.throws(() => vault.restore(qp.itemId!), /purged/);
});

test('vault key: created once 0600, stable, never replaced when damaged, never through a symlink', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const keyFile = join(tmp.dir, 'vault.key');
  const k1 = loadOrCreateVaultKey(keyFile);
  assert.equal(k1.length, 32);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  assert.deepEqual(loadOrCreateVaultKey(keyFile), k1);
  execFileSync('chmod', ['644', keyFile]);
  assert.deepEqual(loadOrCreateVaultKey(keyFile), k1);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'loosened permissions are tightened');
  writeFileSync(keyFile, k1.subarray(0, 16));
  assert.throws(() => loadOrCreateVaultKey(keyFile), /16 bytes, expected 32; refusing/);
  assert.equal(readFileSync(keyFile).length, 16, 'a damaged key is never overwritten');
  const link = join(tmp.dir, 'link.key');
  symlinkSync(join(tmp.dir, 'target.key'), link);
  assert.throws(() => loadOrCreateVaultKey(link), /ELOOP/);
  chownSync(keyFile, 1000, 1000);
  assert.throws(() => loadOrCreateVaultKey(keyFile), /owned by uid 1000/);
  // The vault directory must be a real directory.
  symlinkSync(tmp.dir, join(tmp.dir, 'vault-link'));
  assert.throws(() => Vault.open({ dir: join(tmp.dir, 'vault-link'), keyFile: join(tmp.dir, 'k2') }), /not a symlink/);
  assert.throws(() => Vault.open({ dir: 'relative', keyFile: join(tmp.dir, 'k3') }), /absolute/);
});

test('a 64 MiB file streams through the vault without being held in memory', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const vault = openVault(join(tmp.dir, 'state'));
  const path = join(tmp.dir, 'big');
  const chunk = randomBytes(1024 * 1024);
  for (let i = 0; i < 64; i++) appendFileSync(path, chunk);
  const sha1 = sha1OfFile(path);
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const q = vault.quarantine({ source: path, paths: [path], originalPath: path, expectedSha1: sha1, actionId: null });
  const ms = performance.now() - t0;
  assert.ok(q.itemId, q.error);
  assert.ok(process.memoryUsage().rss - rss0 < 48 * 1024 * 1024, 'quarantine streamed');
  assert.ok(ms < 3000, `quarantine of 64 MiB took ${ms} ms`);
  vault.restore(q.itemId!);
  assert.equal(sha1OfFile(path), sha1);
});

test('the vault inventory is reported in the v1 vault frame shape', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const vault = openVault(join(tmp.dir, 'state'));
  const guid = 'A1B2C3D4-0000-4000-8000-00000000000A';
  const a = makeEvil(join(tmp.dir, 'a'));
  const b = makeEvil(join(tmp.dir, 'b'));
  const qa = vault.quarantine({ source: a.path, paths: [a.path], originalPath: a.path, expectedSha1: a.sha1, actionId: guid });
  const qb = vault.quarantine({ source: b.path, paths: [b.path], originalPath: b.path, expectedSha1: b.sha1, actionId: 'not-a-guid' });
  vault.restore(qb.itemId!);
  const items = vaultReport(vault);
  assert.deepEqual(
    items.map((i) => [i.itemId, i.actionId, i.sha1, i.state]).sort(),
    [
      [qa.itemId, guid.toLowerCase(), a.sha1, 'quarantined'],
      [qb.itemId, null, b.sha1, 'restored'],
    ].sort(),
  );
  const checked = checkDeviceMessage({ t: 'vault', seq: 1, items });
  assert.ok(checked.ok, checked.ok ? '' : checked.error);
  assert.deepEqual(vaultReportChunks(vault).map((c) => c.length), [2]);
});
