// Delivery guarantees with the real DeviceClient: pending pushed on connect (oldest first), new actions at once,
// reconnect and resume, results kept in the outbox while offline, expired and cancelled actions never run,
// cancel racing a result, and at-least-once re-delivery executed once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { millisToTimestamp } from '../../src/core/time.ts';
import { DeviceClient, type ActionHandler, type ActionOutcome } from '../../src/protocol/deviceClient.ts';
import { generateDeviceKey } from '../../src/protocol/signing.ts';
import type { ActionOrder } from '../../src/protocol/v1.ts';
import { startHarness, type Harness } from './gatewayHarness.ts';
import { linuxFacts } from './rawDevice.ts';

const OK: ActionOutcome = { outcome: 'Succeeded', errorHResult: 0, reason: null, detail: { processes: [], files: [], durationMs: 1 } };

describe('delivery', () => {
  let h: Harness;
  let token: string;
  const clients: DeviceClient[] = [];

  before(async () => {
    h = await startHarness();
    token = (await h.enrollToken()).token;
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await h.close();
  });

  async function device(name: string, onAction: ActionHandler, start = true): Promise<DeviceClient> {
    const c = new DeviceClient({
      server: h.url,
      key: generateDeviceKey(),
      agentVersion: '0.1.0',
      onAction,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    clients.push(c);
    await c.enroll(token, linuxFacts(name));
    if (start) await online(c);
    return c;
  }
  const online = (c: DeviceClient) =>
    new Promise<void>((resolve) => {
      c.once('online', () => resolve());
      c.start();
    });
  const status = async (id: string) => (await h.store.getAction(id))!.status;
  const until = (id: string, s: string, timeoutMs = 5000) => h.waitFor(async () => (await status(id)) === s, timeoutMs);

  it('pushes pending actions on connect, oldest first, and runs each', async () => {
    const seen: string[] = [];
    const c = await device('pending', async (o) => {
      seen.push(o.id);
      return OK;
    }, false);
    const a1 = await h.createAction(c.machineId!);
    const a2 = await h.createAction(c.machineId!);
    const a3 = await h.createAction(c.machineId!);
    await online(c);
    for (const a of [a1, a2, a3]) await until(a.id, 'Succeeded');
    assert.deepEqual(seen, [a1.id, a2.id, a3.id]);
  });

  it('delivers a new action the moment it is published and moves it through InProgress', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const c = await device('instant', async () => {
      await gate;
      return OK;
    });
    const a = await h.createAction(c.machineId!);
    await until(a.id, 'InProgress');
    release();
    await until(a.id, 'Succeeded');
  });

  it('reconnects and resumes: an action created while offline arrives after reconnect', async () => {
    const seen: string[] = [];
    const c = await device('resume', async (o) => {
      seen.push(o.id);
      return OK;
    });
    c.goOffline(300);
    await h.waitFor(() => !c.online);
    const a = await h.createAction(c.machineId!);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await status(a.id), 'Pending');
    await until(a.id, 'Succeeded');
    assert.deepEqual(seen, [a.id]);
  });

  it('keeps a result produced while disconnected and sends it after reconnect', async () => {
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const c = await device('outbox', async () => {
      await gate;
      return OK;
    });
    const a = await h.createAction(c.machineId!);
    await until(a.id, 'InProgress');
    c.goOffline(400);
    await h.waitFor(() => !c.online);
    finish();
    await h.waitFor(() => c.pendingReports > 0);
    assert.equal(await status(a.id), 'InProgress');
    await until(a.id, 'Succeeded');
    // The server applies the result before it sends `accepted`: the outbox empties right after.
    await h.waitFor(() => c.pendingReports === 0);
  });

  it('never delivers an expired action: it becomes TimeOut', async () => {
    const seen: string[] = [];
    const c = await device('expired', async (o) => {
      seen.push(o.id);
      return OK;
    }, false);
    const a = await h.createAction(c.machineId!, { expiresAt: millisToTimestamp(Date.now() + 150) });
    await new Promise((r) => setTimeout(r, 300));
    await online(c);
    await until(a.id, 'TimeOut');
    assert.equal((await h.store.getAction(a.id))!.errorHResult, -2147023436);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seen, []);
  });

  it('never delivers a cancelled action', async () => {
    const seen: string[] = [];
    const c = await device('cancelled-offline', async (o) => {
      seen.push(o.id);
      return OK;
    }, false);
    const a = await h.createAction(c.machineId!);
    await h.cancel(a.id);
    await online(c);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(seen, []);
    assert.equal(await status(a.id), 'Cancelled');
  });

  it('pushes a cancel to a connected device; a result racing it is recorded but the status stays Cancelled', async () => {
    let started!: (o: ActionOrder) => void;
    const running = new Promise<ActionOrder>((r) => (started = r));
    let proceed!: () => void;
    const gate = new Promise<void>((r) => (proceed = r));
    const cancels: string[] = [];
    let aborted = false;
    const c = await device('race', async (o, ctx) => {
      ctx.signal.addEventListener('abort', () => (aborted = true));
      started(o);
      await gate; // finishes anyway: the work was already done when the cancel arrived
      return OK;
    });
    c.on('cancel', (id) => cancels.push(id));
    const a = await h.createAction(c.machineId!);
    await running;
    await until(a.id, 'InProgress');
    await h.cancel(a.id);
    await h.waitFor(() => cancels.includes(a.id));
    assert.equal(aborted, true);
    proceed();
    await h.waitFor(async () => (await h.store.getAction(a.id))!.deviceResult !== null);
    const final = (await h.store.getAction(a.id))!;
    assert.equal(final.status, 'Cancelled');
    assert.equal(final.deviceResult?.outcome, 'Succeeded');
    assert.equal(final.deviceResult?.applied, false);
  });

  it('runs a re-delivered action once (at-least-once, idempotent by id)', async () => {
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const c = await device('dedupe', async () => {
      runs++;
      await gate;
      return OK;
    });
    const a = await h.createAction(c.machineId!);
    await until(a.id, 'InProgress');
    // Reconnecting makes the gateway push the InProgress action again.
    c.goOffline(100);
    await h.waitFor(() => !c.online);
    await h.waitFor(() => c.online);
    await h.store.publish({ channel: 'action', machineId: c.machineId!, actionId: a.id }); // and once more
    await new Promise((r) => setTimeout(r, 100));
    release();
    await until(a.id, 'Succeeded');
    assert.equal(runs, 1);
  });

  it('re-announcing a final action makes nothing happen on either side', async () => {
    const c = await device('dup-result', async () => OK);
    const a = await h.createAction(c.machineId!);
    await until(a.id, 'Succeeded');
    const first = (await h.store.getAction(a.id))!;
    await h.store.publish({ channel: 'action', machineId: c.machineId!, actionId: a.id });
    await new Promise((r) => setTimeout(r, 100));
    const again = (await h.store.getAction(a.id))!;
    assert.equal(again.deviceResult?.reportedAt, first.deviceResult?.reportedAt);
    assert.equal(again.lastUpdateDateTimeUtc, first.lastUpdateDateTimeUtc);
  });

  it('a handler that throws reports Failed with E_FAIL instead of going silent', async () => {
    const c = await device('crash', async () => {
      throw new Error('kaboom');
    });
    const a = await h.createAction(c.machineId!);
    await until(a.id, 'Failed');
    const done = (await h.store.getAction(a.id))!;
    assert.equal(done.errorHResult, -2147467259);
    assert.match(done.deviceResult?.reason ?? '', /kaboom/);
  });

  it('stops for good when another instance with the same key takes over', async () => {
    const key = generateDeviceKey();
    const mk = () => {
      const c = new DeviceClient({ server: h.url, key, agentVersion: '0.1.0', onAction: async () => OK, reconnect: { initialDelayMs: 50, maxDelayMs: 100 } });
      clients.push(c);
      return c;
    };
    const one = mk();
    await one.enroll(token, linuxFacts('same-key'));
    await online(one);
    const replaced = new Promise<void>((r) => one.once('replaced', () => r()));
    const two = mk();
    await two.enroll(token, linuxFacts('same-key'));
    await online(two);
    await replaced;
    await h.waitFor(() => one.phase === 'closed');
    // and stays closed: no reconnect attempt within several of its reconnect delays
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(one.phase, 'closed');
    assert.equal(two.online, true);
  });
});
