// The persistent hash index and the hashing primitives, on real trees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, linkSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { HashCache } from '../../src/agent/hashIndex/hashCache.ts';
import { hashFile, identityOf, sha1File } from '../../src/agent/hashIndex/hashFile.ts';
import { HashIndex } from '../../src/agent/hashIndex/hashIndex.ts';
import { tempDir } from './helpers.ts';

test('hashFile: SHA-1 and SHA-256 in one pass, equal to sha1sum/sha256sum; refuses symlinks and FIFOs', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const p = join(tmp.dir, 'f');
  writeFileSync(p, randomBytes(3 * 1024 * 1024 + 17));
  const h = hashFile(p);
  assert.equal(h.sha1, execFileSync('sha1sum', [p], { encoding: 'utf8' }).split(' ')[0]);
  assert.equal(h.sha256, execFileSync('sha256sum', [p], { encoding: 'utf8' }).split(' ')[0]);
  assert.equal(h.size, statSync(p).size);
  assert.equal(sha1File(p), h.sha1);
  const empty = join(tmp.dir, 'empty');
  writeFileSync(empty, '');
  assert.equal(hashFile(empty).sha1, createHash('sha1').digest('hex'));
  symlinkSync(p, join(tmp.dir, 'link'));
  assert.throws(() => hashFile(join(tmp.dir, 'link')), /ELOOP/);
  execFileSync('mkfifo', [join(tmp.dir, 'fifo')]);
  assert.throws(() => hashFile(join(tmp.dir, 'fifo')), /not a regular file/);
  assert.throws(() => hashFile(tmp.dir), /not a regular file|EISDIR/);
  assert.throws(() => hashFile(join(tmp.dir, 'missing')), /ENOENT/);
});

test('index: incremental scan, lookups by SHA-1 / inode / identity, skips, removals', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const root = join(tmp.dir, 'root');
  const state = join(tmp.dir, 'state');
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  mkdirSync(join(state, 'vault'), { recursive: true });
  const files: Record<string, string> = {};
  for (let i = 0; i < 50; i++) {
    const p = join(root, i % 2 ? 'a' : join('a', 'b'), `f${i}`);
    writeFileSync(p, `content ${i}`);
    files[p] = createHash('sha1').update(`content ${i}`).digest('hex');
  }
  writeFileSync(join(root, 'dup'), 'content 7');
  linkSync(join(root, 'dup'), join(root, 'dup-link'));
  symlinkSync('/etc/passwd', join(root, 'escape')); // a symlink out of the root: never followed
  execFileSync('mkfifo', [join(root, 'fifo')]);
  writeFileSync(join(state, 'vault', 'item'), 'content 7'); // inside a skipped path
  const outside = join(tmp.dir, 'outside');
  writeFileSync(outside, 'content 7');

  const index = HashIndex.open({ file: join(state, 'index.sqlite'), roots: [root, join(state, 'vault')], skipPaths: [state] });
  t.after(() => index.close());
  assert.equal(statSync(join(state, 'index.sqlite')).mode & 0o777, 0o600);
  assert.equal(index.lastScanCompletedAt(), null);

  const first = await index.scan();
  assert.equal(first.files, 52);
  assert.equal(first.hashed, 52);
  assert.equal(first.unchanged, 0);
  assert.ok(index.lastScanCompletedAt()! > 0);
  const seven = createHash('sha1').update('content 7').digest('hex');
  assert.deepEqual(index.lookupSha1(seven).map((f) => f.path).sort(), [join(root, 'a', 'f7'), join(root, 'dup'), join(root, 'dup-link')].sort());
  assert.equal(index.lookupSha1(seven.toUpperCase()).length, 3);
  assert.deepEqual(index.lookupSha1(createHash('sha1').update('/etc/passwd').digest('hex')), []);
  const dupSt = statSync(join(root, 'dup'), { bigint: true });
  assert.deepEqual(index.lookupInode(dupSt.dev, dupSt.ino).map((f) => f.path).sort(), [join(root, 'dup'), join(root, 'dup-link')]);
  assert.equal(index.lookupIdentity(identityOf(dupSt))?.sha1, seven);
  assert.equal(index.lookupPath(join(root, 'escape')), null);
  assert.equal(index.lookupPath(join(root, 'fifo')), null);

  // Nothing changed: nothing is read again.
  const second = await index.scan();
  assert.equal(second.hashed, 0);
  assert.equal(second.unchanged, 52);

  // Change one (same size, new content), add one, delete one, rename one, touch one.
  const f3 = join(root, 'a', 'f3');
  writeFileSync(f3, 'CONTENT 3');
  writeFileSync(join(root, 'a', 'new'), 'brand new');
  unlinkSync(join(root, 'a', 'b', 'f0'));
  renameSync(join(root, 'a', 'b', 'f2'), join(root, 'a', 'f2-moved'));
  const f5 = join(root, 'a', 'f5');
  utimesSync(f5, new Date(), new Date(2001, 1, 1));
  const third = await index.scan();
  assert.equal(third.hashed, 4, JSON.stringify(third)); // f3, new, f2-moved, f5
  assert.equal(third.removed, 2); // f0, f2
  assert.equal(index.lookupPath(f3)?.sha1, createHash('sha1').update('CONTENT 3').digest('hex'));
  assert.equal(index.lookupSha1(files[join(root, 'a', 'b', 'f0')]!).length, 0);
  assert.deepEqual(index.lookupSha1(files[join(root, 'a', 'b', 'f2')]!).map((f) => f.path), [join(root, 'a', 'f2-moved')]);
  assert.equal(index.count, 52);

  // A removed root takes its entries with it on the next scan.
  rmSync(join(root, 'a'), { recursive: true });
  const fourth = await index.scan();
  assert.equal(fourth.removed, 50);
  assert.equal(index.count, 2);

  // The cache consults the index as an oracle.
  const cache = new HashCache(2, (id) => index.lookupIdentity(id));
  assert.equal(cache.get(identityOf(dupSt))?.sha1, seven);
  assert.equal(cache.size, 1);
  cache.put({ ...identityOf(dupSt), ino: 1n }, { sha1: 'x', sha256: null });
  cache.put({ ...identityOf(dupSt), ino: 2n }, { sha1: 'y', sha256: null });
  assert.equal(cache.size, 2, 'bounded');
});

