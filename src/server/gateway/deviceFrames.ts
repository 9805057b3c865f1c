// What the gateway does with each authenticated device frame. A device only ever touches its own actions; results
// must carry a valid signature; a result for a final action is recorded but changes nothing.
import { HRESULT, isFinal, type MachineAction } from '../../core/actions.ts';
import { normalizeTimestamp } from '../../core/time.ts';
import { ERROR_CODES } from '../../protocol/codes.ts';
import { toInt32HResult } from '../../protocol/schemas.ts';
import { verifyResult } from '../../protocol/signing.ts';
import type { DeviceMessage, ServerMessage } from '../../protocol/v1.ts';
import type { FileObservation, VaultItemRecord } from '../../store/store.ts';
import { nowTimestamp } from '../clock.ts';
import type { DeviceConnection, FrameRejection } from './connection.ts';
import { deviceAudit, type GatewayDeps } from './deps.ts';
import { factsPatch, sightedIps } from './machineFacts.ts';

type Frame<T extends DeviceMessage['t']> = Extract<DeviceMessage, { t: T }>;
type Reply = ServerMessage | FrameRejection;

const accepted = (seq: number): ServerMessage => ({ t: 'accepted', seq });

export class DeviceFrames {
  constructor(
    private readonly deps: GatewayDeps,
    /** Called when the gateway itself moved an action to a final state (expiry noticed on a device frame). */
    private readonly onFinalized: (a: MachineAction) => void,
  ) {}

  async handle(conn: DeviceConnection, msg: Exclude<DeviceMessage, { t: 'hello' }>): Promise<Reply> {
    try {
      switch (msg.t) {
        case 'ack':
          return await this.#ack(conn, msg);
        case 'progress':
          return await this.#progress(conn, msg);
        case 'result':
          return await this.#result(conn, msg);
        case 'facts':
          return await this.#facts(conn, msg);
        case 'observations':
          return await this.#observations(conn, msg);
        case 'vault':
          return await this.#vault(conn, msg);
      }
    } catch (err) {
      this.deps.log.error({ err, machineId: conn.machineId, t: msg.t }, 'device frame could not be processed');
      return { code: ERROR_CODES.unavailable, message: 'try again later', strike: false, audit: false };
    }
  }

