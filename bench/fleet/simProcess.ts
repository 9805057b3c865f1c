// A simulator process for the fleet bench: holds simulated fleets (instant profile) and answers the orchestrator
// over IPC: start more devices, report RSS, and tell when each device received an action (for dispatch latency).
import { Fleet } from '../../src/simulator/index.ts';
import { ReceiptLog } from '../simReceipts.ts';

type Command =
  | { id: number; cmd: 'start'; server: string; token: string; n: number; seed: string; connectTimeoutMs?: number }
  | { id: number; cmd: 'rss' }
  | { id: number; cmd: 'receipts'; actionIds: string[] }
  | { id: number; cmd: 'online' }
  | { id: number; cmd: 'stop' };

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one host. */
const now = () => performance.timeOrigin + performance.now();

const fleets: Fleet[] = [];
const receipts = new ReceiptLog();

function reply(msg: Record<string, unknown>): void {
  process.send!(msg);
}

process.on('message', async (m: Command) => {
  try {
    switch (m.cmd) {
      case 'start': {
        const fleet = new Fleet({
          server: m.server,
          enrollToken: m.token,
          seed: m.seed,
          profile: 'instant',
          journalSize: 8,
          enrollConcurrency: 64,
          connectConcurrency: 512,
          ...(m.connectTimeoutMs ? { connectTimeoutMs: m.connectTimeoutMs } : {}),
          log: { debug() {}, warn() {}, info: (o: object) => process.stderr.write(`[sim ${process.pid}] ${JSON.stringify(o)}\n`) },
        });
        const t0 = now();
        await fleet.start(m.n);
        const ms = now() - t0;
        receipts.watch(fleet, now);
        fleets.push(fleet);
        reply({ id: m.id, ok: true, ms, machineIds: fleet.devices().map((d) => d.machineId) });
        return;
      }
      case 'rss':
        global.gc?.();
        reply({ id: m.id, ok: true, rss: process.memoryUsage().rss });
        return;
      case 'online':
        reply({ id: m.id, ok: true, online: fleets.reduce((s, f) => s + f.onlineCount(), 0) });
        return;
      case 'receipts':
        reply({ id: m.id, ok: true, receipts: receipts.take(m.actionIds) });
        return;
      case 'stop':
        await Promise.all(fleets.map((f) => f.stop()));
        reply({ id: m.id, ok: true });
        process.exit(0);
    }
  } catch (err) {
    reply({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});

process.on('disconnect', () => process.exit(0));
reply({ id: 0, ok: true, ready: true });
