import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { servicePrincipalOid } from '../../src/server/auth/claims.ts';
import { decodeParts, DEFAULT_ROLES, form, postForm, startAuthServer, whoami, type AuthServer } from './harness.ts';

let server: AuthServer;
let creds: { clientId: string; secret: string };

before(async () => {
  server = await startAuthServer();
  creds = await server.createApp({ name: 'XSOAR prod' });
});
after(async () => server.close());

const v1 = () => `${server.base}/${server.tenant.id}/oauth2/token`;
const v2 = () => `${server.base}/${server.tenant.id}/oauth2/v2.0/token`;

interface ErrorBody {
  error: string;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
  error_uri: string;
}

async function expectEntraError(res: Response, status: number, error: string, code: number): Promise<ErrorBody> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const body = JSON.parse(text) as ErrorBody;
  assert.deepEqual(Object.keys(body), ['error', 'error_description', 'error_codes', 'timestamp', 'trace_id', 'correlation_id', 'error_uri']);
  assert.equal(body.error, error);
  assert.deepEqual(body.error_codes, [code]);
  const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  assert.match(body.trace_id, guid);
  assert.match(body.correlation_id, guid);
  assert.match(body.timestamp, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$/);
  assert.ok(body.error_description.startsWith(`AADSTS${code}: `), body.error_description);
  assert.ok(
    body.error_description.endsWith(`\r\nTrace ID: ${body.trace_id}\r\nCorrelation ID: ${body.correlation_id}\r\nTimestamp: ${body.timestamp}`),
    body.error_description,
  );
  assert.equal(body.error_uri, `https://login.microsoftonline.com/error?code=${code}`);
  return body;
}

async function expectToken(res: Response): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(res.headers.get('pragma'), 'no-cache');
  const m = /^\{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"\}$/.exec(text);
  assert.ok(m, `exact body shape: ${text}`);
  return m[1]!;
}

