// The simulator against the real server (buildServer, MDE API, gateway): seeded fleets, MDE-exact refusals,
// scripted outcomes, faults, legacy devices refused by the server, and reproducible outcomes for a seed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HRESULT } from '../../src/core/actions.ts';
import { DEMO_SHA1, Fleet } from '../../src/simulator/index.ts';
import { ALL_ACTION_ROLES, call, startTestServer, type TestServer } from '../helpers/testServer.ts';

interface Api {
  server: TestServer;
  token: string;
  post(machineId: string, body: Record<string, unknown>, action?: string): Promise<{ status: number; json: any }>;
  get(actionId: string): Promise<any>;
  until(actionId: string, pred: (a: any) => boolean, timeoutMs?: number): Promise<any>;
}

async function api(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<Api> {
  const server = await startTestServer(overrides);
  const token = await server.token(ALL_ACTION_ROLES);
  const a: Api = {
    server,
    token,
    post: (machineId, body, action = 'StopAndQuarantineFile') =>
      call(`${server.url}/api/machines/${machineId}/${action}`, {
        method: 'POST',
        token,
        body: JSON.stringify(action === 'RunAntiVirusScan' ? { ScanType: 'Quick', ...body } : body),
      }),
    get: async (id) => (await call(`${server.url}/api/machineactions/${id}`, { token })).json,
    async until(id, pred, timeoutMs = 8000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const act = await a.get(id);
        if (pred(act)) return act;
        if (Date.now() > end) throw new Error(`action ${id} stuck in ${act?.status}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
  return a;
}

const final = (a: any) => !['Pending', 'InProgress'].includes(a?.status);

describe('fleet generation', () => {
  it('is a function of the seed: same seed, same fleet; another seed, another fleet', () => {
    const a = Fleet.plan(7, 200, 'chaos');
    const b = Fleet.plan(7, 200, 'chaos');
    assert.deepEqual(a, b);
    const c = Fleet.plan(8, 200, 'chaos');
    assert.notDeepEqual(
      a.map((d) => d.facts.hostname),
      c.map((d) => d.facts.hostname),
    );
  });

  it('mixes Windows and Linux, puts the demo file on every device and makes hostnames unique', () => {
    const plan = Fleet.plan('mix', 500, 'realistic');
    const platforms = new Set(plan.map((d) => d.os.family));
    assert.deepEqual([...platforms].sort(), ['linux', 'windows']);
    assert.equal(new Set(plan.map((d) => d.facts.hostname)).size, 500);
    for (const d of plan) {
      assert.ok(d.files.some((f) => f.sha1 === DEMO_SHA1));
      assert.ok(d.processes.some((p) => p.file?.sha1 === DEMO_SHA1), 'the demo file runs');
      assert.equal(d.os.legacy, false);
    }
    assert.ok(plan.some((d) => d.files.some((f) => f.signer === 'Microsoft')));
    assert.ok(plan.some((d) => d.files.some((f) => f.signer === 'TrustedPublisher')));
    assert.ok(plan.some((d) => d.files.some((f) => f.signer === 'PackageManager')));
  });

  it('the legacy profile includes devices too old for the action', () => {
    const plan = Fleet.plan(1, 200, 'legacy');
    const legacy = plan.filter((d) => d.os.legacy);
    assert.ok(legacy.length > 40 && legacy.length < 120, `${legacy.length} legacy devices`);
    assert.ok(legacy.some((d) => d.os.osBuild === 14393));
    assert.ok(legacy.some((d) => d.os.osPlatform === 'Linux' && d.os.agentVersion === '0.0.9'));
  });
});

describe('simulated devices through the MDE API', () => {
  let t: Api;
  let fleet: Fleet;
  before(async () => {
    t = await api({ actionExpirySec: 3 });
    fleet = new Fleet({ server: t.server.url, enrollToken: await t.server.enrollToken('sim'), seed: 'api', profile: 'instant' });
    await fleet.start(12);
  });
  after(async () => {
    await fleet.stop();
    await t.server.close();
  });
  const windows = () => fleet.devices().find((d) => d.spec.os.family === 'windows')!;
  const linux = () => fleet.devices().find((d) => d.spec.os.family === 'linux')!;

  it('enrolls and connects every device, Active with its facts', async () => {
    assert.equal(fleet.onlineCount(), 12);
    assert.equal(t.server.built.gateway.connectedCount(), 12);
    const res = await call(`${t.server.url}/api/machines?$top=100`, { token: t.token });
    assert.equal(res.status, 200);
    assert.equal(res.json.value.length, 12);
    for (const m of res.json.value) {
      assert.equal(m.healthStatus, 'Active');
      assert.equal(m.onboardingStatus, 'Onboarded');
      assert.ok(m.machineTags.includes('tourniquet-sim'));
    }
  });

  it('stops and quarantines the demo file: per-process, per-copy detail, vault report', async () => {
    const d = windows();
    const r = await t.post(d.machineId!, { Comment: 'demo', Sha1: DEMO_SHA1 });
    assert.equal(r.status, 201);
    const done = await t.until(r.json.id, final);
    assert.equal(done.status, 'Succeeded');
    assert.equal(done.errorHResult, 0);
    const stored = (await t.server.store.getAction(r.json.id))!;
    const detail = stored.deviceResult!.detail as any;
    assert.ok(detail.processes.length >= 1 && detail.processes.every((p: any) => p.killed));
    assert.ok(detail.files.length >= 1 && detail.files.every((f: any) => f.status === 'quarantined' && f.vaultItemId));
    await t.server.built.ctx.store.listVaultItems(d.machineId!).then((v) => assert.ok(v.length >= 1));
    // Again: nothing left to stop, already in the vault.
    const again = await t.post(d.machineId!, { Comment: 'again', Sha1: DEMO_SHA1 });
    assert.equal((await t.until(again.json.id, final)).status, 'Succeeded');
  });

  it('reports complete inventories: files/{sha1}/machines and an honest "not found in machine"', async () => {
    const res = await call(`${t.server.url}/api/files/${DEMO_SHA1}/machines`, { token: t.token });
    assert.equal(res.status, 200);
    assert.equal(res.json.value.length, 12);
    const r = await t.post(linux().machineId!, { Comment: 'x', Sha1: '0123456789abcdef0123456789abcdef01234567' });
    assert.equal(r.status, 404);
    assert.match(r.json.error.message, /was not found in machine/);
  });

  it('refuses a Microsoft-signed file exactly as MDE does', async () => {
    const d = windows();
    const signed = d.spec.files.find((f) => f.signer === 'Microsoft')!;
    const r = await t.post(d.machineId!, { Comment: 'no', Sha1: signed.sha1 });
    const done = await t.until(r.json.id, final);
    assert.equal(done.status, 'Failed');
    assert.equal(done.errorHResult, HRESULT.protectedFile);
    const rec = (await t.server.store.getAction(r.json.id))!.deviceResult!;
    assert.match(rec.reason ?? '', /signed by Microsoft/);
    assert.ok((rec.detail as any).files.every((f: any) => f.status === 'protected'));
  });

  it('refuses a package-manager-owned file on Linux', async () => {
    const d = linux();
    const owned = d.spec.files.find((f) => f.signer === 'PackageManager')!;
    const r = await t.post(d.machineId!, { Comment: 'no', Sha1: owned.sha1 });
    const done = await t.until(r.json.id, final);
    assert.equal(done.status, 'Failed');
    assert.equal(done.errorHResult, HRESULT.protectedFile);
    assert.match((await t.server.store.getAction(r.json.id))!.deviceResult!.reason ?? '', /package manager/);
  });

  it('follows scripted outcomes in the Comment', async () => {
    const devs = fleet.devices();
    const run = async (i: number, comment: string, action = 'RunAntiVirusScan', body: Record<string, unknown> = {}) => {
      const r = await t.post(devs[i]!.machineId!, { Comment: comment, ...body }, action);
      assert.equal(r.status, 201, JSON.stringify(r.json));
      return r.json.id as string;
    };
    const fail = await run(1, 'x [sim:fail]');
    const denied = await run(2, 'x [sim:fail=0x80070005]');
    const prot = await run(3, '[sim:protected]', 'StopAndQuarantineFile', { Sha1: DEMO_SHA1 });
    const delayed = await run(4, '[sim:delay=600]');
    const noack = await run(5, '[sim:noack] [sim:delay=300]');
    const offline = await run(6, '[sim:offline=300]', 'StopAndQuarantineFile', { Sha1: DEMO_SHA1 });
    const never = await run(7, '[sim:never]');
    assert.equal((await t.until(fail, final)).errorHResult, HRESULT.fail);
    const d = await t.until(denied, final);
    assert.equal(d.status, 'Failed');
    assert.equal(d.errorHResult, HRESULT.accessDenied);
    assert.equal((await t.until(prot, final)).errorHResult, HRESULT.protectedFile);
    await t.until(delayed, (a) => a.status === 'InProgress');
    assert.equal((await t.until(delayed, final)).status, 'Succeeded');
    assert.equal((await t.until(noack, final)).status, 'Succeeded');
    assert.ok(!fleet.journal(devs[5]!.machineId!)!.some((e) => e.event === 'ack'));
    assert.equal((await t.until(offline, final)).status, 'Succeeded');
    const offJournal = fleet.journal(devs[6]!.machineId!)!.map((e) => e.event);
    assert.ok(offJournal.indexOf('offline') < offJournal.lastIndexOf('result'));
    await t.until(never, (a) => a.status === 'InProgress');
    const timedOut = await t.until(never, final, 8000);
    assert.equal(timedOut.status, 'TimeOut');
  });

  it('injected faults: fail-next, latency and offline', async () => {
    const d = fleet.devices()[8]!;
    fleet.injectFault({ device: d.machineId! }, { kind: 'fail-next', errorHResult: HRESULT.accessDenied });
    const f = await t.post(d.machineId!, { Comment: 'x' }, 'RunAntiVirusScan');
    assert.equal((await t.until(f.json.id, final)).errorHResult, HRESULT.accessDenied);
    const ok = await t.post(d.machineId!, { Comment: 'x' }, 'RunAntiVirusScan');
    assert.equal((await t.until(ok.json.id, final)).status, 'Succeeded');

    fleet.injectFault({ device: d.hostname }, { kind: 'latency', latencyMs: 400 });
    const started = Date.now();
    const slow = await t.post(d.machineId!, { Comment: 'x' }, 'RunAntiVirusScan');
    assert.equal((await t.until(slow.json.id, final)).status, 'Succeeded');
    assert.ok(Date.now() - started >= 700, 'ack and execution both delayed');
    fleet.clearFaults();

    const affected = fleet.injectFault({ device: d.spec.index }, { kind: 'offline', durationMs: 400 });
    assert.deepEqual(affected, [d.machineId]);
    await t.server.built.ctx.store.getMachine(d.machineId!);
    const later = await t.post(d.machineId!, { Comment: 'x' }, 'RunAntiVirusScan');
    assert.equal((await t.get(later.json.id)).status, 'Pending');
    assert.equal((await t.until(later.json.id, final)).status, 'Succeeded');
  });

  it('reset brings quarantined files back', async () => {
    const d = fleet.devices()[9]!;
    const first = await t.post(d.machineId!, { Comment: 'x', Sha1: DEMO_SHA1 });
    await t.until(first.json.id, final);
    fleet.reset();
    assert.equal(fleet.journal(d.machineId!)!.length, 0);
    const second = await t.post(d.machineId!, { Comment: 'x', Sha1: DEMO_SHA1 });
    await t.until(second.json.id, final);
    const detail = (await t.server.store.getAction(second.json.id))!.deviceResult!.detail as any;
    assert.ok(detail.files.length >= 1, 'the file was there again');
  });
});

describe('legacy devices', () => {
  it('are refused by the server with OsPlatformNotSupported or ClientVersionNotSupported', async () => {
    const t = await api();
    const fleet = new Fleet({ server: t.server.url, enrollToken: await t.server.enrollToken(), seed: 3, profile: 'legacy' });
    try {
      await fleet.start(30);
      const legacy = fleet.devices().filter((d) => d.spec.os.legacy);
      assert.ok(legacy.length >= 5);
      const seen = new Set<string>();
      for (const d of legacy) {
        const r = await t.post(d.machineId!, { Comment: 'x', Sha1: DEMO_SHA1 });
        assert.equal(r.status, 400, `${d.spec.os.key}: ${JSON.stringify(r.json)}`);
        const expected = ['Windows7', 'WindowsServer2008R2'].includes(d.spec.os.osPlatform)
          ? 'OsPlatformNotSupported'
          : 'ClientVersionNotSupported';
        assert.equal(r.json.error.code, expected, d.spec.os.key);
        seen.add(expected);
      }
      assert.equal(seen.size, 2);
      const modern = fleet.devices().find((d) => !d.spec.os.legacy)!;
      assert.equal((await t.post(modern.machineId!, { Comment: 'x', Sha1: DEMO_SHA1 })).status, 201);
    } finally {
      await fleet.stop();
      await t.server.close();
    }
  });
});

describe('reproducibility', () => {
  /** What devices did with a fixed sequence of actions: outcome, code and the drawn ack latency (execution is
   *  scripted to 0 ms to keep the test short; its draw happens all the same). */
  async function playback(): Promise<string[]> {
    const t = await api();
    const fleet = new Fleet({ server: t.server.url, enrollToken: await t.server.enrollToken(), seed: 'same', profile: 'chaos' });
    try {
      await fleet.start(1);
      const out: string[] = [];
      for (const d of fleet.devices()) {
        for (let i = 0; i < 6; i++) {
          const r = await t.post(d.machineId!, { Comment: `run ${i} [sim:delay=0]` }, 'RunAntiVirusScan');
          const done = await t.until(r.json.id, final, 30_000);
          const rec = (await t.server.store.getAction(r.json.id))!.deviceResult!;
          out.push(`${d.hostname} ${done.status} ${done.errorHResult} ${(rec.detail as any).durationMs}`);
        }
      }
      return out;
    } finally {
      await fleet.stop();
      await t.server.close();
    }
  }

  it('the same seed plays out the same: latencies and outcomes', async () => {
    const first = await playback();
    const second = await playback();
    assert.deepEqual(second, first);
    assert.ok(first.some((l) => l.includes('Failed')), 'chaos failures are part of what is reproduced');
  });
});
