// Matching processes to a SHA-1 and the freeze-then-kill machinery, on real processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HashCache } from '../../src/agent/hashIndex/hashCache.ts';
import { matchProcesses } from '../../src/agent/platform/linux/matchProcesses.ts';
import type { ProcessMatch } from '../../src/agent/platform/linux/matchProcesses.ts';
import { TreeKiller } from '../../src/agent/platform/linux/freezeAndKill.ts';
import { readStat } from '../../src/agent/platform/linux/procfs.ts';
import { Procs, SLEEP, isRunning, makeEvil, procState, scratch, sha1OfFile, waitExec, waitFor } from './helpers.ts';

test('size prefilter, hash cache, excluded and selected pids; processes vanishing mid-scan are tolerated', async (t) => {
  const { tmp, procs } = scratch(t);
  const evil = makeEvil(join(tmp.dir, 'evil'));
  const p = procs.start(evil.path, ['1000']);
  await waitExec(p.pid!, evil.path);
  const cache = new HashCache();

  // Counting reads is only meaningful for our process: other tests may run same-size files meanwhile.
  const only = new Set([p.pid!]);
  const wrongSize = matchProcesses({ sha1: evil.sha1, size: evil.size + 1 }, { cache, onlyPids: only });
  assert.deepEqual(wrongSize.matches, []);
  assert.equal(wrongSize.hashed, 0, 'nothing of another size is read');

  const hit = matchProcesses({ sha1: evil.sha1.toUpperCase(), size: evil.size }, { cache, onlyPids: only });
  assert.deepEqual(hit.matches.map((m) => [m.pid, m.matchedBy, m.file.deleted, m.file.diskPath]), [[p.pid, 'exe', false, evil.path]]);
  assert.equal(hit.hashed, 1);
  assert.equal(matchProcesses({ sha1: evil.sha1, size: evil.size }, { cache, onlyPids: only }).hashed, 0, 'cached by identity');
  const everywhere = matchProcesses({ sha1: evil.sha1, size: null }, { cache });
  assert.deepEqual(everywhere.matches.map((m) => m.pid), [p.pid]);
  assert.equal(everywhere.size, evil.size, 'size learned from the match');
  assert.deepEqual(matchProcesses({ sha1: evil.sha1, size: evil.size }, { cache, excludePids: only }).matches, []);
  assert.deepEqual(matchProcesses({ sha1: evil.sha1, size: evil.size }, { cache, onlyPids: new Set([process.pid]) }).matches, []);

  // Churn: short-lived processes appear and vanish while we scan; no scan may throw.
  const churn = procs.start('/bin/bash', ['-c', 'for i in $(seq 400); do /bin/true & done; wait']);
  for (let scans = 0; scans < 5; scans++) {
    matchProcesses({ sha1: evil.sha1, size: null }, { cache, maxUnknownSizeBytes: 1024 });
    await sleep(1);
  }
  if (churn.exitCode === null && churn.signalCode === null) await new Promise((r) => churn.once('exit', r));
});

test('a preloaded library is matched through its mapping when mapped files are included', async (t) => {
  const { tmp, procs } = scratch(t);
  const lib = join(tmp.dir, 'libevil.so');
  copyFileSync('/usr/lib/x86_64-linux-gnu/libm.so.6', lib);
  appendFileSync(lib, randomBytes(16));
  const sha1 = sha1OfFile(lib);
  const p = procs.start(SLEEP, ['1000'], { env: { LD_PRELOAD: lib } });
  await waitFor(() => {
    try {
      return readFileSync(`/proc/${p.pid}/maps`, 'utf8').includes(lib);
    } catch {
      return false;
    }
  }, 5000, 'library mapped');
  const cache = new HashCache();
  assert.deepEqual(matchProcesses({ sha1, size: null }, { cache }).matches, [], 'off by default');
  const m = matchProcesses({ sha1, size: null }, { cache, includeMaps: true }).matches;
  assert.deepEqual(m.map((x) => [x.pid, x.matchedBy, x.file.originalPath]), [[p.pid, 'map', lib]]);
});

function fakeMatch(pid: number, startTime: bigint): ProcessMatch {
  return {
    pid,
    ppid: 0,
    startTime,
    comm: 'x',
    exe: null,
    cmdline: '',
    matchedBy: 'exe',
    file: {
      readPath: '',
      viaProc: true,
      originalPath: '',
      diskPath: null,
      deleted: false,
      memfd: false,
      foreignRoot: false,
      identity: { dev: 0n, ino: 0n, size: 0n, mtimeNs: 0n, ctimeNs: 0n },
      nlink: 1,
    },
  };
}

