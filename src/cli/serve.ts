// `tourniquet serve`: open the store, build the server, listen, and in demo mode start a simulated fleet.
// On PostgreSQL the node is one of possibly several: rate limits are counted in the shared database.
import { buildServer, type BuiltServer } from '../server/app.ts';
import { openSharedRateLimits, type SharedRateLimits } from '../server/cluster/sharedRateLimits.ts';
import type { ServerConfig } from '../server/config.ts';
import { openStore, parseDatabaseUrl } from '../store/open.ts';
import type { Store } from '../store/store.ts';

export interface RunningServer {
  built: BuiltServer;
  store: Store;
  url: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Runs after the server is built and before it listens: the last moment routes can be added. */
  beforeListen?: (built: BuiltServer) => void | Promise<void>;
}

export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const store = await openStore({
    databaseUrl: config.databaseUrl ?? undefined,
    dataDir: config.dataDir,
    sqliteWriterThread: config.sqliteWriterThread,
  });
  let built: BuiltServer;
  let limits: SharedRateLimits | null = null;
  try {
    if (store.kind === 'postgres' && config.databaseUrl) limits = await openSharedRateLimits(parseDatabaseUrl(config.databaseUrl));
    built = await buildServer({ config, store, ...(limits ? { limiterFactory: limits.factory } : {}) });
    await opts.beforeListen?.(built);
    await built.app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await limits?.close().catch(() => undefined);
    await store.close();
    throw err;
  }
  const addr = built.app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    built,
    store,
    url: `http://${host}:${port}`,
    async stop() {
      await built.close();
      await limits?.close().catch(() => undefined);
      await store.close();
    },
  };
}