  /** The action if it is this device's; otherwise a rejection (another machine's id is abuse, an unknown one is not). */
  async #ownAction(conn: DeviceConnection, actionId: string): Promise<MachineAction | FrameRejection> {
    const a = await this.deps.store.getAction(actionId.toLowerCase());
    if (a && a.machineId === conn.machineId) return a;
    return {
      code: ERROR_CODES.notYourAction,
      message: `action ${actionId} is not assigned to this machine`,
      strike: a !== null,
      audit: true,
    };
  }

  /** Expired but not yet swept: time it out now, so nothing a device says can complete it. */
  async #expireIfDue(a: MachineAction, now: string): Promise<MachineAction> {
    if (isFinal(a.status) || a.expiresAt > now) return a;
    const moved = await this.deps.store.transitionAction(a.id, { kind: 'expire' }, now, { errorHResult: HRESULT.timeout });
    if (moved?.changed) this.onFinalized(moved.action);
    return moved?.action ?? a;
  }

  async #ack(conn: DeviceConnection, msg: Frame<'ack'>): Promise<Reply> {
    const own = await this.#ownAction(conn, msg.actionId);
    if (!('id' in own)) return own;
    const now = nowTimestamp();
    const a = await this.#expireIfDue(own, now);
    if (a.status === 'Pending') {
      await this.deps.store.transitionAction(a.id, { kind: 'deviceAck' }, now);
    } else if (a.status === 'Cancelled' || a.status === 'TimeOut') {
      conn.send({ t: 'cancel', actionId: a.id }); // it must not run; tell the device again
    }
    return accepted(msg.seq);
  }

  async #progress(conn: DeviceConnection, msg: Frame<'progress'>): Promise<Reply> {
    const own = await this.#ownAction(conn, msg.actionId);
    if (!('id' in own)) return own;
    this.deps.log.debug({ machineId: conn.machineId, actionId: own.id, message: msg.message }, 'device progress');
    return accepted(msg.seq);
  }

  async #result(conn: DeviceConnection, msg: Frame<'result'>): Promise<Reply> {
    const own = await this.#ownAction(conn, msg.actionId);
    if (!('id' in own)) return own;
    const errorHResult = toInt32HResult(msg.errorHResult);
    const signed = { actionId: msg.actionId, outcome: msg.outcome, errorHResult: msg.errorHResult, detail: msg.detail };
    if (!conn.publicKey || !verifyResult(conn.publicKey, conn.machineId!, signed, msg.signature)) {
      return { code: ERROR_CODES.badSignature, message: 'result signature does not verify', strike: true, audit: true };
    }
    const prev = own.deviceResult;
    if (prev && (prev.detail as { signature?: unknown } | null)?.signature === msg.signature) {
      return accepted(msg.seq); // the same signed result again (the device did not hear our accepted)
    }
    const now = nowTimestamp();
    const a = await this.#expireIfDue(own, now);
    // A Failed result always carries a failure code, even from a device that forgot to set one.
    const storedHResult = msg.outcome === 'Succeeded' ? 0 : errorHResult || HRESULT.fail;
    const moved = await this.deps.store.applyDeviceResult(a.id, now, {
      outcome: msg.outcome,
      errorHResult: storedHResult,
      reason: msg.reason,
      reportedAt: now,
      detail: { ...msg.detail, signature: msg.signature },
    });
    const applied = moved?.changed ?? false;
    void this.deps.audit(
      deviceAudit(conn, 'device.result', 'success', a.id, {
        outcome: msg.outcome,
        errorHResult: storedHResult,
        reason: msg.reason,
        applied,
        status: moved?.action.status ?? a.status,
        processes: msg.detail.processes.length,
        files: msg.detail.files.length,
      }),
    );
    return accepted(msg.seq);
  }

  async #facts(conn: DeviceConnection, msg: Frame<'facts'>): Promise<Reply> {
    const now = nowTimestamp();
    const id = conn.machineId!;
    await this.deps.store.updateMachine(id, { ...factsPatch(msg.facts, conn.remoteIp), lastSeen: now });
    conn.hostname = msg.facts.hostname;
    conn.ipAddresses = msg.facts.ipAddresses;
    for (const ip of sightedIps(msg.facts.ipAddresses)) await this.deps.store.recordMachineIp(id, ip, now);
    return accepted(msg.seq);
  }

  async #observations(conn: DeviceConnection, msg: Frame<'observations'>): Promise<Reply> {
    const seenAt = nowTimestamp();
    const obs: FileObservation[] = msg.files.map((f) => ({
      sha1: f.sha1.toLowerCase(),
      sha256: f.sha256 ? f.sha256.toLowerCase() : null,
      path: f.path,
      size: f.size,
      signer: f.signer,
      trusted: f.trusted,
      seenAt,
    }));
    await this.deps.store.recordFileObservations(conn.machineId!, obs, msg.complete);
    return accepted(msg.seq);
  }

  async #vault(conn: DeviceConnection, msg: Frame<'vault'>): Promise<Reply> {
    for (const actionId of new Set(msg.items.flatMap((i) => (i.actionId ? [i.actionId] : [])))) {
      const own = await this.#ownAction(conn, actionId);
      if (!('id' in own)) return own;
    }
    const items: VaultItemRecord[] = msg.items.map((i) => ({
      machineId: conn.machineId!,
      itemId: i.itemId,
      actionId: i.actionId ? i.actionId.toLowerCase() : null,
      sha1: i.sha1.toLowerCase(),
      sha256: i.sha256 ? i.sha256.toLowerCase() : null,
      originalPath: i.originalPath,
      size: i.size,
      quarantinedAt: normalizeTimestamp(i.quarantinedAt) ?? i.quarantinedAt,
      state: i.state,
      detail: null,
    }));
    await this.deps.store.upsertVaultItems(items);
    return accepted(msg.seq);
  }
}