test('freeze stops the whole tree before the kill; the kill is verified', async (t) => {
  const procs = new Procs();
  t.after(() => procs.cleanup());
  // bash → bash → sleep, plus a second sleep directly under the top.
  const top = procs.start('/bin/bash', ['-c', `${SLEEP} 1000 & /bin/bash -c '${SLEEP} 1000 & wait' & wait`]);
  const descendants = () => {
    const out: number[] = [];
    const walk = (pid: number) => {
      let kids: number[] = [];
      try {
        kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        kids = [];
      }
      for (const k of kids) {
        out.push(k);
        walk(k);
      }
    };
    walk(top.pid!);
    return out;
  };
  await waitFor(() => descendants().length === 3, 5000, 'tree');
  const tree = descendants();
  const killer = new TreeKiller();
  const members = await killer.freeze([fakeMatch(top.pid!, readStat(top.pid!)!.startTime)]);
  assert.equal(members.length, 4);
  for (const pid of [top.pid!, ...tree]) assert.equal(procState(pid), 'T', `pid ${pid} stopped`);
  assert.deepEqual(
    killer.list().filter((m) => m.matchedBy === 'descendant').map((m) => m.pid).sort(),
    [...tree].sort(),
  );
  await killer.killAll();
  for (const m of killer.list()) {
    assert.equal(m.state, 'killed');
    assert.ok(!isRunning(m.pid));
  }
});

test('never signals pid 1, the agent or its ancestors, nor a reused pid; a zombie counts as dead', async (t) => {
  const procs = new Procs();
  t.after(() => procs.cleanup());
  const killer = new TreeKiller();
  const self = readStat(process.pid)!;
  const parent = readStat(process.ppid)!;
  await killer.freeze([fakeMatch(1, readStat(1)!.startTime), fakeMatch(process.pid, self.startTime), fakeMatch(process.ppid, parent.startTime)]);
  const errors = killer.list().map((m) => [m.pid, m.state, m.error]);
  assert.deepEqual(errors, [
    [1, 'refused', 'EPERM: refusing to signal pid 1'],
    [process.pid, 'refused', 'EPERM: refusing to signal the agent itself'],
    [process.ppid, 'refused', 'EPERM: refusing to signal an ancestor of the agent'],
  ]);
  assert.equal(procState(process.ppid) !== 'T', true);

  // A pid whose start time differs is another process: not touched.
  const bystander = procs.start(SLEEP, ['1000']);
  await waitExec(bystander.pid!, SLEEP);
  const k2 = new TreeKiller();
  await k2.freeze([fakeMatch(bystander.pid!, 1n)]);
  await k2.killAll();
  assert.ok(isRunning(bystander.pid!));
  assert.notEqual(procState(bystander.pid!), 'T');
  assert.equal(k2.list()[0]?.state, 'gone', 'the process it named no longer exists');

  // A child whose parent never reaps it stays a zombie: it is dead, and the verify loop must say so at once.
  const parentPy = procs.start('/usr/bin/python3', ['-c', `import subprocess, time\np = subprocess.Popen(['${SLEEP}', '1000'])\nprint(p.pid, flush=True)\ntime.sleep(1000)`]);
  const childPid = Number(await new Promise<string>((r) => parentPy.stdout!.once('data', (d: Buffer) => r(d.toString().trim()))));
  await waitExec(childPid, SLEEP);
  const k3 = new TreeKiller({ verifyTimeoutMs: 2000 });
  await k3.freeze([fakeMatch(childPid, readStat(childPid)!.startTime)]);
  const t0 = Date.now();
  await k3.killAll();
  assert.ok(Date.now() - t0 < 500);
  assert.equal(procState(childPid), 'Z');
  assert.equal(k3.list()[0]?.state, 'killed');
});

test('a process frozen by a cgroup v1 freezer (state D) is thawed so the SIGKILL lands', { skip: !existsSync('/sys/fs/cgroup/freezer/cgroup.procs') && 'no cgroup v1 freezer here' }, async (t) => {
  const procs = new Procs();
  const group = `/sys/fs/cgroup/freezer/tq-agent-test-${randomBytes(4).toString('hex')}`;
  mkdirSync(group);
  t.after(async () => {
    procs.cleanup();
    try {
      writeFileSync(join(group, 'freezer.state'), 'THAWED');
    } catch {
      // gone
    }
    await waitFor(() => readFileSync(join(group, 'cgroup.procs'), 'utf8').trim() === '', 2000, 'cgroup empty').catch(() => {});
    rmdirSync(group);
  });
  const p = procs.start(SLEEP, ['1000']);
  await waitExec(p.pid!, SLEEP);
  writeFileSync(join(group, 'cgroup.procs'), String(p.pid));
  writeFileSync(join(group, 'freezer.state'), 'FROZEN');
  await waitFor(() => readFileSync(join(group, 'freezer.state'), 'utf8').trim() === 'FROZEN', 2000, 'frozen');
  const killer = new TreeKiller({ stopTimeoutMs: 50, verifyTimeoutMs: 2000 });
  await killer.freeze([fakeMatch(p.pid!, readStat(p.pid!)!.startTime)]);
  await killer.killAll();
  assert.equal(killer.list()[0]?.state, 'killed');
  assert.ok(!isRunning(p.pid!));
});
