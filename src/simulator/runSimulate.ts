// `tourniquet simulate`: a seeded fleet against a running server, until stopped. Prints exactly
// `N devices online` once every device is enrolled and connected (shared/contract.md).
import Fastify from 'fastify';
import { registerSimulatorAdmin, ADMIN_PREFIX } from './adminApi.ts';
import { Fleet, MAX_FLEET_SIZE, type FleetLog } from './fleet.ts';
import { profileNamed } from './profiles.ts';

export interface RunSimulateOptions {
  /** A server base URL, or several nodes of one cluster separated by commas (devices spread over them). */
  server: string;
  enrollToken: string;
  devices?: number;
  seed?: string | number;
  profile?: string;
  /** Diagnostics (pino-compatible); silent by default. */
  log?: FleetLog;
  /** Where the contract's output lines go; stdout by default. */
  print?: (line: string) => void;
  /** Serve the admin API on 127.0.0.1:adminPort (0 = any free port); off when absent. */
  adminPort?: number;
}

export interface RunningSimulation {
  fleet: Fleet;
  adminUrl: string | null;
  stop(): Promise<void>;
}

export const DEFAULT_SIMULATED_DEVICES = 10;

function isLoopback(addr: string | undefined): boolean {
  return addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1';
}

export async function runSimulate(o: RunSimulateOptions): Promise<RunningSimulation> {
  const print = o.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const urls = o.server
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      let url: URL;
      try {
        url = new URL(s);
      } catch {
        throw new Error(`--server must be a URL such as http://127.0.0.1:8080, or several separated by commas (got "${s}")`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('--server must be an http:// or https:// URL');
      return url.origin;
    });
  if (urls.length === 0) throw new Error('--server must be a URL such as http://127.0.0.1:8080');
  if (urls.length > 64) throw new Error('--server lists more than 64 servers');
  const devices = o.devices ?? DEFAULT_SIMULATED_DEVICES;
  if (!Number.isInteger(devices) || devices < 1 || devices > MAX_FLEET_SIZE) {
    throw new Error(`--devices must be an integer between 1 and ${MAX_FLEET_SIZE}`);
  }
  if (!o.enrollToken) throw new Error('--enroll-token is required');
  const profile = profileNamed(o.profile ?? 'realistic').name;

  const fleet = new Fleet({
    server: urls[0]!,
    ...(urls.length > 1 ? { servers: urls } : {}),
    enrollToken: o.enrollToken,
    seed: o.seed ?? 1,
    profile,
    ...(o.log ? { log: o.log } : {}),
  });
  await fleet.start(devices);
  print(`${devices} devices online`);

  let admin: ReturnType<typeof Fastify> | null = null;
  let adminUrl: string | null = null;
  if (o.adminPort !== undefined) {
    admin = Fastify({ logger: false });
    registerSimulatorAdmin(admin, fleet, { authorize: (req) => isLoopback(req.socket.remoteAddress) });
    try {
      await admin.listen({ host: '127.0.0.1', port: o.adminPort });
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    const addr = admin.server.address();
    adminUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : o.adminPort}${ADMIN_PREFIX}`;
    print(`simulator admin API on ${adminUrl}`);
  }

  return {
    fleet,
    adminUrl,
    async stop() {
      await admin?.close();
      await fleet.stop();
    },
  };
}