test('index: size-prefiltered candidate search hashes only same-size files; hard-link search by inode', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const root = join(tmp.dir, 'root');
  mkdirSync(join(root, 'x', 'y'), { recursive: true });
  const target = randomBytes(5000);
  const sha1 = createHash('sha1').update(target).digest('hex');
  writeFileSync(join(root, 'x', 'y', 'copy'), target);
  writeFileSync(join(root, 'x', 'same-size-other'), randomBytes(5000));
  for (let i = 0; i < 20; i++) writeFileSync(join(root, `other${i}`), randomBytes(4000 + i));
  linkSync(join(root, 'x', 'y', 'copy'), join(root, 'hl'));
  const index = HashIndex.open({ file: join(tmp.dir, 'i.sqlite'), roots: [root] });
  t.after(() => index.close());

  const found = await index.findCandidatesBySize(5000, sha1);
  assert.deepEqual(found.map((f) => f.path).sort(), [join(root, 'hl'), join(root, 'x', 'y', 'copy')].sort());
  assert.equal(index.count, 3, 'only the three files of that size were hashed and recorded');
  assert.equal((await index.findCandidatesBySize(5000)).length, 3);
  assert.deepEqual(await index.findCandidatesBySize(1), []);

  const st = statSync(join(root, 'hl'), { bigint: true });
  const other = join(root, 'x', 'another-link');
  linkSync(join(root, 'hl'), other);
  const paths = await index.findInodePaths(st.dev, st.ino);
  assert.deepEqual(paths.sort(), [join(root, 'hl'), other, join(root, 'x', 'y', 'copy')].sort());
  // Growing a file changes its identity: the old hash is not trusted.
  appendFileSync(join(root, 'x', 'y', 'copy'), 'x');
  assert.equal((await index.findCandidatesBySize(5000, sha1)).length, 0);
});

test('index: bad roots are refused; pseudo filesystems and /proc are never walked', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  assert.throws(() => HashIndex.open({ file: join(tmp.dir, 'i.sqlite'), roots: ['relative/root'] }), /must be absolute/);
  const index = HashIndex.open({ file: join(tmp.dir, 'i2.sqlite'), roots: ['/proc', '/sys/kernel', join(tmp.dir, 'missing')] });
  t.after(() => index.close());
  const r = await index.scan();
  assert.equal(r.files, 0);
  assert.equal(index.count, 0);
});