describe('v1 token endpoint (resource)', () => {
  const resources = [
    'https://api.securitycenter.windows.com', // Rapid7 default
    'https://api.security.microsoft.com', // Cortex default
    'https://api.securitycenter.microsoft.com', // Microsoft samples
    'https://api.securitycenter.microsoft.com/',
    'https://api-eu.securitycenter.microsoft.com',
    'https://api-gov.securitycenter.microsoft.us',
    'fc780465-2017-40d4-a0c5-307022471b92',
  ];
  for (const resource of resources) {
    it(`issues a token for resource=${resource}`, async () => {
      const token = await expectToken(
        await postForm(v1(), `resource=${encodeURIComponent(resource)}&client_id=${creds.clientId}&client_secret=${encodeURIComponent(creds.secret)}&grant_type=client_credentials`),
      );
      const { payload } = decodeParts(token);
      assert.equal(payload.aud, resource);
      assert.equal((await whoami(server, `Bearer ${token}`)).status, 200);
    });
  }

  it('issues a token for this server’s own URL, percent-encoded (self-hosted clients)', async () => {
    const token = await expectToken(
      await postForm(v1(), `resource=${encodeURIComponent(server.base)}&client_id=${creds.clientId}&client_secret=${encodeURIComponent(creds.secret)}&grant_type=client_credentials`),
    );
    assert.equal(decodeParts(token).payload.aud, server.base);
    const res = await whoami(server, `Bearer ${token}`);
    assert.equal(res.status, 200);
  });

  it('carries Entra v1 claims', async () => {
    const before = Math.floor(Date.now() / 1000);
    const token = await expectToken(
      await postForm(v1(), form({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.secret, resource: 'https://api.securitycenter.microsoft.com' })),
    );
    const { header, payload } = decodeParts(token);
    assert.deepEqual(header, { alg: 'RS256', typ: 'JWT', kid: server.keys.currentKid });
    const tid = server.tenant.id;
    const oid = servicePrincipalOid(tid, creds.clientId);
    assert.deepEqual(Object.keys(payload).slice(0, 5), ['aud', 'iss', 'iat', 'nbf', 'exp']);
    assert.equal(payload.aud, 'https://api.securitycenter.microsoft.com');
    assert.equal(payload.iss, `https://sts.windows.net/${tid}/`);
    assert.equal(payload.idp, payload.iss);
    assert.equal(payload.appid, creds.clientId);
    assert.equal(payload.appidacr, '1');
    assert.equal(payload.azp, undefined);
    assert.equal(payload.oid, oid);
    assert.equal(payload.sub, oid);
    assert.equal(payload.tid, tid);
    assert.deepEqual(payload.roles, DEFAULT_ROLES);
    assert.equal(payload.ver, '1.0');
    assert.equal(payload.app_displayname, 'XSOAR prod');
    assert.match(String(payload.uti), /^[A-Za-z0-9_-]{22}$/);
    const iat = payload.iat as number;
    assert.ok(iat >= before && iat <= before + 5);
    assert.equal(payload.nbf, iat);
    assert.equal(payload.exp, iat + 3599);
    assert.match(oid, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(servicePrincipalOid(tid, creds.clientId.toUpperCase()), oid, 'oid is stable');
  });

  it('each token gets its own uti', async () => {
    const body = form({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.secret, resource: 'https://api.securitycenter.microsoft.com' });
    const a = decodeParts(await expectToken(await postForm(v1(), body))).payload.uti;
    const b = decodeParts(await expectToken(await postForm(v1(), body))).payload.uti;
    assert.notEqual(a, b);
  });

  it('accepts the tenant id in any case and client id in upper case', async () => {
    await expectToken(
      await postForm(
        `${server.base}/${server.tenant.id.toUpperCase()}/oauth2/token`,
        form({ grant_type: 'client_credentials', client_id: creds.clientId.toUpperCase(), client_secret: creds.secret, resource: 'https://api.securitycenter.microsoft.com' }),
      ),
    );
  });

  it('accepts a charset parameter on the content type', async () => {
    await expectToken(
      await postForm(v1(), form({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.secret, resource: 'https://api.securitycenter.microsoft.com' }), {
        'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
      }),
    );
  });
});

describe('v2 token endpoint (scope)', () => {
  const scopes: Array<[string, string]> = [
    ['https://securitycenter.onmicrosoft.com/windowsatpservice/.default', 'https://securitycenter.onmicrosoft.com/windowsatpservice'], // XSOAR, Kibana
    ['https://api.securitycenter.microsoft.com/.default', 'https://api.securitycenter.microsoft.com'], // Cortex v2, n8n, MS samples
    ['https://api-eu.securitycenter.microsoft.com/.default', 'https://api-eu.securitycenter.microsoft.com'], // msticpy
    ['https://securitycenter.onmicrosoft.us/windowsatpservice/.default', 'https://securitycenter.onmicrosoft.us/windowsatpservice'], // XAPI US Gov
    ['https://api.securitycenter.microsoft.com/.default offline_access', 'https://api.securitycenter.microsoft.com'],
    ['https://api.securitycenter.microsoft.com', 'https://api.securitycenter.microsoft.com'],
    ['api://fc780465-2017-40d4-a0c5-307022471b92/.default', 'api://fc780465-2017-40d4-a0c5-307022471b92'],
  ];
  for (const [scope, aud] of scopes) {
    it(`issues a token for scope=${scope}`, async () => {
      const token = await expectToken(
        await postForm(v2(), form({ client_id: creds.clientId, client_secret: creds.secret, grant_type: 'client_credentials', scope }), { 'user-agent': 'python-requests/2.31.0' }),
      );
      const { payload } = decodeParts(token);
      assert.equal(payload.aud, aud);
      assert.equal((await whoami(server, `Bearer ${token}`)).status, 200);
    });
  }

  it('issues a token for this server’s URL + /.default', async () => {
    const token = await expectToken(
      await postForm(v2(), form({ client_id: creds.clientId, client_secret: creds.secret, grant_type: 'client_credentials', scope: `${server.base}/.default` })),
    );
    assert.equal(decodeParts(token).payload.aud, server.base);
    assert.equal((await whoami(server, `Bearer ${token}`)).status, 200);
  });

  it('carries Entra v2 claims', async () => {
    const token = await expectToken(
      await postForm(v2(), form({ client_id: creds.clientId, client_secret: creds.secret, grant_type: 'client_credentials', scope: 'https://api.securitycenter.microsoft.com/.default' })),
    );
    const { payload } = decodeParts(token);
    const tid = server.tenant.id;
    assert.equal(payload.iss, `https://login.microsoftonline.com/${tid}/v2.0`);
    assert.equal(payload.azp, creds.clientId);
    assert.equal(payload.azpacr, '1');
    assert.equal(payload.appid, undefined);
    assert.equal(payload.ver, '2.0');
    assert.equal(payload.tid, tid);
    assert.equal(payload.oid, servicePrincipalOid(tid, creds.clientId));
    assert.deepEqual(payload.roles, DEFAULT_ROLES);
    assert.equal(payload.app_displayname, 'XSOAR prod');
    const principal = (await (await whoami(server, `Bearer ${token}`)).json()) as Record<string, unknown>;
    assert.deepEqual(principal, {
      kind: 'app',
      tenantId: tid,
      appId: creds.clientId,
      oid: servicePrincipalOid(tid, creds.clientId),
      name: 'XSOAR prod',
      roles: DEFAULT_ROLES,
      scopes: [],
      upn: null,
      groups: [],
      issuer: 'local',
    });
  });
});

describe('HTTP Basic client authentication', () => {
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  it('accepts client_id and client_secret in the Authorization header', async () => {
    await expectToken(await postForm(v1(), form({ grant_type: 'client_credentials', resource: 'https://api.securitycenter.microsoft.com' }), { authorization: basic(creds.clientId, creds.secret) }));
    await expectToken(
      await postForm(v2(), form({ grant_type: 'client_credentials', scope: 'https://api.securitycenter.microsoft.com/.default', client_id: creds.clientId }), {
        authorization: basic(creds.clientId, creds.secret),
      }),
    );
  });

  it('accepts un-encoded Basic credentials too', async () => {
    await expectToken(
      await postForm(v1(), form({ grant_type: 'client_credentials', resource: 'https://api.securitycenter.microsoft.com' }), {
        authorization: `Basic ${Buffer.from(`${creds.clientId}:${creds.secret}`).toString('base64')}`,
      }),
    );
  });

  it('ignores an Authorization header of another scheme and uses the body credentials', async () => {
    await expectToken(
      await postForm(v1(), form({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.secret, resource: 'https://api.securitycenter.microsoft.com' }), {
        authorization: 'Bearer something-stale',
      }),
    );
  });

  it('refuses a wrong secret in Basic', async () => {
    await expectEntraError(
      await postForm(v1(), form({ grant_type: 'client_credentials', resource: 'https://api.securitycenter.microsoft.com' }), { authorization: basic(creds.clientId, 'nope') }),
      401,
      'invalid_client',
      7000215,
    );
  });

  it('refuses malformed Basic headers', async () => {
    for (const authorization of ['Basic', 'Basic !!!!', `Basic ${Buffer.from('no-colon').toString('base64')}`, `Basic ${Buffer.from(':secret-only').toString('base64')}`]) {
      await expectEntraError(
        await postForm(v1(), form({ grant_type: 'client_credentials', resource: 'https://api.securitycenter.microsoft.com' }), { authorization }),
        400,
        'invalid_request',
        9002313,
      );
    }
  });

  it('refuses two authentication methods at once, or mismatched client ids', async () => {
    await expectEntraError(
      await postForm(v1(), form({ grant_type: 'client_credentials', resource: 'https://api.securitycenter.microsoft.com', client_secret: creds.secret }), {
        authorization: basic(creds.clientId, creds.secret),
      }),
      400,
      'invalid_request',
      9002313,
    );
    await expectEntraError(
      await postForm(v1(), form({ grant_type: 'client_credentials', resource: 'https://api.securitycenter.microsoft.com', client_id: '11111111-1111-1111-1111-111111111111' }), {
        authorization: basic(creds.clientId, creds.secret),
      }),
      400,
      'invalid_request',
      9002313,
    );
  });
});

describe('token endpoint errors (Entra style, D21)', () => {
  const good = () => ({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.secret, resource: 'https://api.securitycenter.microsoft.com' });

  it('unknown client → 400 unauthorized_client AADSTS700016', async () => {
    const body = await expectEntraError(await postForm(v1(), form({ ...good(), client_id: '00000000-0000-0000-0000-000000000001' })), 400, 'unauthorized_client', 700016);
    assert.match(body.error_description, /Application with identifier '00000000-0000-0000-0000-000000000001' was not found in the directory/);
    await expectEntraError(await postForm(v1(), form({ ...good(), client_id: 'not-a-guid' })), 400, 'unauthorized_client', 700016);
  });

  it('bad secret → 401 invalid_client AADSTS7000215 naming the app', async () => {
    const body = await expectEntraError(await postForm(v1(), form({ ...good(), client_secret: 'wrong' })), 401, 'invalid_client', 7000215);
    assert.ok(
      body.error_description.startsWith(
        `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${creds.clientId}'.\r\nTrace ID: `,
      ),
    );
  });

  for (const missing of ['grant_type', 'client_id', 'client_secret', 'resource']) {
    it(`missing ${missing} → 400 invalid_request AADSTS900144 naming it`, async () => {
      const params: Record<string, string> = good();
      delete params[missing];
      const body = await expectEntraError(await postForm(v1(), form(params)), 400, 'invalid_request', 900144);
      assert.ok(body.error_description.startsWith(`AADSTS900144: The request body must contain the following parameter: '${missing}'.`), body.error_description);
      // An empty value counts as missing, as on Entra.
      await expectEntraError(await postForm(v1(), form({ ...good(), [missing]: '' })), 400, 'invalid_request', 900144);
    });
  }

  it('missing scope on v2 → AADSTS900144 naming scope', async () => {
    const { resource: _r, ...rest } = good();
    const body = await expectEntraError(await postForm(v2(), form(rest)), 400, 'invalid_request', 900144);
    assert.match(body.error_description, /parameter: 'scope'\./);
  });

  it('unknown tenant → 400 invalid_request AADSTS90002', async () => {
    for (const tenant of ['00000000-0000-0000-0000-000000000000', 'common', 'contoso.onmicrosoft.com']) {
      const body = await expectEntraError(await postForm(`${server.base}/${tenant}/oauth2/token`, form(good())), 400, 'invalid_request', 90002);
      assert.match(body.error_description, new RegExp(`Tenant '${tenant.replace(/\./g, '\\.')}' not found`));
      await expectEntraError(await postForm(`${server.base}/${tenant}/oauth2/v2.0/token`, form(good())), 400, 'invalid_request', 90002);
    }
  });

  it('unsupported grant → 400 unsupported_grant_type AADSTS70003', async () => {
    // password is a supported grant since delegated access (issue 6); authorization_code only on the v2 endpoint.
    for (const grant_type of ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'constructor', '__proto__']) {
      await expectEntraError(await postForm(v1(), form({ ...good(), grant_type })), 400, 'unsupported_grant_type', 70003);
    }
  });

  it('bad resource → 400 invalid_resource AADSTS500011', async () => {
    for (const resource of ['https://graph.microsoft.com', 'https://management.azure.com/', 'http://127.0.0.1:1', 'junk value', 'https://api.securitycenter.microsoft.com.evil.example']) {
      const body = await expectEntraError(await postForm(v1(), form({ ...good(), resource })), 400, 'invalid_resource', 500011);
      assert.match(body.error_description, /The resource principal named .* was not found in the tenant named contoso\.example\./);
    }
    await expectEntraError(
      await postForm(v2(), form({ ...good(), scope: 'https://graph.microsoft.com/.default' })),
      400,
      'invalid_resource',
      500011,
    );
  });

  it('bad scope → 400 invalid_scope AADSTS70011', async () => {
    for (const scope of ['openid offline_access', 'https://api.securitycenter.microsoft.com/.default https://graph.microsoft.com/.default', 'Machine.Read Machine.Isolate', 'User.Read', '   ']) {
      await expectEntraError(await postForm(v2(), form({ ...good(), scope })), 400, scope.trim() ? 'invalid_scope' : 'invalid_scope', 70011);
    }
  });

  it('disabled app → 401 invalid_client AADSTS7000112', async () => {
    const disabled = await server.createApp({ name: 'Old integration', disabled: true });
    const body = await expectEntraError(await postForm(v1(), form({ ...good(), client_id: disabled.clientId, client_secret: disabled.secret })), 401, 'invalid_client', 7000112);
    assert.match(body.error_description, /is disabled\./);
  });

  it('non-form bodies → 400 invalid_request AADSTS900144 (grant_type)', async () => {
    const cases: Array<[string, string]> = [
      ['application/json', JSON.stringify(good())],
      ['text/plain', form(good())],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--x--'],
      ['application/xml', '<x/>'],
    ];
    for (const [type, body] of cases) {
      const res = await fetch(v1(), { method: 'POST', headers: { 'content-type': type }, body });
      const err = await expectEntraError(res, 400, 'invalid_request', 900144);
      assert.match(err.error_description, /'grant_type'/);
    }
    const none = await fetch(v1(), { method: 'POST' });
    await expectEntraError(none, 400, 'invalid_request', 900144);
    const malformedJson = await fetch(v1(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    await expectEntraError(malformedJson, 400, 'invalid_request', 900144);
  });

  it('a parameter sent twice → 400 invalid_request', async () => {
    const body = `${form(good())}&client_id=${encodeURIComponent('00000000-0000-0000-0000-000000000001')}`;
    await expectEntraError(await postForm(v1(), body), 400, 'invalid_request', 9002313);
  });

  it('oversized body → 413 in Entra style, never a 500', async () => {
    const body = `${form(good())}&pad=${'x'.repeat(200 * 1024)}`;
    await expectEntraError(await postForm(v1(), body), 413, 'invalid_request', 9002313);
    const json = await fetch(v1(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(200 * 1024) });
    await expectEntraError(json, 413, 'invalid_request', 9002313);
  });

  it('odd but harmless encodings: malformed percent escapes and binary junk never yield a 500', async () => {
    for (const body of ['%', '%zz=%%', 'grant_type=%E0%A4%A', '\u0000\u0001=\u0002', '&&&==&=', 'grant_type']) {
      const res = await postForm(v1(), body);
      assert.ok(res.status === 400 || res.status === 401, `${JSON.stringify(body)} → ${res.status}`);
      await res.text();
    }
  });

  it('GET on the token endpoint → 400 AADSTS900561', async () => {
    await expectEntraError(await fetch(v1()), 400, 'invalid_request', 900561);
    await expectEntraError(await fetch(v2()), 400, 'invalid_request', 900561);
  });

  it('uses the caller’s client-request-id as correlation id and echoes it when asked', async () => {
    const cid = '0b5c7a63-8b8e-4a2b-9a0e-2f0f9d0f1c11';
    const res = await postForm(v1(), form({ ...good(), client_secret: 'x' }), { 'client-request-id': cid, 'return-client-request-id': 'true' });
    assert.equal(res.headers.get('client-request-id'), cid);
    const body = await expectEntraError(res, 401, 'invalid_client', 7000215);
    assert.equal(body.correlation_id, cid);
    assert.match(res.headers.get('x-ms-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('echoed user input cannot break the description format', async () => {
    const sneaky = "evil\r\nTrace ID: forged'";
    const body = await expectEntraError(await postForm(`${server.base}/${encodeURIComponent(sneaky)}/oauth2/token`, form(good())), 400, 'invalid_request', 90002);
    assert.equal(body.error_description.split('\r\n').length, 4);
    const long = await expectEntraError(await postForm(v1(), form({ ...good(), grant_type: 'g'.repeat(5000) })), 400, 'unsupported_grant_type', 70003);
    assert.ok(long.error_description.length < 1000);
  });
});

describe('plugin encapsulation', () => {
  it('the form parser and Entra error handling stay inside the token routes', async () => {
    const json = await fetch(`${server.base}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.deepEqual(await json.json(), { got: { a: 1 } });
    const formRes = await postForm(`${server.base}/api/echo`, 'a=1');
    assert.equal(formRes.status, 415);
    await formRes.text();
  });
});
