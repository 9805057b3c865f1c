// A hand-driven device for adversarial tests: enrolls over HTTP, then speaks raw frames over a real WebSocket so a
// test can send exactly what a forger, a replayer or a broken agent would.
import WebSocket from 'ws';
import type { DeviceFacts, ServerMessage } from '../../src/protocol/v1.ts';
import { generateDeviceKey, signHello, signResult, type DeviceKeyPair } from '../../src/protocol/signing.ts';
import type { ActionResultDetail } from '../../src/protocol/v1.ts';

export function linuxFacts(hostname: string, patch: Partial<DeviceFacts> = {}): DeviceFacts {
  return {
    hostname,
    osPlatform: 'Linux',
    osVersion: 'Ubuntu 22.04.5 LTS',
    version: '22.04',
    osBuild: null,
    osArchitecture: '64-bit',
    agentVersion: '0.1.0',
    protectionRunning: true,
    aadDeviceId: null,
    domain: null,
    tags: ['test'],
    ipAddresses: [
      { ipAddress: '10.9.8.7', macAddress: '0A0B0C0D0E0F', type: 'Ethernet', operationalStatus: 'Up' },
      { ipAddress: '127.0.0.1', macAddress: null, type: 'SoftwareLoopback', operationalStatus: 'Up' },
    ],
    externalIp: null,
    capabilities: ['StopAndQuarantineFile', 'Isolate', 'Unisolate', 'RunAntiVirusScan'],
    ...patch,
  };
}

export async function enroll(
  url: string,
  token: string,
  facts: DeviceFacts,
  key: DeviceKeyPair = generateDeviceKey(),
): Promise<{ status: number; body: any; key: DeviceKeyPair }> {
  const res = await fetch(`${url}/agent/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ enrollToken: token, publicKey: key.publicKey, facts }),
  });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, key };
}

export const EMPTY_DETAIL: ActionResultDetail = { processes: [], files: [], durationMs: 1 };

export class RawDevice {
  readonly ws: WebSocket;
  readonly received: ServerMessage[] = [];
  closed: { code: number; reason: string } | null = null;
  #waiters: (() => void)[] = [];
  seq = 0;

  constructor(url: string, opts: { autoPong?: boolean } = {}) {
    this.ws = new WebSocket(`${url.replace(/^http/, 'ws')}/agent/v1/connect`, {
      perMessageDeflate: false,
      autoPong: opts.autoPong ?? true,
    });
    this.ws.on('message', (d) => {
      this.received.push(JSON.parse(d.toString()) as ServerMessage);
      this.#wake();
    });
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.#wake();
    });
    this.ws.on('error', () => {});
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits until a received message matches (or the socket closes, when `orClose`). */
  async next<T extends ServerMessage['t']>(t: T, timeoutMs = 5000): Promise<Extract<ServerMessage, { t: T }>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((m) => m.t === t);
      if (i >= 0) return this.received.splice(i, 1)[0] as Extract<ServerMessage, { t: T }>;
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting for ${t}`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${t}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    const until = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > until) throw new Error('socket did not close');
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.closed;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Answers the challenge for `machineId` with `key` (which may be the wrong key, on purpose). */
  async hello(machineId: string, key: DeviceKeyPair): Promise<void> {
    const ch = await this.next('challenge');
    this.send({ t: 'hello', machineId, signature: signHello(key.privateKey, ch.nonce, machineId), agentVersion: '0.1.0' });
  }

  async login(machineId: string, key: DeviceKeyPair): Promise<void> {
    await this.hello(machineId, key);
    await this.next('welcome');
  }

  result(
    machineId: string,
    key: DeviceKeyPair,
    actionId: string,
    outcome: 'Succeeded' | 'Failed' = 'Succeeded',
    errorHResult = 0,
    detail: ActionResultDetail = EMPTY_DETAIL,
  ): Record<string, unknown> {
    return {
      t: 'result',
      seq: ++this.seq,
      actionId,
      outcome,
      errorHResult,
      reason: null,
      detail,
      signature: signResult(key.privateKey, machineId, { actionId, outcome, errorHResult, detail }),
    };
  }

  close(): void {
    this.ws.close();
  }
}
