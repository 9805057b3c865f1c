// POST /api/machines/{id}/StopAndQuarantineFile: the wire contract clients rely on, status by status.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ALL_ACTION_ROLES, call, startTestServer, type TestServer } from '../helpers/testServer.ts';

const sha1 = () => randomBytes(20).toString('hex');
const TARGET_RE = /^\|[0-9a-f]{8}-[0-9a-f]{16}\.$/;
const ACTION_KEYS = [
  '@odata.context', 'id', 'type', 'title', 'requestor', 'requestorComment', 'status', 'machineId', 'computerDnsName',
  'creationDateTimeUtc', 'lastUpdateDateTimeUtc', 'cancellationRequestor', 'cancellationComment',
  'cancellationDateTimeUtc', 'errorHResult', 'scope', 'externalId', 'requestSource', 'relatedFileInfo', 'commands',
  'troubleshootInfo',
];

describe('StopAndQuarantineFile', () => {
  let s: TestServer;
  let token: string;
  before(async () => {
    s = await startTestServer();
    token = await s.token(ALL_ACTION_ROLES, 'SOAR playbook');
  });
  after(() => s.close());

  const post = (machine: string, body: string, opts: { token?: string; path?: string } = {}) =>
    call(`${s.url}${opts.path ?? '/api/machines'}/${machine}/StopAndQuarantineFile`, {
      method: 'POST',
      token: opts.token ?? token,
      body,
    });

  it('answers 201 with the 20 live properties in live order and the OData headers', async () => {
    const m = await s.seedMachine({ computerDnsName: 'desktop-test' });
    const h = sha1();
    const r = await post(m.id, `{"Comment": "wire-test", "Sha1": "${h}"}`);
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(Object.keys(r.json), ACTION_KEYS);
    assert.equal(r.headers.get('content-type'), 'application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8');
    assert.equal(r.headers.get('odata-version'), '4.0');
    assert.equal(r.headers.get('location'), null);
    assert.ok(!r.text.includes(': ') && !r.text.includes(', '), 'compact JSON');
    assert.equal(r.json['@odata.context'], `${s.url}/api/$metadata#MachineActions/$entity`);
    assert.match(r.json.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(r.json.type, 'StopAndQuarantineFile');
    assert.equal(r.json.title, null);
    assert.equal(r.json.requestor, 'SOAR playbook');
    assert.equal(r.json.requestorComment, 'wire-test');
    assert.equal(r.json.status, 'Pending');
    assert.equal(r.json.machineId, m.id);
    assert.equal(r.json.computerDnsName, 'desktop-test');
    assert.match(r.json.creationDateTimeUtc, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$/);
    assert.ok(r.json.lastUpdateDateTimeUtc >= r.json.creationDateTimeUtc);
    assert.equal(r.json.errorHResult, 0);
    assert.equal(r.json.scope, null);
    assert.equal(r.json.externalId, null);
    assert.equal(r.json.requestSource, 'PublicApi');
    assert.deepEqual(r.json.relatedFileInfo, { fileIdentifier: h, fileIdentifierType: 'Sha1' });
    assert.deepEqual(r.json.commands, []);
    assert.equal(r.json.troubleshootInfo, null);
    assert.ok(!('lastUpdateTimeUtc' in r.json));
  });

  it('is readable through GET machineactions/{id} immediately after the 201', async () => {
    const m = await s.seedMachine();
    const r = await post(m.id, JSON.stringify({ Comment: 'c', Sha1: sha1() }));
    const g = await call(`${s.url}/api/machineactions/${r.json.id}`, { token });
    assert.equal(g.status, 200);
    assert.equal(g.json.id, r.json.id);
    assert.equal(g.json.status, 'Pending');
  });

  it('matches the route case-insensitively, under /api/v1.0, and resolves aadDeviceId and DNS names', async () => {
    const aad = '80fe8ff8-2624-418e-9591-41f0491218f9';
    const m = await s.seedMachine({ computerDnsName: 'PC1.contoso.local', aadDeviceId: aad });
    const a = await call(`${s.url}/api/machines/${m.id}/stopAndQuarantineFile`, {
      method: 'POST', token, body: JSON.stringify({ Comment: 'c', Sha1: sha1() }),
    });
    assert.equal(a.status, 201, a.text);
    const b = await post(aad, JSON.stringify({ Comment: 'c', Sha1: sha1() }), { path: '/api/v1.0/machines' });
    assert.equal(b.status, 201, b.text);
    assert.equal(b.json.machineId, m.id);
    const c = await call(`${s.url}/API/MACHINES/pc1.CONTOSO.local/STOPANDQUARANTINEFILE`, {
      method: 'POST', token, body: JSON.stringify({ Comment: 'c', Sha1: sha1() }),
    });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.json.machineId, m.id);
  });

  it('lower-cases the SHA-1 it echoes', async () => {
    const m = await s.seedMachine();
    const h = sha1();
    const r = await post(m.id, JSON.stringify({ Comment: 'c', Sha1: h.toUpperCase() }));
    assert.equal(r.status, 201);
    assert.equal(r.json.relatedFileInfo.fileIdentifier, h);
  });

  it('refuses a second in-flight action for the same machine and SHA-1 with the exact bytes clients grep', async () => {
    const m = await s.seedMachine();
    const h = sha1();
    assert.equal((await post(m.id, JSON.stringify({ Comment: 'a', Sha1: h }))).status, 201);
    const dup = await post(m.id, JSON.stringify({ Comment: 'b', Sha1: h.toUpperCase() }));
    assert.equal(dup.status, 400);
    assert.ok(dup.text.includes('"message":"Action is already in progress"'), dup.text);
    assert.equal(dup.json.error.code, 'ActiveRequestAlreadyExists');
    assert.match(dup.json.error.target, TARGET_RE);
    assert.equal(dup.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(dup.headers.get('odata-version'), null);
    // another SHA-1 on the same machine is a new action
    assert.equal((await post(m.id, JSON.stringify({ Comment: 'c', Sha1: sha1() }))).status, 201);
  });

  it('allows the same SHA-1 again once the first action is final', async () => {
    const m = await s.seedMachine();
    const h = sha1();
    const first = await post(m.id, JSON.stringify({ Comment: 'a', Sha1: h }));
    const cancel = await call(`${s.url}/api/machineactions/${first.json.id}/cancel`, {
      method: 'POST', token, body: '{"Comment":"stop"}',
    });
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal((await post(m.id, JSON.stringify({ Comment: 'b', Sha1: h }))).status, 201);
  });

  describe('bad input', () => {
    const cases: [string, string, number, string, string | RegExp][] = [
      ['not JSON', '{"Comment": "x", ', 400, 'InvalidRequestBody', 'Request body is incorrect'],
      ['empty body', '', 400, 'InvalidRequestBody', 'Request body is incorrect'],
      ['a JSON array', '[]', 400, 'InvalidRequestBody', 'Request body is incorrect'],
      ['a JSON string', '"x"', 400, 'InvalidRequestBody', 'Request body is incorrect'],
      ['missing Comment', `{"Sha1":"${'a'.repeat(40)}"}`, 400, 'MissingRequiredParameter', 'Parameter Comment is missing'],
      ['missing Sha1', '{"Comment":"x"}', 400, 'MissingRequiredParameter', 'Parameter Sha1 is missing'],
      ['wrong-case key sha1', `{"Comment":"x","sha1":"${'a'.repeat(40)}"}`, 400, 'MissingRequiredParameter', 'Parameter Sha1 is missing'],
      ['wrong-case key comment', `{"comment":"x","Sha1":"${'a'.repeat(40)}"}`, 400, 'MissingRequiredParameter', 'Parameter Comment is missing'],
      ['an MD5', '{"Comment":"x","Sha1":"d41d8cd98f00b204e9800998ecf8427e"}', 400, 'InvalidHashValue', 'Hash value d41d8cd98f00b204e9800998ecf8427e is invalid'],
      ['a SHA-256', `{"Comment":"x","Sha1":"${'b'.repeat(64)}"}`, 400, 'InvalidHashValue', /^Hash value b+ is invalid$/],
      ['non-hex', `{"Comment":"x","Sha1":"${'z'.repeat(40)}"}`, 400, 'InvalidHashValue', /is invalid$/],
      ['a numeric Sha1', '{"Comment":"x","Sha1":12}', 400, 'InvalidRequestBody', /Sha1/],
      ['a null Comment', `{"Comment":null,"Sha1":"${'a'.repeat(40)}"}`, 400, 'MissingRequiredParameter', 'Parameter Comment is missing'],
    ];
    for (const [name, body, status, code, message] of cases) {
      it(`${name} → ${status} ${code}`, async () => {
        const m = await s.seedMachine();
        const r = await post(m.id, body);
        assert.equal(r.status, status, r.text);
        assert.equal(r.json.error.code, code);
        if (typeof message === 'string') assert.equal(r.json.error.message, message);
        else assert.match(r.json.error.message, message);
        assert.match(r.json.error.target, TARGET_RE);
        const list = await call(`${s.url}/api/machineactions?$filter=machineId eq '${m.id}'`, { token });
        assert.equal(list.json.value.length, 0, 'nothing written');
      });
    }

    it('oversized body → 413 in the error envelope, nothing written', async () => {
      const m = await s.seedMachine();
      const r = await post(m.id, JSON.stringify({ Comment: 'x'.repeat(2 * 1024 * 1024), Sha1: sha1() }));
      assert.equal(r.status, 413);
      assert.equal(r.json.error.code, 'RequestEntityTooLarge');
    });

    it('over-long Comment → 400 InvalidInput', async () => {
      const m = await s.seedMachine();
      const r = await post(m.id, JSON.stringify({ Comment: 'x'.repeat(5000), Sha1: sha1() }));
      assert.equal(r.status, 400);
      assert.equal(r.json.error.code, 'InvalidInput');
    });

    it('accepts any Content-Type as long as the body is JSON', async () => {
      const m = await s.seedMachine();
      const r = await call(`${s.url}/api/machines/${m.id}/StopAndQuarantineFile`, {
        method: 'POST', token, body: JSON.stringify({ Comment: 'c', Sha1: sha1() }), headers: { 'content-type': 'text/plain' },
      });
      assert.equal(r.status, 201, r.text);
    });
  });

  it('unknown machine → 404 ResourceNotFound "Machine {id} was not found"', async () => {
    const r = await post('0123456789abcdef0123456789abcdef01234567', JSON.stringify({ Comment: 'c', Sha1: sha1() }));
    assert.equal(r.status, 404);
    assert.equal(r.text.includes('ResourceNotFound'), true);
    assert.equal(r.json.error.message, 'Machine 0123456789abcdef0123456789abcdef01234567 was not found');
  });

  it('a file the device says it never saw → 404 "Sha1 … was not found in machine …"', async () => {
    const m = await s.seedMachine();
    const seen = sha1();
    await s.store.recordFileObservations(
      m.id,
      [{ sha1: seen, sha256: null, path: 'C:\\x.exe', size: 1, signer: null, trusted: false, seenAt: m.lastSeen }],
      true,
    );
    const missing = sha1();
    const r = await post(m.id, JSON.stringify({ Comment: 'c', Sha1: missing }));
    assert.equal(r.status, 404);
    assert.equal(r.json.error.message, `Sha1 ${missing} was not found in machine ${m.id}`);
    assert.equal((await post(m.id, JSON.stringify({ Comment: 'c', Sha1: seen }))).status, 201);
  });

  describe('device prerequisites', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['macOS', { osPlatform: 'macOS' }, 'OsPlatformNotSupported'],
      ['Windows 10 1607', { osPlatform: 'Windows10', osBuild: 14393 }, 'ClientVersionNotSupported'],
      ['Windows Server 2008 R2', { osPlatform: 'WindowsServer2008R2' }, 'OsPlatformNotSupported'],
      ['Linux with an old agent', { osPlatform: 'Linux', agentVersion: '0.0.9' }, 'ClientVersionNotSupported'],
      ['protection not running', { protectionRunning: false }, 'DisallowedOperation'],
      ['offboarded', { offboarded: true }, 'DisallowedOperation'],
    ];
    for (const [name, patch, code] of cases) {
      it(`${name} → 400 ${code}`, async () => {
        const m = await s.seedMachine(patch as never);
        const r = await post(m.id, JSON.stringify({ Comment: 'c', Sha1: sha1() }));
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.error.code, code);
      });
    }
    for (const platform of ['Windows10', 'Windows11', 'WindowsServer2012R2', 'WindowsServer2022', 'Linux']) {
      it(`${platform} is supported`, async () => {
        const m = await s.seedMachine({ osPlatform: platform, osBuild: platform === 'Windows10' ? 19045 : null, agentVersion: '1.0.0' });
        assert.equal((await post(m.id, JSON.stringify({ Comment: 'c', Sha1: sha1() }))).status, 201);
      });
    }
  });

  describe('authentication and permissions', () => {
    it('no token → 401 Unauthorized in the envelope', async () => {
      const m = await s.seedMachine();
      const r = await call(`${s.url}/api/machines/${m.id}/StopAndQuarantineFile`, {
        method: 'POST', body: JSON.stringify({ Comment: 'c', Sha1: sha1() }),
      });
      assert.equal(r.status, 401);
      assert.equal(r.json.error.code, 'Unauthorized');
    });

    it('a forged token → 401', async () => {
      const m = await s.seedMachine();
      const [h, p] = token.split('.');
      const r = await post(m.id, JSON.stringify({ Comment: 'c', Sha1: sha1() }), { token: `${h}.${p}.AAAA` });
      assert.equal(r.status, 401);
    });

    it('Machine.StopAndQuarantine alone → 403 naming the missing read roles', async () => {
      const m = await s.seedMachine();
      const t = await s.token(['Machine.StopAndQuarantine']);
      const r = await post(m.id, JSON.stringify({ Comment: 'c', Sha1: sha1() }), { token: t });
      assert.equal(r.status, 403);
      assert.equal(r.json.error.code, 'Forbidden');
      assert.equal(
        r.json.error.message,
        'Missing application roles. API required roles: Machine.Read.All,Machine.ReadWrite.All, application roles: Machine.StopAndQuarantine.',
      );
    });

    it('read roles alone → 403 naming Machine.StopAndQuarantine', async () => {
      const m = await s.seedMachine();
      const t = await s.token(['Machine.Read.All']);
      const r = await post(m.id, JSON.stringify({ Comment: 'c', Sha1: sha1() }), { token: t });
      assert.equal(r.status, 403);
      assert.match(r.json.error.message, /API required roles: Machine\.StopAndQuarantine, application roles: Machine\.Read\.All\./);
    });

    it('both halves → 201', async () => {
      const m = await s.seedMachine();
      const t = await s.token(['Machine.StopAndQuarantine', 'Machine.ReadWrite.All']);
      assert.equal((await post(m.id, JSON.stringify({ Comment: 'c', Sha1: sha1() }), { token: t })).status, 201);
    });
  });

  describe('routing', () => {
    it('GET on the action route → 405, Allow: POST, empty body', async () => {
      const m = await s.seedMachine();
      const r = await call(`${s.url}/api/machines/${m.id}/StopAndQuarantineFile`, { token });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get('allow'), 'POST');
      assert.equal(r.text, '');
      assert.equal(r.headers.get('content-length'), '0');
    });

    it('POST /api/machines/StopAndQuarantineFile (no id) → 405 with an empty body', async () => {
      const r = await call(`${s.url}/api/machines/StopAndQuarantineFile`, {
        method: 'POST', token, body: JSON.stringify({ Comment: 'c', Sha1: sha1() }),
      });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get('allow'), 'GET');
      assert.equal(r.text, '');
    });

    it('unknown route → 404 with an empty body', async () => {
      const r = await call(`${s.url}/api/files/${sha1()}/machine`, { token });
      assert.equal(r.status, 404);
      assert.equal(r.text, '');
    });

    it('every error carries a fresh correlation target', async () => {
      const a = await post('nope', '{}');
      const b = await post('nope', '{}');
      assert.match(a.json.error.target, TARGET_RE);
      assert.notEqual(a.json.error.target, b.json.error.target);
    });
  });
});
