// `serve`, `apps`, `enroll-token` and `simulate`: the server side of the command (shared/contract.md).
import { Command, InvalidArgumentError } from 'commander';
import { configFromEnv, type ServerConfig } from '../server/config.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { createApp, createEnrollToken } from './credentials.ts';
import { startServer } from './serve.ts';
import { runSimulate } from '../simulator/index.ts';
import { mountDemoAdmin, startDemo, type FleetHolder } from './demo.ts';
import { nowTimestamp } from '../server/clock.ts';

export function registerServerCommands(program: Command): void {
  const portNumber = (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('port must be 0..65535');
    return n;
  };
  const positiveInt = (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
    return n;
  };

  /** Store from --data / TOURNIQUET_DATA / TOURNIQUET_DATABASE_URL, closed after `fn`. */
  async function withStore<T>(data: string | undefined, fn: (s: Store) => Promise<T>): Promise<T> {
    const env = configFromEnv();
    const store = await openStore({ databaseUrl: env.databaseUrl ?? undefined, dataDir: data ?? env.dataDir });
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  program
    .command('serve')
    .description('Run the server (MDE API, token issuer, agent gateway)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'port; 0 picks a free one (default 8080)', portNumber)
    .option('--data <dir>', 'data directory for the embedded store (default ./data)')
    .option('--database-url <url>', 'PostgreSQL URL (postgres://…[?schema=name]) instead of the embedded store; several nodes may share it')
    .option('--public-url <url>', 'public base URL when behind a proxy')
    .option('--demo [n]', 'also start N simulated devices (default 8) and print a working recipe')
    .option('--profile <name>', 'simulator profile for --demo (instant, realistic, mde, chaos, legacy)', 'realistic')
    .option('--seed <seed>', 'simulator seed for --demo', '1')
    .option('--log-level <level>', 'pino log level')
    .action(async (opts) => {
      const config: ServerConfig = configFromEnv();
      if (opts.host) config.host = opts.host;
      if (opts.port !== undefined) config.port = opts.port;
      if (opts.data) config.dataDir = opts.data;
      if (opts.databaseUrl) config.databaseUrl = opts.databaseUrl;
      if (opts.publicUrl) config.publicUrl = opts.publicUrl;
      if (opts.logLevel) config.logLevel = opts.logLevel;
      const demoDevices = opts.demo === undefined ? 0 : opts.demo === true ? 8 : positiveInt(String(opts.demo));
      if (demoDevices > 0) config.adminApi = true;
      const holder: FleetHolder = { fleet: null };
      const server = await startServer(config, {
        beforeListen: (built) => {
          if (demoDevices > 0) mountDemoAdmin(built, holder);
        },
      });
      console.log(`listening on ${server.url}`);
      let stopDemo: (() => Promise<void>) | null = null;
      if (demoDevices > 0) {
        const demo = await startDemo(server, holder, { devices: demoDevices, profile: opts.profile, seed: String(opts.seed) });
        stopDemo = demo.stop;
      }
      const shutdown = async () => {
        await stopDemo?.();
        await server.stop();
        process.exit(0);
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    });

  const apps = program.command('apps').description('Applications (client-credentials principals)');
  apps
    .command('create')
    .description('Create an application; prints its credentials once')
    .requiredOption('--name <name>', 'display name (becomes `requestor` on its actions)')
    .requiredOption('--roles <roles>', 'comma-separated MDE application permissions')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const roles = String(opts.roles)
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean);
      const created = await withStore(opts.data, (s) => createApp(s, opts.name, roles));
      if (opts.json) console.log(JSON.stringify(created));
      else {
        console.log(`tenantId:     ${created.tenantId}`);
        console.log(`clientId:     ${created.clientId}`);
        console.log(`clientSecret: ${created.clientSecret}   (shown once; store it now)`);
        console.log(`roles:        ${created.roles.join(',')}`);
      }
    });
  apps
    .command('list')
    .description('List applications (never their secrets)')
    .option('--data <dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const list = await withStore(opts.data, (s) => s.listApps());
      const rows = list.map((a) => ({ clientId: a.clientId, name: a.name, roles: a.roles, disabled: a.disabled }));
      if (opts.json) console.log(JSON.stringify(rows));
      else for (const r of rows) console.log(`${r.clientId}  ${r.name}  ${r.roles.join(',')}${r.disabled ? '  (disabled)' : ''}`);
    });

  const enroll = program.command('enroll-token').description('Device enroll tokens');
  enroll
    .command('create')
    .description('Create an enroll token for devices')
    .option('--data <dir>', 'data directory')
    .option('--group <name>', 'device group the enrolled devices join')
    .option('--ttl <seconds>', 'lifetime in seconds (default 7 days)', positiveInt)
    .option('--max-uses <n>', 'how many devices may enroll with it', positiveInt)
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const t = await withStore(opts.data, (s) =>
        createEnrollToken(s, { group: opts.group ?? null, ttlSec: opts.ttl, maxUses: opts.maxUses ?? null }),
      );
      if (opts.json) console.log(JSON.stringify({ token: t.token, id: t.id, group: t.group, expiresAt: t.expiresAt }));
      else console.log(`${t.token}\n(id ${t.id}, expires ${t.expiresAt})`);
    });
  enroll
    .command('revoke <id>')
    .description('Revoke an enroll token by its id')
    .option('--data <dir>', 'data directory')
    .action(async (id: string, opts) => {
      const ok = await withStore(opts.data, (s) => s.revokeEnrollToken(id, nowTimestamp()));
      if (!ok) {
        console.error(`no enroll token ${id}`);
        process.exitCode = 1;
      } else console.log(`revoked ${id}`);
    });

  program
    .command('simulate')
    .description('Run a fleet of simulated devices against a server')
    .requiredOption('--server <urls>', 'server base URL, e.g. http://127.0.0.1:8080; several nodes of one cluster separated by commas')
    .requiredOption('--enroll-token <token>', 'enroll token (tourniquet enroll-token create)')
    .option('--devices <n>', 'number of devices', positiveInt, 10)
    .option('--seed <seed>', 'seed: the same seed gives the same fleet', '1')
    .option('--profile <name>', 'instant | realistic | mde | chaos | legacy', 'realistic')
    .option('--admin-port <port>', 'serve the simulator admin API on 127.0.0.1:PORT', portNumber)
    .action(async (opts) => {
      const sim = await runSimulate({
        server: opts.server,
        enrollToken: opts.enrollToken,
        devices: opts.devices,
        seed: opts.seed,
        profile: opts.profile,
        ...(opts.adminPort !== undefined ? { adminPort: opts.adminPort } : {}),
      });
      const shutdown = async () => {
        await sim.stop();
        process.exit(0);
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    });
}
