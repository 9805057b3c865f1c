// The one device-side implementation of protocol v1, shared by the simulator and the real Linux agent: enrollment
// over HTTP, the WebSocket session (challenge → hello → welcome), at-least-once action delivery made idempotent by
// action id, signed results, an outbox that survives disconnects, and reconnection with capped exponential backoff.
// Built to be cheap per instance: no per-client intervals (one shared ticker watches every open connection).
import { EventEmitter } from 'node:events';
import WebSocket, { type ClientOptions } from 'ws';
import { CLOSE_CODES, HELLO_TIMEOUT_MS } from './codes.ts';
import { checkEnrollResponse, checkServerMessage, toInt32HResult } from './schemas.ts';
import { signHello, signResult, type DeviceKeyPair } from './signing.ts';
import {
  CONNECT_PATH,
  ENROLL_PATH,
  MAX_FRAME_BYTES,
  type ActionOrder,
  type ActionResultDetail,
  type DeviceFacts,
  type DeviceMessage,
  type EnrollResponse,
  type ServerMessage,
} from './v1.ts';

/** 0x80004005 E_FAIL: what a result says when the action handler itself crashed. */
const E_FAIL = -2147467259;

/**
 * Close codes after which the next attempt goes to another server: the node went away (1001, or 1006 with no
 * close frame at all, as when it is killed) or said it cannot serve now (1011–1014). A deliberate close (1000),
 * a refusal of this device (auth, offboarded, policy) would be the same on every node of the cluster.
 */
const FAILOVER_CLOSE_CODES = new Set([1001, 1006, 1011, 1012, 1013, 1014]);

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A device frame before the client numbers it. */
export type OutgoingFrame = DistributiveOmit<Exclude<DeviceMessage, { t: 'hello' }>, 'seq'>;
export type ResultFrame = Extract<OutgoingFrame, { t: 'result' }>;
export type ObservedFile = Extract<DeviceMessage, { t: 'observations' }>['files'][number];
export type VaultReportItem = Extract<DeviceMessage, { t: 'vault' }>['items'][number];

export interface ActionOutcome {
  outcome: 'Succeeded' | 'Failed';
  errorHResult: number;
  reason: string | null;
  detail: ActionResultDetail;
}

export interface ActionContext {
  /** Aborted when the server cancels the action or the client is closed; the handler decides how to stop. */
  signal: AbortSignal;
  /** Acknowledge receipt (→ InProgress). Called automatically before the handler unless `autoAck` is false. */
  ack(): void;
  progress(message: string): void;
}

/** Runs one action. `null` declines it for now: the id is forgotten, so a re-delivery runs it again. */
export type ActionHandler = (order: ActionOrder, ctx: ActionContext) => Promise<ActionOutcome | null>;

/** What an agent persists so results survive a restart. */
export interface DeviceClientState {
  outbox: OutgoingFrame[];
  /** Results already produced, by action id: re-sent if the server delivers the action again. */
  completed: [string, ResultFrame][];
}

export interface DeviceClientLog {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface DeviceClientOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8080 (https → wss). Tried first. */
  server: string;
  /**
   * Other nodes of the same cluster (same database), tried in turn when a connection to the current one fails or
   * drops the way a dead node does; `server` may be listed again. Enrollment fails over the same way.
   */
  servers?: readonly string[];
  key: DeviceKeyPair;
  agentVersion: string;
  onAction: ActionHandler;
  /** Known from an earlier enrollment; otherwise call enroll() first. */
  machineId?: string | null;
  autoAck?: boolean;
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Jitter source; the simulator passes a seeded one. */
  random?: () => number;
  log?: DeviceClientLog;
  /** Extra `ws` options (TLS trust: ca, servername, ...). */
  ws?: ClientOptions;
  fetch?: typeof fetch;
  maxRememberedActions?: number;
  initialState?: DeviceClientState;
  onStateChange?: (client: DeviceClient) => void;
  /** Keep reconnecting after another instance with the same key took the connection over (default false). */
  reconnectWhenReplaced?: boolean;
}

