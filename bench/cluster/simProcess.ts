// A simulator process for the cluster bench: one instant-profile fleet spread over the nodes it is given, answering
// the orchestrator over IPC: start, where each device is connected, and when each device received an action.
import { Fleet } from '../../src/simulator/index.ts';
import { ReceiptLog } from '../simReceipts.ts';

type Command =
  | { id: number; cmd: 'start'; servers: string[]; token: string; n: number; seed: string }
  | { id: number; cmd: 'placement' }
  | { id: number; cmd: 'receipts'; actionIds: string[] }
  | { id: number; cmd: 'stop' };

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one host. */
const now = () => performance.timeOrigin + performance.now();

let fleet: Fleet | null = null;
const receipts = new ReceiptLog();
const reply = (msg: Record<string, unknown>) => process.send!(msg);

process.on('message', async (m: Command) => {
  try {
    switch (m.cmd) {
      case 'start': {
        fleet = new Fleet({
          server: m.servers[0]!,
          servers: m.servers,
          enrollToken: m.token,
          seed: m.seed,
          profile: 'instant',
          journalSize: 8,
          enrollConcurrency: 64,
          connectConcurrency: 512,
        });
        const t0 = now();
        await fleet.start(m.n);
        receipts.watch(fleet, now);
        reply({ id: m.id, ok: true, ms: now() - t0 });
        return;
      }
      case 'placement':
        reply({ id: m.id, ok: true, placement: fleet!.devices().map((d) => ({ machineId: d.machineId, server: d.client.server, online: d.online })) });
        return;
      case 'receipts':
        reply({ id: m.id, ok: true, receipts: receipts.take(m.actionIds) });
        return;
      case 'stop':
        await fleet?.stop();
        reply({ id: m.id, ok: true });
        process.exit(0);
    }
  } catch (err) {
    reply({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});

process.on('disconnect', () => process.exit(0));
reply({ id: 0, ok: true });
