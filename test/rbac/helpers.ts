// What the RBAC tests share: a real server (test/helpers/testServer.ts) plus users, public clients, device groups
// and delegated tokens made through the same RbacAdmin the API and CLI use.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { RbacAdmin } from '../../src/server/extensions/rbacAdmin.ts';
import type { DeviceGroupRule } from '../../src/core/deviceGroups.ts';
import { startTestServer, type TestServer } from '../helpers/testServer.ts';
import type { ServerConfig } from '../../src/server/config.ts';

export interface RbacServer extends TestServer {
  admin: RbacAdmin;
  tenantId: string;
  /** A public client registered for the delegated grants. */
  publicClientId: string;
  redirectUri: string;
  user(upn: string, roles: string[], deviceGroups?: 'all' | string[], password?: string): Promise<{ oid: string; upn: string; password: string }>;
  group(name: string, rule: DeviceGroupRule, rank?: number): Promise<number>;
  /** A delegated token (password grant, v2 unless said otherwise). */
  userToken(upn: string, password?: string, opts?: { version?: '1.0' | '2.0'; scope?: string }): Promise<string>;
  tokenEndpoint(version: '1.0' | '2.0'): string;
}

export const PASSWORD = 'Correct-horse-battery-42';

export async function startRbacServer(overrides: Partial<ServerConfig> = {}): Promise<RbacServer> {
  const s = await startTestServer(overrides);
  const admin = new RbacAdmin({
    store: s.store,
    actor: { actorType: 'cli', actorId: 'test', actorName: null, clientIp: null, correlationId: null },
  });
  const redirectUri = 'http://127.0.0.1:1/callback';
  const client = await admin.createPublicClient({ name: 'Tourniquet console', redirectUris: [redirectUri, 'https://console.example.org/cb'] });
  const rs: RbacServer = Object.assign(s, {
    admin,
    tenantId: client.tenantId,
    publicClientId: client.clientId,
    redirectUri,
    tokenEndpoint: (version: '1.0' | '2.0') => `${s.url}/${client.tenantId}/oauth2/${version === '2.0' ? 'v2.0/' : ''}token`,
    async user(upn: string, roles: string[], deviceGroups: 'all' | string[] = 'all', password = PASSWORD) {
      const r = await admin.createUser({ upn, password, roles, deviceGroups });
      return { oid: r.user.oid, upn, password };
    },
    async group(name: string, rule: DeviceGroupRule, rank?: number) {
      return (await admin.createDeviceGroup({ name, rule, ...(rank !== undefined ? { rank } : {}) })).group.id;
    },
    async userToken(upn: string, password = PASSWORD, opts: { version?: '1.0' | '2.0'; scope?: string } = {}) {
      const version = opts.version ?? '2.0';
      const res = await postForm(rs.tokenEndpoint(version), {
        grant_type: 'password',
        client_id: client.clientId,
        username: upn,
        password,
        ...(version === '2.0'
          ? { scope: opts.scope ?? 'https://api.securitycenter.microsoft.com/.default' }
          : { resource: 'https://api.securitycenter.microsoft.com' }),
      });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      return (JSON.parse(text) as { access_token: string }).access_token;
    },
  });
  return rs;
}

export async function postForm(url: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params).toString(),
    redirect: 'manual',
  });
}

export function decodeJwt(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(48).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Asserts an Entra-shaped error body and returns it. */
export async function entraError(res: Response, status: number, error: string, code: number): Promise<{ error: string; error_description: string }> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as { error: string; error_description: string; error_codes: number[] };
  assert.equal(body.error, error, text);
  assert.deepEqual(body.error_codes, [code], text);
  assert.ok(body.error_description.startsWith(`AADSTS${code}: `), body.error_description);
  return body;
}