export interface DeviceClientEvents {
  online: [machineId: string];
  offline: [code: number, reason: string];
  action: [order: ActionOrder];
  cancel: [actionId: string];
  expired: [order: ActionOrder];
  /** The server refused one of our frames. */
  rejected: [error: { code: string; message: string; seq?: number }];
  replaced: [];
  authFailed: [reason: string];
  offboarded: [];
  warning: [message: string];
}

export class EnrollError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'EnrollError';
  }
}

export type ClientPhase = 'idle' | 'connecting' | 'handshake' | 'online' | 'offline' | 'closed';

type KnownAction =
  | { kind: 'running'; abort: AbortController; acked: boolean }
  | { kind: 'done'; result: ResultFrame };

interface OutboxEntry {
  frame: OutgoingFrame;
  /** The seq it was last sent with on the current connection; null = not sent yet. */
  seq: number | null;
}

// One interval for every client in the process: it times out handshakes and detects silent servers.
const watched = new Set<(now: number) => void>();
let ticker: NodeJS.Timeout | null = null;
function watch(fn: (now: number) => void): void {
  watched.add(fn);
  if (!ticker) {
    ticker = setInterval(() => {
      const now = Date.now();
      for (const f of watched) f(now);
    }, 1000);
    ticker.unref();
  }
}
function unwatch(fn: (now: number) => void): void {
  watched.delete(fn);
  if (watched.size === 0 && ticker) {
    clearInterval(ticker);
    ticker = null;
  }
}

const noopLog: DeviceClientLog = { debug() {}, warn() {} };

export class DeviceClient extends EventEmitter<DeviceClientEvents> {
  readonly #opts: DeviceClientOptions;
  readonly #log: DeviceClientLog;
  readonly #random: () => number;
  readonly #fetch: typeof fetch;
  readonly #tickFn = (now: number) => this.#tick(now);
  readonly #servers: string[];
  #serverIndex = 0;
  #machineId: string | null;
  #phase: ClientPhase = 'idle';
  #ws: WebSocket | null = null;
  #seq = 0;
  #attempt = 0;
  #connStartedAt = 0;
  #lastReceivedAt = 0;
  #heartbeatMs = 30_000;
  /** serverTime − local time, learnt from the challenge, to judge expiry in the server's clock. */
  #skewMs = 0;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #offlineUntil = 0;
  #stopped = false;
  #outbox: OutboxEntry[] = [];
  #inflight = new Map<number, OutboxEntry>();
  #actions = new Map<string, KnownAction>();

  constructor(opts: DeviceClientOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.log ?? noopLog;
    this.#random = opts.random ?? Math.random;
    this.#fetch = opts.fetch ?? fetch;
    this.#machineId = opts.machineId ?? null;
    this.#servers = [...new Set([opts.server, ...(opts.servers ?? [])])];
    if (opts.initialState) {
      for (const frame of opts.initialState.outbox) this.#outbox.push({ frame, seq: null });
      for (const [id, result] of opts.initialState.completed) this.#actions.set(id, { kind: 'done', result });
    }
  }

  get machineId(): string | null {
    return this.#machineId;
  }
  get phase(): ClientPhase {
    return this.#phase;
  }
  get online(): boolean {
    return this.#phase === 'online';
  }
  get pendingReports(): number {
    return this.#outbox.length;
  }
  /** The server the current (or next) connection goes to. */
  get server(): string {
    return this.#servers[this.#serverIndex]!;
  }

  #failOver(): void {
    if (this.#servers.length > 1) this.#serverIndex = (this.#serverIndex + 1) % this.#servers.length;
  }

