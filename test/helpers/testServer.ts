// A real Tourniquet server on 127.0.0.1 with a fresh SQLite store in a temp dir, plus helpers to get credentials.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Machine } from '../../src/core/machines.ts';
import { machine } from '../store/fixtures.ts';
import { DEMO_ROLES } from '../../src/cli/demo.ts';
import { nowTimestamp } from '../../src/server/clock.ts';
import { DEFAULT_CONFIG, type ServerConfig } from '../../src/server/config.ts';
import { createApp, createEnrollToken, type CreatedApp } from '../../src/cli/credentials.ts';
import { startServer, type RunningServer } from '../../src/cli/serve.ts';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';

export interface TestServer extends RunningServer {
  dataDir: string;
  /** A new app with `roles`; returns its credentials. */
  app(roles: string[], name?: string): Promise<CreatedApp>;
  /** A v2 client-credentials access token for a new app with `roles`. */
  token(roles: string[], name?: string): Promise<string>;
  enrollToken(group?: string): Promise<string>;
  /** Seeds a machine row directly (for API tests that do not need a connected device). */
  seedMachine(patch?: Partial<Machine>): Promise<Machine>;
  close(): Promise<void>;
}

/** Every role the API checks: the demo app's set. */
export const ALL_ACTION_ROLES = DEMO_ROLES;

let seq = 0;

export async function startTestServer(overrides: Partial<ServerConfig> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tq-test-'));
  const config: ServerConfig = {
    ...DEFAULT_CONFIG,
    port: 0,
    dataDir,
    logLevel: 'silent',
    rateLimit: { perMinute: 100_000, perHour: 1_000_000 },
    ...overrides,
  };
  const running = await startServer(config);
  const ts: TestServer = {
    ...running,
    dataDir,
    app: (roles, name = `test-app-${++seq}`) => createApp(running.store, name, roles),
    async token(roles, name) {
      const creds = await ts.app(roles, name);
      return fetchToken(running.url, creds);
    },
    async enrollToken(group) {
      return (await createEnrollToken(running.store, { group: group ?? null })).token;
    },
    async seedMachine(patch = {}) {
      const now = nowTimestamp();
      const n = ++seq;
      const m = machine({
        computerDnsName: `host-${n}.contoso.local`,
        firstSeen: now,
        lastSeen: now,
        osPlatform: 'Windows11',
        version: '22H2',
        lastIpAddress: `10.0.0.${n % 250}`,
        lastExternalIpAddress: '203.0.113.7',
        agentVersion: '10.8470.22621.1',
        osBuild: 22621,
        ipAddresses: [],
        devicePublicKey: null,
        capabilities: [],
        ...patch,
      });
      await running.store.upsertMachine(m);
      return m;
    },
    async close() {
      await running.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return ts;
}

export async function fetchToken(
  baseUrl: string,
  creds: { tenantId: string; clientId: string; clientSecret: string },
  scope = 'https://api.securitycenter.microsoft.com/.default',
): Promise<string> {
  const res = await fetch(`${baseUrl}/${creds.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: creds.clientId,
      client_secret: creds.clientSecret,
      scope,
    }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || !body.access_token) throw new Error(`token request failed: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/** fetch with a bearer token; returns status, headers and raw text (tests assert on bytes). */
export async function call(
  url: string,
  opts: { method?: string; token?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; text: string; json: any }> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(url, { method: opts.method ?? 'GET', headers, body: opts.body });
  const text = await res.text();
  let json: any = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * Prepares a data directory for a burst of POSTs against a server process: an app made with the real
 * `tourniquet apps create` (credentials as the CLI prints them) and one machine ('burst-target') that takes any action.
 */
export async function prepareBurstDataDir(
  dataDir: string,
  appName: string,
): Promise<{ creds: { tenantId: string; clientId: string; clientSecret: string }; machineId: string }> {
  const bin = join(import.meta.dirname, '../../bin/tourniquet.js');
  const roles = 'Machine.StopAndQuarantine,Machine.Read.All';
  const created = spawnSync(process.execPath, [bin, 'apps', 'create', '--name', appName, '--roles', roles, '--data', dataDir, '--json'], {
    encoding: 'utf8',
  });
  if (created.status !== 0) throw new Error(`apps create failed: ${created.stderr}`);
  const store = await openSqliteStore({ path: join(dataDir, 'tourniquet.db') });
  const machineId = randomBytes(20).toString('hex');
  try {
    await store.upsertMachine(machine({ id: machineId, computerDnsName: 'burst-target', lastSeen: nowTimestamp(), capabilities: [] }));
  } finally {
    await store.close();
  }
  return { creds: JSON.parse(created.stdout), machineId };
}
