// A minimal real server for the auth tests: the token routes plus one protected route using the verifier,
// over a real SQLite store, listening on 127.0.0.1.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { MdeError } from '../../src/core/errors.ts';
import { hashSecret, newClientSecret } from '../../src/server/auth/secrets.ts';
import type { SecretLockout } from '../../src/server/auth/secretLockout.ts';
import { SigningKeys } from '../../src/server/auth/signingKeys.ts';
import { registerTokenRoutes } from '../../src/server/auth/tokenRoutes.ts';
import { createTokenVerifier, type TokenVerifier } from '../../src/server/auth/verifyToken.ts';
import { nowTimestamp } from '../../src/server/clock.ts';
import { DEFAULT_CONFIG, type ServerConfig } from '../../src/server/config.ts';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import type { Store, Tenant } from '../../src/store/store.ts';

export interface AuthServer {
  base: string;
  port: number;
  store: Store;
  tenant: Tenant;
  keys: SigningKeys;
  verifier: TokenVerifier;
  config: ServerConfig;
  app: FastifyInstance;
  /** Every log line the server wrote (level trace). */
  logs: string[];
  createApp(opts?: { name?: string; roles?: string[]; disabled?: boolean }): Promise<{ clientId: string; secret: string }>;
  close(): Promise<void>;
}

export interface AuthServerOptions {
  config?: Partial<ServerConfig>;
  lockout?: SecretLockout;
  /** Reuse a store (and its tenant/keys) instead of opening a fresh one. */
  store?: Store;
  dataDir?: string;
}

export const DEFAULT_ROLES = ['Machine.StopAndQuarantine', 'Machine.Read.All'];

export async function startAuthServer(opts: AuthServerOptions = {}): Promise<AuthServer> {
  const tempDir = opts.store || opts.dataDir ? null : mkdtempSync(join(tmpdir(), 'tourniquet-auth-'));
  const store = opts.store ?? (await openSqliteStore({ path: join(opts.dataDir ?? tempDir!, 'tourniquet.db') }));
  const tenant = await store.getOrCreateTenant(() => ({ id: randomUUID(), name: 'contoso.example', createdAt: nowTimestamp() }));
  const config: ServerConfig = { ...DEFAULT_CONFIG, logLevel: 'trace', ...opts.config };
  const keys = await SigningKeys.load(store, { tokenLifetimeSec: config.tokenLifetimeSec, refreshMs: 0 });
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  // Router options as the real app sets them, so path matching behaves the same.
  const app = Fastify({
    logger: { level: 'trace', stream },
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 2048 },
  });
  await registerTokenRoutes(app, { store, keys, config, tenant, ...(opts.lockout ? { lockout: opts.lockout } : {}) });
  const verifier = createTokenVerifier({ store, keys, config, tenant });
  app.get('/api/whoami', async (request, reply) => {
    try {
      const principal = await verifier.verify(request.headers.authorization, `${request.protocol}://${request.host}`);
      return reply.send(principal);
    } catch (err) {
      if (err instanceof MdeError) {
        return reply
          .code(err.status)
          .headers(err.headers)
          .type('application/json; charset=utf-8')
          .send(JSON.stringify({ error: { code: err.code, message: err.message, target: randomUUID() } }));
      }
      throw err;
    }
  });
  // A JSON route outside the plugin: the token routes' form parser must not leak into the rest of the app.
  app.post('/api/echo', async (request) => ({ got: request.body }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  const port = address.port;

  return {
    base: `http://127.0.0.1:${port}`,
    port,
    store,
    tenant,
    keys,
    verifier,
    config,
    app,
    logs,
    async createApp({ name = 'SOAR playbooks', roles = DEFAULT_ROLES, disabled = false } = {}) {
      const clientId = randomUUID();
      const secret = newClientSecret();
      await store.createApp({ clientId, tenantId: tenant.id, name, secretHash: await hashSecret(secret), roles, createdAt: nowTimestamp(), disabled });
      return { clientId, secret };
    },
    async close() {
      keys.stop();
      await app.close();
      if (!opts.store) await store.close();
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    },
  };
}

export function form(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

export async function postForm(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
}

/** Decodes a JWT's header and payload without verifying (for inspecting what we minted). */
export function decodeParts(jwt: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as Record<string, unknown>,
  };
}

export async function getToken(
  server: AuthServer,
  creds: { clientId: string; secret: string },
  resource = 'https://api.securitycenter.microsoft.com',
): Promise<string> {
  const res = await postForm(
    `${server.base}/${server.tenant.id}/oauth2/token`,
    form({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.secret, resource }),
  );
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

export async function whoami(server: AuthServer, authorization: string | undefined, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.base}/api/whoami`, { headers: { ...(authorization !== undefined ? { authorization } : {}), ...headers } });
}