  /**
   * Registers the device (or refreshes its facts) with an enroll token; returns the machine id. A server that
   * cannot be reached is skipped for the next one; an answer (even a refusal) ends the attempt.
   */
  async enroll(enrollToken: string, facts: DeviceFacts, timeoutMs = 30_000): Promise<EnrollResponse> {
    let res: Response | null = null;
    let text = '';
    let failure: unknown = null;
    for (let tried = 0; tried < this.#servers.length; tried++) {
      try {
        res = await this.#fetch(new URL(ENROLL_PATH, this.server), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ enrollToken, publicKey: this.#opts.key.publicKey, facts }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        text = await res.text();
        break;
      } catch (err) {
        failure = err;
        res = null;
        this.#failOver();
      }
    }
    if (!res) throw failure;
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // reported below
    }
    if (!res.ok) {
      const err = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      throw new EnrollError(
        res.status,
        typeof err?.code === 'string' ? err.code : `Http${res.status}`,
        typeof err?.message === 'string' ? err.message : text.slice(0, 200),
      );
    }
    const checked = checkEnrollResponse(body);
    if (!checked.ok) throw new EnrollError(res.status, 'BadResponse', checked.error);
    this.#machineId = checked.value.machineId;
    return checked.value;
  }

  /** Connects and stays connected (reconnecting with backoff) until close(). */
  start(): void {
    if (!this.#machineId) throw new Error('enroll first: no machine id');
    if (this.#phase !== 'idle' && this.#phase !== 'offline') return;
    this.#stopped = false;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#connect();
  }

  /** Drops the connection and stays away for `ms` (simulated outages); the outbox keeps what happens meanwhile. */
  goOffline(ms: number): void {
    this.#offlineUntil = Date.now() + ms;
    const ws = this.#ws;
    if (ws) ws.close(1000, 'going offline');
    else if (!this.#stopped && this.#phase !== 'closed') this.#scheduleReconnect();
  }

  async close(): Promise<void> {
    this.#stopped = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#reconnectTimer = this.#retryTimer = null;
    for (const a of this.#actions.values()) if (a.kind === 'running') a.abort.abort(new Error('client closed'));
    const ws = this.#ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        const kill = setTimeout(() => ws.terminate(), 2000);
        kill.unref();
        ws.close(1000, 'client closing');
      });
    }
    this.#phase = 'closed';
    unwatch(this.#tickFn);
  }

  sendFacts(facts: DeviceFacts): void {
    this.#enqueue({ t: 'facts', facts }, (f) => f.t === 'facts');
  }

  /** A complete inventory supersedes any inventory not yet sent. */
  sendObservations(files: ObservedFile[], complete: boolean): void {
    this.#enqueue({ t: 'observations', complete, files }, complete ? (f) => f.t === 'observations' : undefined);
  }

  sendVault(items: VaultReportItem[]): void {
    this.#enqueue({ t: 'vault', items });
  }

  snapshot(): DeviceClientState {
    const completed: [string, ResultFrame][] = [];
    for (const [id, a] of this.#actions) if (a.kind === 'done') completed.push([id, a.result]);
    return { outbox: this.#outbox.map((e) => e.frame), completed };
  }

  // ── connection ────────────────────────────────────────────────────────────────────────────────────────────────

  #connect(): void {
    const url = new URL(CONNECT_PATH, this.server);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    this.#phase = 'connecting';
    this.#connStartedAt = Date.now();
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: HELLO_TIMEOUT_MS,
      ...this.#opts.ws,
    });
    this.#ws = ws;
    watch(this.#tickFn);
    ws.on('open', () => {
      if (this.#ws === ws) this.#phase = 'handshake';
    });
    ws.on('message', (data, isBinary) => {
      if (this.#ws !== ws) return;
      this.#lastReceivedAt = Date.now();
      if (isBinary) return;
      this.#onFrame(ws, data.toString());
    });
    ws.on('ping', () => {
      this.#lastReceivedAt = Date.now();
    });
    ws.on('error', (err) => {
      this.#log.debug({ err: err.message, machineId: this.#machineId }, 'device connection error');
    });
    ws.on('close', (code, reason) => this.#onClose(ws, code, reason.toString()));
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (this.#ws !== ws) return;
    this.#ws = null;
    unwatch(this.#tickFn);
    for (const e of this.#inflight.values()) e.seq = null;
    this.#inflight.clear();
    const wasOnline = this.#phase === 'online';
    if (!wasOnline || FAILOVER_CLOSE_CODES.has(code)) this.#failOver();
    this.#phase = this.#stopped ? 'closed' : 'offline';
    if (wasOnline) this.emit('offline', code, reason);
    if (this.#stopped) return;
    if (code === CLOSE_CODES.replaced && !this.#opts.reconnectWhenReplaced) {
      this.#stopped = true;
      this.#phase = 'closed';
      this.emit('replaced');
      return;
    }
    if (code === CLOSE_CODES.offboarded) {
      this.#stopped = true;
      this.#phase = 'closed';
      this.emit('offboarded');
      return;
    }
    if (code === CLOSE_CODES.authenticationFailed) this.emit('authFailed', reason);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#reconnectTimer) return;
    const now = Date.now();
    const delay = this.#offlineUntil > now ? this.#offlineUntil - now : this.#backoff();
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (!this.#stopped && !this.#ws) this.#connect();
    }, delay);
  }

  /** Capped exponential backoff with jitter over the upper half, so a restarted server is not stampeded. */
  #backoff(): number {
    const initial = this.#opts.reconnect?.initialDelayMs ?? 1000;
    const max = this.#opts.reconnect?.maxDelayMs ?? 60_000;
    const base = Math.min(max, initial * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(base / 2 + (this.#random() * base) / 2);
  }

  #tick(now: number): void {
    const ws = this.#ws;
    if (!ws) return;
    if (this.#phase === 'connecting' || this.#phase === 'handshake') {
      if (now - this.#connStartedAt > HELLO_TIMEOUT_MS + 5000) ws.terminate();
    } else if (this.#phase === 'online' && now - this.#lastReceivedAt > this.#heartbeatMs * 2.5) {
      this.#log.debug({ machineId: this.#machineId }, 'server silent, reconnecting');
      ws.terminate();
    }
  }

  #onFrame(ws: WebSocket, raw: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      this.emit('warning', 'server sent a frame that is not JSON');
      return;
    }
    const t = (parsed as { t?: unknown } | null)?.t;
    if (!['challenge', 'welcome', 'action', 'cancel', 'accepted', 'error'].includes(t as string)) {
      this.#log.debug({ t }, 'ignoring unknown server message'); // a newer v1 server
      return;
    }
    const checked = checkServerMessage(parsed);
    if (!checked.ok) {
      this.emit('warning', `server sent an invalid ${String(t)} frame: ${checked.error}`);
      return;
    }
    const msg: ServerMessage = checked.value;
    switch (msg.t) {
      case 'challenge': {
        if (this.#phase !== 'handshake' && this.#phase !== 'connecting') return;
        this.#skewMs = Date.parse(msg.serverTime.slice(0, 23) + 'Z') - Date.now();
        const machineId = this.#machineId!;
        ws.send(
          JSON.stringify({
            t: 'hello',
            machineId,
            signature: signHello(this.#opts.key.privateKey, msg.nonce, machineId),
            agentVersion: this.#opts.agentVersion,
          }),
        );
        return;
      }
      case 'welcome':
        if (msg.machineId !== this.#machineId) {
          this.emit('warning', 'server welcomed another machine id');
          ws.close(1008, 'wrong machine');
          return;
        }
        this.#phase = 'online';
        this.#attempt = 0;
        this.#heartbeatMs = msg.heartbeatSec * 1000;
        this.emit('online', msg.machineId);
        this.#flush();
        return;
      case 'action':
        if (this.#phase === 'online') void this.#onAction(msg.action);
        return;
      case 'cancel': {
        const known = this.#actions.get(msg.actionId);
        if (known?.kind === 'running') known.abort.abort(new Error('cancelled by the server'));
        this.emit('cancel', msg.actionId);
        return;
      }
      case 'accepted': {
        const entry = this.#inflight.get(msg.seq);
        if (entry) this.#settle(msg.seq, entry);
        return;
      }
      case 'error': {
        this.emit('rejected', { code: msg.code, message: msg.message, ...(msg.seq !== undefined ? { seq: msg.seq } : {}) });
        if (msg.seq === undefined) return;
        const entry = this.#inflight.get(msg.seq);
        if (!entry) return;
        if (msg.code === 'Unavailable') {
          // The server could not store it now: keep it and try again shortly.
          this.#inflight.delete(msg.seq);
          entry.seq = null;
          this.#scheduleRetry();
        } else {
          this.#settle(msg.seq, entry); // refused for good; resending would be refused again
        }
        return;
      }
    }
  }

  // ── actions ───────────────────────────────────────────────────────────────────────────────────────────────────

  async #onAction(order: ActionOrder): Promise<void> {
    const known = this.#actions.get(order.id);
    if (known) {
      // Re-delivered (at-least-once): never run twice; repeat what the server may have missed.
      if (known.kind === 'running') {
        if (known.acked) this.#sendNow({ t: 'ack', actionId: order.id });
      } else if (!this.#outbox.some((e) => e.frame.t === 'result' && e.frame.actionId === order.id)) {
        this.#enqueue(known.result);
      }
      return;
    }
    if (Date.parse(order.expiresAt.slice(0, 23) + 'Z') <= Date.now() + this.#skewMs) {
      this.emit('expired', order); // the server will time it out; an expired action is never run
      return;
    }
    const entry: KnownAction = { kind: 'running', abort: new AbortController(), acked: false };
    this.#actions.set(order.id, entry);
    const ack = () => {
      if (entry.acked) return;
      entry.acked = true;
      this.#sendNow({ t: 'ack', actionId: order.id });
    };
    this.emit('action', order);
    if (this.#opts.autoAck !== false) ack();
    let outcome: ActionOutcome | null;
    try {
      outcome = await this.#opts.onAction(order, {
        signal: entry.abort.signal,
        ack,
        progress: (message) => this.#sendNow({ t: 'progress', actionId: order.id, message: message.slice(0, 2000) }),
      });
    } catch (err) {
      outcome = {
        outcome: 'Failed',
        errorHResult: E_FAIL,
        reason: `agent error: ${err instanceof Error ? err.message : String(err)}`.slice(0, 2000),
        detail: { processes: [], files: [], durationMs: 0 },
      };
    }
    if (outcome === null) {
      this.#actions.delete(order.id);
      return;
    }
    const result = this.#signedResult(order.id, outcome);
    this.#actions.delete(order.id); // re-insert: the map's order is the eviction order
    this.#actions.set(order.id, { kind: 'done', result });
    this.#forgetOldActions();
    this.#enqueue(result);
  }

  #signedResult(actionId: string, o: ActionOutcome): ResultFrame {
    const errorHResult = o.outcome === 'Succeeded' ? 0 : toInt32HResult(o.errorHResult) || E_FAIL;
    const signature = signResult(this.#opts.key.privateKey, this.#machineId!, {
      actionId,
      outcome: o.outcome,
      errorHResult,
      detail: o.detail,
    });
    return { t: 'result', actionId, outcome: o.outcome, errorHResult, reason: o.reason, detail: o.detail, signature };
  }

  #forgetOldActions(): void {
    const max = this.#opts.maxRememberedActions ?? 1000;
    if (this.#actions.size <= max) return;
    for (const [id, a] of this.#actions) {
      if (this.#actions.size <= max) break;
      if (a.kind === 'done') this.#actions.delete(id);
    }
  }

  // ── sending ───────────────────────────────────────────────────────────────────────────────────────────────────

  /** Fire-and-forget frames (ack, progress): a lost one is repeated by re-delivery, so they are not queued. */
  #sendNow(frame: OutgoingFrame): void {
    const ws = this.#ws;
    if (this.#phase !== 'online' || !ws) return;
    ws.send(JSON.stringify({ ...frame, seq: ++this.#seq }));
  }

  #enqueue(frame: OutgoingFrame, supersedes?: (f: OutgoingFrame) => boolean): void {
    if (supersedes) this.#outbox = this.#outbox.filter((e) => e.seq !== null || !supersedes(e.frame));
    this.#outbox.push({ frame, seq: null });
    this.#opts.onStateChange?.(this);
    this.#flush();
  }

  #flush(): void {
    const ws = this.#ws;
    if (this.#phase !== 'online' || !ws) return;
    for (const e of this.#outbox) {
      if (e.seq !== null) continue;
      e.seq = ++this.#seq;
      this.#inflight.set(e.seq, e);
      ws.send(JSON.stringify({ ...e.frame, seq: e.seq }));
    }
  }

  #settle(seq: number, entry: OutboxEntry): void {
    this.#inflight.delete(seq);
    const i = this.#outbox.indexOf(entry);
    if (i >= 0) this.#outbox.splice(i, 1);
    this.#opts.onStateChange?.(this);
  }

  #scheduleRetry(): void {
    if (this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#flush();
    }, 3000 + Math.round(this.#random() * 2000));
    this.#retryTimer.unref();
  }
}
