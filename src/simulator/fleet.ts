// A fleet of simulated devices against a real server: generated from a seed, enrolled with one enroll token,
// connected through the gateway like any agent. Control surface for tests, demos and the admin API.
import { createHash } from 'node:crypto';
import { EnrollError } from '../protocol/deviceClient.ts';
import { generateDeviceSpec, type DeviceSpec } from './deviceSpec.ts';
import type { JournalEntry } from './journal.ts';
import { profileNamed, type ProfileName } from './profiles.ts';
import { Random, seedFrom } from './random.ts';
import { SimulatedDevice, type DeviceStats, type Fault } from './simulatedDevice.ts';

export interface FleetLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface FleetOptions {
  /** Base URL of the Tourniquet server, e.g. http://127.0.0.1:8080 */
  server: string;
  /**
   * Several nodes of one cluster: device i starts on servers[i % n] (spread evenly, reproducibly) and fails over
   * to the others. `server` is then only the fallback when the list is empty.
   */
  servers?: readonly string[];
  enrollToken: string;
  seed?: string | number;
  profile?: ProfileName;
  log?: FleetLog;
  /** Entries kept per device journal (default 200). */
  journalSize?: number;
  enrollConcurrency?: number;
  connectConcurrency?: number;
  reconnect?: { initialDelayMs: number; maxDelayMs: number };
  /** How long start() waits for each device to come online (default 120 s). */
  connectTimeoutMs?: number;
}

export interface FleetStatus {
  seed: string;
  profile: ProfileName;
  started: boolean;
  devices: number;
  online: number;
  platforms: Record<string, number>;
  /** Devices whose OS or agent is too old for StopAndQuarantineFile. */
  legacy: number;
  faulted: number;
  actions: DeviceStats;
}

export interface DeviceSummary {
  index: number;
  machineId: string | null;
  hostname: string;
  osPlatform: string;
  version: string;
  osBuild: number | null;
  agentVersion: string;
  legacy: boolean;
  online: boolean;
  pendingReports: number;
}

export interface FaultTarget {
  /** A machine id, a hostname, or a device index. */
  device?: string | number;
  /** Or a share of the fleet (0 < fraction ≤ 1), picked reproducibly from the seed. */
  fraction?: number;
}

export const MAX_FLEET_SIZE = 100_000;

const silent: FleetLog = { debug() {}, info() {}, warn() {} };

