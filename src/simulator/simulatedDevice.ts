// One simulated device: a generated spec and its virtual host, connected to the real gateway through the same
// DeviceClient the Linux agent uses. Timing and outcomes come from the profile, seeded per device, so the n-th
// action a device receives plays out the same way on every run; Comment tokens and injected faults override that.
import { HRESULT } from '../core/actions.ts';
import { DeviceClient, type ActionContext, type ActionOutcome, type DeviceClientLog } from '../protocol/deviceClient.ts';
import { deviceKeyFromSeed, seedBytes } from '../protocol/signing.ts';
import type { ActionOrder } from '../protocol/v1.ts';
import type { DeviceSpec } from './deviceSpec.ts';
import { Journal } from './journal.ts';
import type { Profile } from './profiles.ts';
import { Random, seedFrom } from './random.ts';
import { parseScript } from './scripts.ts';
import { SHARING_VIOLATION, VirtualHost } from './virtualHost.ts';

export const FAULT_KINDS = ['offline', 'flap', 'fail-next', 'latency'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  kind: FaultKind;
  /** offline: how long (default 30 s); flap: for how long (default 60 s); latency: for how long (default: until cleared). */
  durationMs?: number;
  /** latency: added to every ack and execution (default 5 s). */
  latencyMs?: number;
  /** fail-next: the HRESULT of the failure (default E_ACCESSDENIED). */
  errorHResult?: number;
}

export interface SimulatedDeviceOptions {
  server: string;
  /** Every node of the cluster, to fail over to (see DeviceClientOptions.servers). */
  servers?: readonly string[];
  fleetSeed: number;
  /** Namespace of the device keys: the same identity and index give the same machine id. */
  identity: string;
  profile: Profile;
  journalSize: number;
  log: DeviceClientLog;
  reconnect: { initialDelayMs: number; maxDelayMs: number };
}

export interface DeviceStats {
  received: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

const RANDOM_FAILURES = [HRESULT.accessDenied, SHARING_VIOLATION, HRESULT.fail] as const;

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Holds no timer: a device that never answers must not keep the process alive. */
function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

export class SimulatedDevice {
  readonly host: VirtualHost;
  readonly journal: Journal;
  readonly client: DeviceClient;
  readonly stats: DeviceStats = { received: 0, succeeded: 0, failed: 0, cancelled: 0 };
  readonly #opts: SimulatedDeviceOptions;
  #actionRng!: Random;
  #netRng!: Random;
  #vaultRng!: Random;
  #failNext: number | null = null;
  #extraLatencyMs = 0;
  #latencyUntil = 0;
  #flapUntil = 0;
  #flapTimer: NodeJS.Timeout | null = null;
  #chaosTimer: NodeJS.Timeout | null = null;
  /** Actions that already sent this device offline once ([sim:offline]): the re-delivery is executed. */
  #offlined = new Set<string>();
  #stopped = false;

  constructor(
    readonly spec: DeviceSpec,
    opts: SimulatedDeviceOptions,
  ) {
    this.#opts = opts;
    this.host = new VirtualHost(spec);
    this.journal = new Journal(opts.journalSize);
    this.#seedStreams();
    this.client = new DeviceClient({
      server: opts.server,
      ...(opts.servers ? { servers: opts.servers } : {}),
      key: deviceKeyFromSeed(seedBytes(`tourniquet-sim-key\n${opts.identity}\n${spec.index}`)),
      agentVersion: spec.facts.agentVersion,
      autoAck: false,
      onAction: (order, ctx) => this.#onAction(order, ctx),
      reconnect: opts.reconnect,
      random: () => this.#netRng.next(),
      log: opts.log,
    });
    this.client.on('online', () => this.journal.add({ event: 'online' }));
    this.client.on('offline', (code, reason) => this.journal.add({ event: 'offline', note: `${code} ${reason}`.trim() }));
    this.client.on('cancel', (actionId) => this.journal.add({ event: 'cancelled', actionId, note: 'cancel received' }));
    this.client.on('expired', (o) => this.journal.add({ event: 'expired', actionId: o.id, type: o.type }));
    this.client.on('rejected', (e) => this.journal.add({ event: 'rejected', note: `${e.code}: ${e.message}` }));
  }

