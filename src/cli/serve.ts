// `tourniquet serve`: open the store, build the server, listen, and in demo mode start a simulated fleet.
import { buildServer, type BuiltServer } from '../server/app.ts';
import type { ServerConfig } from '../server/config.ts';
import { openStore } from '../store/open.ts';
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
  const store = await openStore({ databaseUrl: config.databaseUrl ?? undefined, dataDir: config.dataDir });
  let built: BuiltServer;
  try {
    built = await buildServer({ config, store });
    await opts.beforeListen?.(built);
    await built.app.listen({ host: config.host, port: config.port });
  } catch (err) {
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
      await store.close();
    },
  };
}
