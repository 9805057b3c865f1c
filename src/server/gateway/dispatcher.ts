// Gets actions to connected devices: everything pending when a device connects (oldest first), and each new action
// or cancellation the moment the store announces it. Delivery is at-least-once; devices de-duplicate by action id.
import { HRESULT, type MachineAction } from '../../core/actions.ts';
import { CLOSE_CODES } from '../../protocol/codes.ts';
import type { Store, StoreNotification } from '../../store/store.ts';
import { nowTimestamp } from '../clock.ts';
import { toActionOrder } from './actionOrder.ts';
import type { DeviceConnection } from './connection.ts';
import type { GatewayDeps } from './deps.ts';

export class Dispatcher {
  readonly #store: Store;

  constructor(
    private readonly deps: GatewayDeps,
    private readonly nodeId: string,
    private readonly connectionOf: (machineId: string) => DeviceConnection | undefined,
  ) {
    this.#store = deps.store;
  }

  /** What a (re)connecting device must get: every Pending/InProgress action that has not expired. */
  async pushPending(conn: DeviceConnection): Promise<void> {
    const now = nowTimestamp();
    for (const a of await this.#store.activeActionsForMachine(conn.machineId!)) {
      if (a.expiresAt <= now) {
        await this.expire(a, now); // never delivered: it is TimeOut
        continue;
      }
      if (!conn.send({ t: 'action', action: toActionOrder(a) })) return;
    }
  }

  async expire(a: MachineAction, now: string): Promise<void> {
    const moved = await this.#store.transitionAction(a.id, { kind: 'expire' }, now, { errorHResult: HRESULT.timeout });
    if (moved?.changed) await this.#store.publish({ channel: 'action', machineId: a.machineId, actionId: a.id });
  }

  onNotification(n: StoreNotification): void {
    const conn = this.connectionOf(n.machineId);
    if (!conn || conn.state !== 'ready') return;
    if (n.channel === 'action' && n.actionId) void this.#deliver(conn, n.actionId);
    else if (n.channel === 'machine') void this.#checkMachine(conn);
  }

  /** The safety sweep found `a` still Pending: send it again if its device is connected here. */
  redeliver(a: MachineAction): void {
    const conn = this.connectionOf(a.machineId);
    if (conn?.state === 'ready') conn.send({ t: 'action', action: toActionOrder(a) });
  }

  async #deliver(conn: DeviceConnection, actionId: string): Promise<void> {
    try {
      const a = await this.#store.getAction(actionId);
      if (!a || a.machineId !== conn.machineId) return;
      if (a.status === 'Pending' || a.status === 'InProgress') {
        if (a.expiresAt > nowTimestamp()) conn.send({ t: 'action', action: toActionOrder(a) });
      } else if (a.status === 'Cancelled' || a.status === 'TimeOut') {
        conn.send({ t: 'cancel', actionId: a.id });
      }
    } catch (err) {
      // The device still gets it: it is pushed again on the next connection.
      this.deps.log.error({ err, actionId, machineId: conn.machineId }, 'action dispatch failed');
    }
  }

  /**
   * An offboarded machine loses its connection at once; so does a connection another node has claimed since
   * ours (the device reconnected there): one live connection per machine, cluster-wide.
   */
  async #checkMachine(conn: DeviceConnection): Promise<void> {
    try {
      const m = await this.#store.getMachine(conn.machineId!);
      if (m?.offboarded) return conn.close(CLOSE_CODES.offboarded, 'offboarded');
      if (!conn.claimed) return; // our own claim is still on its way; the newest claim wins
      const owner = await this.#store.connectionOwner(conn.machineId!);
      if (owner !== null && owner !== this.nodeId && this.connectionOf(conn.machineId!) === conn) {
        this.deps.log.info({ machineId: conn.machineId, owner }, 'device connected to another node; closing the stale connection');
        conn.close(CLOSE_CODES.replaced, 'replaced by a newer connection');
      }
    } catch (err) {
      this.deps.log.error({ err, machineId: conn.machineId }, 'machine check failed');
    }
  }
}
