// One device's WebSocket on the gateway: framing rules (text only, JSON, schema, strictly increasing seq, a frame
// budget, a strike count for bad frames) and a sequential queue, so a device's frames are handled in the order sent.
import type { KeyObject } from 'node:crypto';
import type WebSocket from 'ws';
import type { IpAddressInfo } from '../../core/machines.ts';
import {
  CLOSE_CODES,
  ERROR_CODES,
  FRAME_WINDOW_MS,
  MAX_FRAMES_PER_WINDOW,
  MAX_REJECTED_FRAMES,
  type ProtocolErrorCode,
} from '../../protocol/codes.ts';
import { checkDeviceMessage } from '../../protocol/schemas.ts';
import type { DeviceMessage, ServerMessage } from '../../protocol/v1.ts';

/** Pause reading from a device whose frames pile up faster than they are handled. */
const QUEUE_HIGH_WATER = 256;
const QUEUE_LOW_WATER = 32;

export type ConnectionState = 'handshake' | 'authenticating' | 'ready' | 'closed';

/** Why a frame was refused: the device hears `code`; the gateway logs and audits `detail`. */
export interface FrameRejection {
  code: ProtocolErrorCode;
  message: string;
  /** Counts towards closing the connection (abuse), as opposed to a transient server-side failure. */
  strike: boolean;
  /** Written to the audit log (forged or foreign frames); plain malformations are only logged. */
  audit: boolean;
}

export interface ConnectionEvents {
  /** Handles one valid frame; returns the reply, or a rejection. */
  frame(conn: DeviceConnection, msg: DeviceMessage): Promise<ServerMessage | FrameRejection | null>;
  rejected(conn: DeviceConnection, r: FrameRejection, seq: number | undefined): void;
  closed(conn: DeviceConnection, code: number, reason: string): void;
}

export class DeviceConnection {
  state: ConnectionState = 'handshake';
  machineId: string | null = null;
  hostname: string | null = null;
  publicKey: KeyObject | null = null;
  ipAddresses: IpAddressInfo[] = [];
  readonly openedAt = Date.now();
  lastActivityAt = Date.now();
  lastPingAt = Date.now();
  lastSeenWrittenAt = 0;
  /** The store records this node as holding the machine's connection (set once the claim has committed). */
  claimed = false;
  #lastSeq = 0;
  #strikes = 0;
  #windowStart = Date.now();
  #windowFrames = 0;
  #queue: string[] = [];
  #busy = false;
  #paused = false;

  constructor(
    readonly ws: WebSocket,
    readonly remoteIp: string | null,
    readonly nonce: string,
    private readonly events: ConnectionEvents,
  ) {
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on('pong', () => {
      this.lastActivityAt = Date.now();
    });
    ws.on('close', (code, reason) => {
      this.state = 'closed';
      this.#queue.length = 0;
      this.events.closed(this, code, reason.toString());
    });
  }

  get isOpen(): boolean {
    return this.state !== 'closed' && this.ws.readyState === 1;
  }

  send(msg: ServerMessage): boolean {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.#queue.length = 0;
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
    }
    // A peer that never answers the close handshake must not hold the socket.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    const now = Date.now();
    this.lastActivityAt = now;
    if (now - this.#windowStart >= FRAME_WINDOW_MS) {
      this.#windowStart = now;
      this.#windowFrames = 0;
    }
    if (++this.#windowFrames > MAX_FRAMES_PER_WINDOW) {
      this.#reject(
        { code: ERROR_CODES.tooManyFrames, message: 'too many frames', strike: true, audit: true },
        undefined,
      );
      this.close(CLOSE_CODES.policyViolation, 'too many frames');
      return;
    }
    if (isBinary) {
      this.#reject(
        { code: ERROR_CODES.binaryFrame, message: 'binary frames are not accepted', strike: true, audit: false },
        undefined,
      );
      return;
    }
    this.#queue.push(data.toString('utf8'));
    if (this.#queue.length >= QUEUE_HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.ws.pause();
    }
    if (!this.#busy) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    try {
      for (let raw = this.#queue.shift(); raw !== undefined; raw = this.#queue.shift()) {
        await this.#handle(raw);
        if (this.#paused && this.#queue.length <= QUEUE_LOW_WATER && this.state !== 'closed') {
          this.#paused = false;
          this.ws.resume();
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  async #handle(raw: string): Promise<void> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      this.#reject({ code: ERROR_CODES.malformedFrame, message: 'frame is not JSON', strike: true, audit: false }, undefined);
      return;
    }
    const rawSeq = (parsed as { seq?: unknown } | null)?.seq;
    const seqHint = typeof rawSeq === 'number' && Number.isSafeInteger(rawSeq) ? rawSeq : undefined;
    const checked = checkDeviceMessage(parsed);
    if (!checked.ok) {
      this.#reject({ code: ERROR_CODES.malformedFrame, message: checked.error, strike: true, audit: false }, seqHint);
      return;
    }
    const msg = checked.value;
    if (msg.t !== 'hello') {
      if (this.state !== 'ready') {
        this.#reject(
          { code: ERROR_CODES.notAuthenticated, message: 'say hello first', strike: true, audit: false },
          msg.seq,
        );
        this.close(CLOSE_CODES.authenticationFailed, 'not authenticated');
        return;
      }
      if (msg.seq <= this.#lastSeq) {
        this.#reject(
          { code: ERROR_CODES.replayedSeq, message: `seq ${msg.seq} is not above ${this.#lastSeq}`, strike: true, audit: true },
          msg.seq,
        );
        return;
      }
      this.#lastSeq = msg.seq;
    } else if (this.state !== 'handshake') {
      this.#reject({ code: ERROR_CODES.malformedFrame, message: 'hello was already said', strike: true, audit: false }, undefined);
      return;
    }
    const reply = await this.events.frame(this, msg);
    if (reply === null || (this.state as ConnectionState) === 'closed') return;
    if ('t' in reply) this.send(reply);
    else this.#reject(reply, msg.t === 'hello' ? undefined : msg.seq);
  }

  #reject(r: FrameRejection, seq: number | undefined): void {
    this.events.rejected(this, r, seq);
    this.send({ t: 'error', code: r.code, message: r.message, ...(seq !== undefined ? { seq } : {}) });
    if (r.strike && ++this.#strikes >= MAX_REJECTED_FRAMES) this.close(CLOSE_CODES.policyViolation, 'too many rejected frames');
  }
}
