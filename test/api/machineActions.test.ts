// GET /api/machineactions[/{id}], POST /api/machineactions/{id}/cancel, expiry to TimeOut.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ALL_ACTION_ROLES, call, startTestServer, type TestServer } from '../helpers/testServer.ts';

const sha1 = () => randomBytes(20).toString('hex');

describe('machine actions', () => {
  let s: TestServer;
  let token: string;
  let machineA: string;
  let machineB: string;
  const created: any[] = [];

  before(async () => {
    s = await startTestServer();
    token = await s.token(ALL_ACTION_ROLES, 'Reader');
    machineA = (await s.seedMachine({ computerDnsName: 'a.contoso.local' })).id;
    machineB = (await s.seedMachine({ computerDnsName: 'b.contoso.local' })).id;
    for (const m of [machineA, machineB, machineA]) {
      const r = await call(`${s.url}/api/machines/${m}/StopAndQuarantineFile`, {
        method: 'POST', token, body: JSON.stringify({ Comment: 'seed', Sha1: sha1() }),
      });
      assert.equal(r.status, 201, r.text);
      created.push(r.json);
    }
    const iso = await call(`${s.url}/api/machines/${machineB}/isolate`, {
      method: 'POST', token, body: '{"Comment": "c", "IsolationType": "Selective"}',
    });
    assert.equal(iso.status, 201, iso.text);
    assert.equal(iso.json.scope, 'Selective');
    created.push(iso.json);
  });
  after(() => s.close());

  const list = (qs: string) => call(`${s.url}/api/machineactions${qs}`, { token });

  it('lists newest first with the collection context', async () => {
    const r = await list('');
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json), ['@odata.context', 'value']);
    assert.equal(r.json['@odata.context'], `${s.url}/api/$metadata#MachineActions`);
    assert.deepEqual(r.json.value.map((a: any) => a.id), created.map((a) => a.id).reverse());
    assert.ok(!('@odata.context' in r.json.value[0]));
  });

  it('filters as XSOAR sends it (percent-encoded, + for space)', async () => {
    const r = await list(
      `?%24filter=status+eq+%27Pending%27+and+machineId+eq+%27${machineA}%27+and+type+eq+%27StopAndQuarantineFile%27`,
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.value.length, 2);
  });

  it('filters as Kibana sends it (in, upper-case AND, $count)', async () => {
    const r = await list(`?$filter=machineId in ('${machineA}','${machineB}') AND type in ('Isolate')&$count=true`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['@odata.context', '@odata.count', 'value']);
    assert.equal(r.json['@odata.count'], 1);
  });

  it('filters with or-joined groups (current XSOAR)', async () => {
    const r = await list(
      `?$filter=(machineId eq '${machineA}' and status eq 'Pending') or (machineId eq '${machineB}' and type eq 'Isolate')`,
    );
    assert.equal(r.json.value.length, 3);
  });

  it('supports $top, $skip, $orderby and date comparisons', async () => {
    assert.equal((await list('?$top=2')).json.value.length, 2);
    const skipped = await list('?$top=2&$skip=3');
    assert.equal(skipped.json.value.length, 1);
    assert.equal(skipped.json.value[0].id, created[0].id);
    const asc = await list('?$orderby=creationDateTimeUtc asc');
    assert.equal(asc.json.value[0].id, created[0].id);
    const future = await list('?$filter=creationDateTimeUtc gt 2999-01-01T00:00:00Z');
    assert.equal(future.json.value.length, 0);
    const past = await list('?$filter=creationDateTimeUtc ge 2020-01-01Z');
    assert.equal(past.json.value.length, 4);
  });

  it('bad query options → 400 in the OData parser shape', async () => {
    for (const qs of ['?$stop=10', '?$top=10001', '?$top=-1', "?$filter=status eq 'Pending", '?$filter=nope eq 1', '?$orderby=nope']) {
      const r = await list(qs);
      assert.equal(r.status, 400, qs);
      assert.equal(r.json.error.code, '', qs);
      assert.deepEqual(r.json.error.details, []);
      assert.match(r.json.error.message, /^The query specified in the URI is not valid/);
    }
    const stop = await list('?$stop=10');
    assert.equal(
      stop.json.error.message,
      "The query specified in the URI is not valid. Custom query option '$stop' that starts with '$' is not supported.",
    );
  });

  it('GET by id: non-GUID → 400 Edm.Guid message; unknown → 404 ResourceNotFound', async () => {
    const bad = await call(`${s.url}/api/machineactions/556b3952acb0bff29816d267822305781cc183ec`, { token });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'BadRequest');
    assert.equal(
      bad.json.error.message,
      "The key value (556b3952acb0bff29816d267822305781cc183ec) from request is not valid. The key value should be format of type 'Edm.Guid'.",
    );
    const missing = await call(`${s.url}/api/machineactions/00000000-0000-4000-8000-000000000000`, { token });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'ResourceNotFound');
  });

  it('cancel turns the same action into Cancelled, once', async () => {
    const m = await s.seedMachine();
    const a = await call(`${s.url}/api/machines/${m.id}/StopAndQuarantineFile`, {
      method: 'POST', token, body: JSON.stringify({ Comment: 'x', Sha1: sha1() }),
    });
    const c = await call(`${s.url}/api/machineactions/${a.json.id}/cancel`, {
      method: 'POST', token, body: '{"Comment": "false positive"}',
    });
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.id, a.json.id);
    assert.equal(c.json.status, 'Cancelled');
    assert.equal(c.json.cancellationRequestor, 'Reader');
    assert.equal(c.json.cancellationComment, 'false positive');
    assert.match(c.json.cancellationDateTimeUtc, /Z$/);
    assert.ok(c.json.lastUpdateDateTimeUtc > a.json.lastUpdateDateTimeUtc);
    const again = await call(`${s.url}/api/machineactions/${a.json.id}/cancel`, { method: 'POST', token, body: '{"Comment":"again"}' });
    assert.equal(again.status, 400);
    assert.equal(again.json.error.code, 'BadRequest');
    const unknown = await call(`${s.url}/api/machineactions/00000000-0000-4000-8000-000000000001/cancel`, {
      method: 'POST', token, body: '{"Comment":"x"}',
    });
    assert.equal(unknown.status, 404);
    const bad = await call(`${s.url}/api/machineactions/${a.json.id}/cancel`, { method: 'POST', token, body: '{oops' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'InvalidRequestBody');
  });

  it('cancel honours the misspelt Machine.CollectForensic permission and refuses read-only apps', async () => {
    const m = await s.seedMachine();
    const a = await call(`${s.url}/api/machines/${m.id}/StopAndQuarantineFile`, {
      method: 'POST', token, body: JSON.stringify({ Comment: 'x', Sha1: sha1() }),
    });
    const reader = await s.token(['Machine.Read.All']);
    const denied = await call(`${s.url}/api/machineactions/${a.json.id}/cancel`, { method: 'POST', token: reader, body: '{"Comment":"x"}' });
    assert.equal(denied.status, 403);
    assert.match(denied.json.error.message, /Machine\.CollectForensic/);
    const forensic = await s.token(['Machine.CollectForensic']);
    const ok = await call(`${s.url}/api/machineactions/${a.json.id}/cancel`, { method: 'POST', token: forensic, body: '{"Comment":"x"}' });
    assert.equal(ok.status, 200, ok.text);
  });

  it('reading needs Machine.Read.All or Machine.ReadWrite.All', async () => {
    const t = await s.token(['Machine.Isolate']);
    const r = await call(`${s.url}/api/machineactions`, { token: t });
    assert.equal(r.status, 403);
    assert.equal(
      r.json.error.message,
      'Missing application roles. API required roles: Machine.Read.All,Machine.ReadWrite.All, application roles: Machine.Isolate.',
    );
  });

  it('other action routes: validation and duplicates', async () => {
    const m = await s.seedMachine();
    const scan = (body: string) => call(`${s.url}/api/machines/${m.id}/runAntiVirusScan`, { method: 'POST', token, body });
    assert.equal((await scan('{"Comment":"c"}')).json.error.code, 'MissingRequiredParameter');
    assert.equal((await scan('{"Comment":"c","ScanType":"Deep"}')).json.error.code, 'InvalidInput');
    const ok = await scan('{"Comment":"c","ScanType":"Quick"}');
    assert.equal(ok.status, 201);
    assert.equal(ok.json.scope, 'Quick');
    const dup = await scan('{"Comment":"c","ScanType":"Full"}');
    assert.equal(dup.status, 400);
    assert.ok(dup.text.includes('"message":"Action is already in progress"'));
    const lr = await call(`${s.url}/api/machines/${m.id}/runliveresponse`, {
      method: 'POST', token,
      body: '{"Commands":[{"type":"RunScript","params":[{"key":"ScriptName","value":"minidump.ps1"}]}],"Comment":"lr"}',
    });
    assert.equal(lr.status, 201, lr.text);
    assert.equal(lr.json.type, 'LiveResponse');
    assert.deepEqual(lr.json.commands[0], {
      index: 0, startTime: null, endTime: null, commandStatus: 'Created', errors: [],
      command: { type: 'RunScript', params: [{ key: 'ScriptName', value: 'minidump.ps1' }] },
    });
    const off = await call(`${s.url}/api/machines/${m.id}/offboard`, { method: 'POST', token, body: '{"Comment":"bye"}' });
    assert.equal(off.status, 201);
  });

  it('getPackageUri refuses actions that are not investigation packages', async () => {
    const r = await call(`${s.url}/api/machineactions/${created[0].id}/getPackageUri`, { token });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'InvalidInput');
    assert.equal(r.json.error.message, 'Provided Guid is not a valid id for a CollectInvestigationPackage action');
  });
});

describe('expiry', () => {
  it('a Pending action past its expiry becomes TimeOut with a non-zero errorHResult', async () => {
    const s = await startTestServer({ actionExpirySec: 1 });
    try {
      const token = await s.token(ALL_ACTION_ROLES);
      const m = await s.seedMachine();
      const a = await call(`${s.url}/api/machines/${m.id}/StopAndQuarantineFile`, {
        method: 'POST', token, body: JSON.stringify({ Comment: 'x', Sha1: sha1() }),
      });
      assert.equal(a.status, 201);
      let status = 'Pending';
      let body: any;
      for (let i = 0; i < 40 && status === 'Pending'; i++) {
        await sleep(100);
        body = (await call(`${s.url}/api/machineactions/${a.json.id}`, { token })).json;
        status = body.status;
      }
      assert.equal(status, 'TimeOut');
      assert.notEqual(body.errorHResult, 0);
      const cancel = await call(`${s.url}/api/machineactions/${a.json.id}/cancel`, { method: 'POST', token, body: '{"Comment":"x"}' });
      assert.equal(cancel.status, 400);
    } finally {
      await s.close();
    }
  });
});