  get machineId(): string | null {
    return this.client.machineId;
  }
  get hostname(): string {
    return this.spec.facts.hostname;
  }
  get online(): boolean {
    return this.client.online;
  }

  #seedStreams(): void {
    const s = this.#opts.fleetSeed;
    this.#actionRng = new Random(seedFrom(s, 'actions', this.spec.index));
    this.#netRng = new Random(seedFrom(s, 'network', this.spec.index));
    this.#vaultRng = new Random(seedFrom(s, 'vault', this.spec.index));
  }

  async enroll(enrollToken: string): Promise<string> {
    const r = await this.client.enroll(enrollToken, this.spec.facts);
    return r.machineId;
  }

  /** Connects; resolves once the gateway has welcomed the device. The first inventory goes out right after. */
  connect(timeoutMs = 120_000): Promise<void> {
    this.client.sendObservations(this.host.inventory(), true);
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.client.off('online', onOnline);
        this.client.off('authFailed', onAuthFailed);
        if (err) reject(err);
        else resolve();
      };
      const onOnline = () => done();
      const onAuthFailed = (reason: string) => done(new Error(`${this.hostname}: the gateway refused the device (${reason})`));
      const timer = setTimeout(() => done(new Error(`${this.hostname}: not online after ${timeoutMs} ms`)), timeoutMs);
      this.client.on('online', onOnline);
      this.client.on('authFailed', onAuthFailed);
      this.client.start();
    });
  }

  /** The profile's flapping and intermittent behaviour, started once the whole fleet is up. */
  startChaos(): void {
    if (this.spec.flapping) this.#loop(() => [this.#netRng.int(5000, 20_000), this.#netRng.int(500, 3000)]);
    else if (this.spec.intermittent) this.#loop(() => [this.#netRng.int(30_000, 90_000), this.#netRng.int(5000, 20_000)]);
  }

  #loop(next: () => [everyMs: number, offlineMs: number]): void {
    const [every, offline] = next();
    this.#chaosTimer = setTimeout(() => {
      if (this.#stopped) return;
      this.client.goOffline(offline);
      this.#loop(next);
    }, every);
    this.#chaosTimer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.clearFaults();
    if (this.#chaosTimer) clearTimeout(this.#chaosTimer);
    await this.client.close();
  }

  /** Back to the generated state: processes and files restored, journal and faults cleared, streams reseeded. */
  reset(): void {
    const restored = this.host.reset();
    if (restored.length > 0) this.client.sendVault(restored);
    this.client.sendObservations(this.host.inventory(), true);
    this.journal.clear();
    this.clearFaults();
    this.#offlined.clear();
    Object.assign(this.stats, { received: 0, succeeded: 0, failed: 0, cancelled: 0 });
    this.#seedStreams();
  }

  inject(f: Fault): void {
    const now = Date.now();
    this.journal.add({ event: 'fault', note: JSON.stringify(f) });
    switch (f.kind) {
      case 'offline':
        this.client.goOffline(f.durationMs ?? 30_000);
        return;
      case 'fail-next':
        this.#failNext = f.errorHResult ?? HRESULT.accessDenied;
        return;
      case 'latency':
        this.#extraLatencyMs = f.latencyMs ?? 5000;
        this.#latencyUntil = f.durationMs !== undefined ? now + f.durationMs : Number.POSITIVE_INFINITY;
        return;
      case 'flap':
        this.#flapUntil = now + (f.durationMs ?? 60_000);
        if (!this.#flapTimer) this.#flap();
        return;
    }
  }

  #flap(): void {
    this.#flapTimer = setTimeout(() => {
      this.#flapTimer = null;
      if (this.#stopped || Date.now() >= this.#flapUntil) return;
      this.client.goOffline(this.#netRng.int(500, 2000));
      this.#flap();
    }, this.#netRng.int(2000, 6000));
    this.#flapTimer.unref();
  }

  clearFaults(): void {
    this.#failNext = null;
    this.#extraLatencyMs = 0;
    this.#latencyUntil = 0;
    this.#flapUntil = 0;
    if (this.#flapTimer) clearTimeout(this.#flapTimer);
    this.#flapTimer = null;
  }

  get faulted(): boolean {
    return this.#failNext !== null || this.#latencyUntil > Date.now() || this.#flapUntil > Date.now();
  }

  async #onAction(order: ActionOrder, ctx: ActionContext): Promise<ActionOutcome | null> {
    // A fixed number of draws per action, whatever happens next, so later actions do not depend on this one's path.
    const r = this.#actionRng;
    const p = this.#opts.profile;
    const ackMs = r.logNormal(p.ack.median, p.ack.sigma, p.ack.min, p.ack.max);
    const execMs = r.logNormal(p.execute.median, p.execute.sigma, p.execute.min, p.execute.max);
    const failRoll = r.next();
    const failPick = r.pick(RANDOM_FAILURES);
    const dropRoll = r.next();
    const dropMs = r.int(1000, 5000);

    const script = parseScript(order.comment);
    this.stats.received++;
    this.journal.add({ event: 'received', actionId: order.id, type: order.type, sha1: order.sha1 });
    if (script.offlineMs !== undefined && !this.#offlined.has(order.id)) {
      this.#offlined.add(order.id);
      this.journal.add({ event: 'offline', actionId: order.id, note: `scripted; back in ${script.offlineMs} ms` });
      this.client.goOffline(script.offlineMs);
      return null; // forgotten: the gateway re-sends it when the device is back
    }
    const extra = this.#latencyUntil > Date.now() ? this.#extraLatencyMs : 0;
    if (!script.noack) {
      if (!(await sleep(ackMs + extra, ctx.signal))) return this.#cancelled(order);
      ctx.ack();
      this.journal.add({ event: 'ack', actionId: order.id });
    }
    if (script.never) {
      this.journal.add({ event: 'never', actionId: order.id, note: 'scripted: no answer' });
      await untilAborted(ctx.signal);
      return this.#cancelled(order);
    }
    const workMs = script.delayMs ?? execMs + extra;
    if (dropRoll < p.disconnectMidAction) {
      this.journal.add({ event: 'offline', actionId: order.id, note: `dropped mid-action for ${dropMs} ms` });
      this.client.goOffline(dropMs);
    }
    if (!(await sleep(workMs, ctx.signal))) return this.#cancelled(order);

    let failHResult = script.failHResult ?? null;
    if (failHResult === null && !script.ok && this.#failNext !== null) {
      failHResult = this.#failNext;
      this.#failNext = null;
    }
    if (failHResult === null && !script.ok && failRoll < p.failureRate) failHResult = failPick;
    const ex = this.host.execute(order, {
      failHResult: script.ok ? null : failHResult,
      forceProtected: script.protected === true,
      durationMs: (script.noack ? 0 : ackMs) + workMs,
      now: new Date().toISOString(),
      rng: this.#vaultRng,
    });
    if (ex.vault.length > 0) this.client.sendVault(ex.vault);
    if (ex.outcome.outcome === 'Succeeded') this.stats.succeeded++;
    else this.stats.failed++;
    this.journal.add({
      event: 'result',
      actionId: order.id,
      type: order.type,
      outcome: ex.outcome.outcome,
      errorHResult: ex.outcome.errorHResult,
      reason: ex.outcome.reason,
      note: `${ex.outcome.detail.processes.length} processes, ${ex.outcome.detail.files.length} files`,
    });
    return ex.outcome;
  }

  #cancelled(order: ActionOrder): null {
    this.stats.cancelled++;
    this.journal.add({ event: 'cancelled', actionId: order.id, note: 'stopped before completing' });
    return null;
  }
}
