// Reading /proc: parsing edge cases and the "(deleted)" rule, checked against real processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, chmodSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  interpretLink,
  listPids,
  parseStat,
  readCmdline,
  readExe,
  readFds,
  readStat,
  selfAndAncestors,
  snapshotStats,
} from '../../src/agent/platform/linux/procfs.ts';
import { makeEvil, scratch, tempDir, waitExec } from './helpers.ts';

test('parseStat: comm with spaces and parentheses, kernel threads, garbage', () => {
  const line = '4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0';
  const st = parseStat(4242, line);
  assert.equal(st?.comm, 'a) b (c)');
  assert.equal(st?.state, 'S');
  assert.equal(st?.ppid, 17);
  assert.equal(st?.startTime, 98765n);
  assert.equal(st?.kernelThread, false);
  const kthread = parseStat(99, '99 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 50 0 0');
  assert.equal(kthread?.kernelThread, true);
  assert.equal(parseStat(1, ''), null);
  assert.equal(parseStat(1, '1 (x'), null);
  assert.equal(parseStat(1, '1 (x) S notanumber'), null);
  assert.equal(readStat(2)?.kernelThread, true, 'kthreadd');
  assert.equal(readStat(process.pid)?.kernelThread, false);
  assert.equal(readStat(2 ** 22 + 12345), null, 'a pid that does not exist reads as null');
  assert.equal(readExe(2), null, 'kernel threads have no executable');
  assert.equal(readCmdline(2 ** 22 + 12345), null);
  assert.deepEqual(readFds(2 ** 22 + 12345), []);
});

test('interpretLink strips " (deleted)" only when it is not part of a real name', (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const literal = join(tmp.dir, 'weird (deleted)');
  writeFileSync(literal, 'x');
  assert.deepEqual(interpretLink(literal, '', 1), { raw: literal, path: literal, deleted: false, memfd: false });
  const gone = join(tmp.dir, 'gone');
  assert.deepEqual(interpretLink(`${gone} (deleted)`, '', 0), { raw: `${gone} (deleted)`, path: gone, deleted: true, memfd: false });
  assert.deepEqual(interpretLink('/memfd:x (deleted)', '', 0), { raw: '/memfd:x (deleted)', path: '/memfd:x', deleted: true, memfd: true });
  // The literal name exists but the inode has no links: deleted, the name is kept as the kernel gave it.
  assert.equal(interpretLink(literal, '', 0).deleted, true);
});

test('real processes: deleted binary, a binary literally named "... (deleted)", pids, ancestors', async (t) => {
  const { tmp, procs } = scratch(t);
  const evil = makeEvil(join(tmp.dir, 'evil'));
  const a = procs.start(evil.path, ['1000']);
  await waitExec(a.pid!, evil.path);
  unlinkSync(evil.path);
  const ea = readExe(a.pid!);
  assert.deepEqual(ea, { raw: `${evil.path} (deleted)`, path: evil.path, deleted: true, memfd: false });

  const weird = join(tmp.dir, 'tricky (deleted)');
  copyFileSync('/usr/bin/sleep', weird);
  chmodSync(weird, 0o755);
  const b = procs.start(weird, ['1000']);
  await waitExec(b.pid!, weird);
  assert.deepEqual(readExe(b.pid!), { raw: weird, path: weird, deleted: false, memfd: false });
  assert.deepEqual(readCmdline(b.pid!), [weird, '1000']);

  const pids = listPids();
  assert.ok(pids.includes(process.pid) && pids.includes(1) && pids.includes(a.pid!));
  const snap = snapshotStats();
  assert.equal(snap.get(a.pid!)?.ppid, process.pid);
  const anc = selfAndAncestors();
  assert.ok(anc.has(1) && anc.has(process.pid) && anc.has(process.ppid));
  assert.ok(!anc.has(a.pid!));
});
