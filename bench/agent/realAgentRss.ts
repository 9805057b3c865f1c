// The idle agent as it really runs: `tourniquet agent run` (the installed bundle, as the systemd unit starts it),
// enrolled with a real server on loopback and connected, indexing a modest tree; its VmRSS after idling.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChild } from '../lib.ts';
import type { Scratch } from './scratch.ts';

const BIN = join(import.meta.dirname, '../../bin/tourniquet.js');

function cli(scratch: Scratch, args: string[]): Promise<string> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  scratch.track(child.pid);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')}: ${err}`)))),
  );
}

export async function realAgentRss(scratch: Scratch, root: string, idleMs: number) {
  const data = join(scratch.dir, 'real-agent-server');
  const state = join(scratch.dir, 'real-agent-state');
  mkdirSync(state, { mode: 0o700 });
  writeFileSync(join(state, 'agent.json'), JSON.stringify({ roots: [root] }), { mode: 0o600 });
  const server = await startChild([BIN, 'serve', '--port', '0', '--data', data]);
  scratch.track(server.child.pid);
  try {
    const { token } = JSON.parse(await cli(scratch, ['enroll-token', 'create', '--data', data, '--json'])) as { token: string };
    await cli(scratch, ['agent', 'enroll', '--server', server.url, '--token', token, '--state', state]);
    const agent = spawn(process.execPath, [BIN, 'agent', 'run', '--state', state, '--log-level', 'warn'], { stdio: 'ignore' });
    scratch.track(agent.pid);
    try {
      await sleep(2000 + idleMs);
      const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      return {
        what: '`tourniquet agent run`, enrolled and connected to a server on loopback, after idling',
        rssMiB: Math.round((kib('VmRSS') / 1024) * 10) / 10,
        peakRssMiB: Math.round((kib('VmHWM') / 1024) * 10) / 10,
        idleMs,
      };
    } finally {
      agent.kill('SIGTERM');
      await new Promise((r) => (agent.exitCode !== null ? r(null) : agent.once('exit', r)));
    }
  } finally {
    await server.stop();
  }
}