/** Runs `fn` over `items` with at most `concurrency` in flight; the first failure stops new work and is thrown. */
async function inPool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | null = null;
  const worker = async () => {
    while (failure === null && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure) throw (failure as { err: unknown }).err;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Fleet {
  readonly #opts: FleetOptions;
  readonly #log: FleetLog;
  #seedLabel: string;
  #profile: ProfileName;
  #devices: SimulatedDevice[] = [];
  #byMachine = new Map<string, SimulatedDevice>();
  #started = false;
  #faultCalls = 0;

  constructor(opts: FleetOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? silent;
    this.#seedLabel = String(opts.seed ?? 1);
    this.#profile = profileNamed(opts.profile ?? 'realistic').name;
  }

  /** The devices a seed produces, without any network: what start(n) will build. */
  static plan(seed: string | number, n: number, profile: ProfileName = 'realistic'): DeviceSpec[] {
    const p = profileNamed(profile);
    const s = seedFrom('fleet', String(seed));
    return Array.from({ length: n }, (_, i) => generateDeviceSpec(s, i, p));
  }

  get seed(): string {
    return this.#seedLabel;
  }
  get profile(): ProfileName {
    return this.#profile;
  }
  get size(): number {
    return this.#devices.length;
  }
  get started(): boolean {
    return this.#started;
  }

  devices(): readonly SimulatedDevice[] {
    return this.#devices;
  }

  onlineCount(): number {
    let n = 0;
    for (const d of this.#devices) if (d.online) n++;
    return n;
  }

  /** Builds, enrolls and connects `n` devices; resolves when every one of them is online. */
  async start(n: number): Promise<void> {
    if (this.#started) throw new Error('the fleet is already started; stop it first');
    if (!Number.isInteger(n) || n < 1 || n > MAX_FLEET_SIZE) throw new Error(`fleet size must be 1..${MAX_FLEET_SIZE}`);
    this.#started = true;
    const profile = profileNamed(this.#profile);
    const fleetSeed = seedFrom('fleet', this.#seedLabel);
    // Keys depend on the seed and the enroll token: rerunning the same fleet brings back the same machines.
    const identity = `${this.#seedLabel}\n${createHash('sha256').update(this.#opts.enrollToken).digest('hex')}`;
    const servers = this.#opts.servers?.length ? this.#opts.servers : [this.#opts.server];
    this.#devices = Fleet.plan(this.#seedLabel, n, this.#profile).map(
      (spec) =>
        new SimulatedDevice(spec, {
          server: servers[spec.index % servers.length]!,
          ...(servers.length > 1 ? { servers } : {}),
          fleetSeed,
          identity,
          profile,
          journalSize: this.#opts.journalSize ?? 200,
          log: this.#log,
          reconnect: this.#opts.reconnect ?? { initialDelayMs: 500, maxDelayMs: 10_000 },
        }),
    );
    const t0 = Date.now();
    try {
      await inPool(this.#devices, this.#opts.enrollConcurrency ?? 32, async (d) => {
        const id = await this.#enroll(d);
        this.#byMachine.set(id, d);
      });
      const t1 = Date.now();
      await inPool(this.#devices, this.#opts.connectConcurrency ?? 256, (d) => d.connect(this.#opts.connectTimeoutMs));
      this.#log.info({ devices: n, enrollMs: t1 - t0, connectMs: Date.now() - t1 }, 'simulated fleet enrolled and connected');
    } catch (err) {
      await this.stop();
      throw err;
    }
    for (const d of this.#devices) d.startChaos();
    this.#log.info({ devices: n, seed: this.#seedLabel, profile: this.#profile }, 'simulated fleet online');
  }

  /** Enrollment with retries for transient failures; a refused token stops the whole start. */
  async #enroll(d: SimulatedDevice): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await d.enroll(this.#opts.enrollToken);
      } catch (err) {
        const permanent = err instanceof EnrollError && err.status >= 400 && err.status < 500 && err.status !== 429;
        if (permanent || attempt >= 5) {
          const why = err instanceof EnrollError ? `${err.status} ${err.code}: ${err.message}` : String(err);
          throw new Error(`enrollment of ${d.hostname} failed: ${why}`);
        }
        await pause(250 * 2 ** attempt);
      }
    }
  }

  async stop(): Promise<void> {
    const devices = this.#devices;
    await inPool(devices, 1000, (d) => d.stop());
    this.#devices = [];
    this.#byMachine.clear();
    this.#started = false;
  }

  /** Every device back to its generated state (files, processes, journal, faults). */
  reset(): void {
    for (const d of this.#devices) d.reset();
  }

  /** A different seed means a different fleet: the current one is stopped and the new one started, same size. */
  async reseed(seed: string | number): Promise<void> {
    const n = this.#devices.length;
    await this.stop();
    this.#seedLabel = String(seed);
    if (n > 0) await this.start(n);
  }

  device(ref: string | number): SimulatedDevice | undefined {
    if (typeof ref === 'number') return this.#devices[ref];
    const lower = ref.toLowerCase();
    return (
      this.#byMachine.get(lower) ??
      this.#devices.find((d) => d.hostname.toLowerCase() === lower) ??
      (/^\d{1,6}$/.test(ref) ? this.#devices[Number(ref)] : undefined)
    );
  }

  /** Applies a fault to one device or a reproducible share of the fleet; returns the machine ids affected. */
  injectFault(target: FaultTarget, fault: Fault): string[] {
    let chosen: SimulatedDevice[];
    if (target.device !== undefined) {
      const d = this.device(target.device);
      if (!d) throw new Error(`no simulated device ${target.device}`);
      chosen = [d];
    } else if (target.fraction !== undefined && target.fraction > 0 && target.fraction <= 1) {
      const r = new Random(seedFrom('faults', this.#seedLabel, ++this.#faultCalls));
      const pool = [...this.#devices];
      const count = Math.max(1, Math.round(pool.length * target.fraction));
      chosen = [];
      for (let i = 0; i < count && pool.length > 0; i++) chosen.push(pool.splice(r.int(0, pool.length - 1), 1)[0]!);
    } else {
      throw new Error('a fault needs a device or a fraction in (0, 1]');
    }
    for (const d of chosen) d.inject(fault);
    return chosen.map((d) => d.machineId ?? d.hostname);
  }

  clearFaults(): void {
    for (const d of this.#devices) d.clearFaults();
  }

  journal(ref: string): JournalEntry[] | null {
    return this.device(ref)?.journal.entries() ?? null;
  }

  summaries(): DeviceSummary[] {
    return this.#devices.map((d) => ({
      index: d.spec.index,
      machineId: d.machineId,
      hostname: d.hostname,
      osPlatform: d.spec.os.osPlatform,
      version: d.spec.os.version,
      osBuild: d.spec.os.osBuild,
      agentVersion: d.spec.os.agentVersion,
      legacy: d.spec.os.legacy,
      online: d.online,
      pendingReports: d.client.pendingReports,
    }));
  }

  status(): FleetStatus {
    const platforms: Record<string, number> = {};
    const actions: DeviceStats = { received: 0, succeeded: 0, failed: 0, cancelled: 0 };
    let online = 0;
    let legacy = 0;
    let faulted = 0;
    for (const d of this.#devices) {
      platforms[d.spec.os.osPlatform] = (platforms[d.spec.os.osPlatform] ?? 0) + 1;
      if (d.online) online++;
      if (d.spec.os.legacy) legacy++;
      if (d.faulted) faulted++;
      actions.received += d.stats.received;
      actions.succeeded += d.stats.succeeded;
      actions.failed += d.stats.failed;
      actions.cancelled += d.stats.cancelled;
    }
    return {
      seed: this.#seedLabel,
      profile: this.#profile,
      started: this.#started,
      devices: this.#devices.length,
      online,
      platforms,
      legacy,
      faulted,
      actions,
    };
  }
}
