// The agent's identity in its state directory: the server it enrolled with, its machine id and its Ed25519 key
// (0600). The key never leaves the device; the server only ever sees signatures.
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { exportPrivateKeyPem, importPrivateKeyPem, type DeviceKeyPair } from '../protocol/signing.ts';
import type { DeviceClientState } from '../protocol/deviceClient.ts';
import { ensurePrivateDir } from './privateDir.ts';
import { writeFileDurable } from './vault/durable.ts';

export interface AgentIdentity {
  server: string;
  machineId: string;
  enrolledAt: string;
}

const files = (stateDir: string) => ({
  identity: posix.join(stateDir, 'identity.json'),
  key: posix.join(stateDir, 'device.key'),
  clientState: posix.join(stateDir, 'client-state.json'),
});

export function saveIdentity(stateDir: string, id: AgentIdentity, key: DeviceKeyPair): void {
  ensurePrivateDir(stateDir);
  const f = files(stateDir);
  writeFileDurable(f.key, exportPrivateKeyPem(key.privateKey));
  writeFileDurable(f.identity, `${JSON.stringify(id, null, 2)}\n`);
}

export function loadIdentity(stateDir: string): { identity: AgentIdentity; key: DeviceKeyPair } {
  const f = files(stateDir);
  if (!existsSync(f.identity) || !existsSync(f.key)) {
    throw new Error(`not enrolled: no identity in ${stateDir} (run: tourniquet agent enroll --server URL --token TOKEN)`);
  }
  const identity = JSON.parse(readFileSync(f.identity, 'utf8')) as AgentIdentity;
  return { identity, key: importPrivateKeyPem(readFileSync(f.key, 'utf8')) };
}

/** Results not yet acknowledged by the server survive a restart of the agent. */
export function loadClientState(stateDir: string): DeviceClientState | undefined {
  try {
    return JSON.parse(readFileSync(files(stateDir).clientState, 'utf8')) as DeviceClientState;
  } catch {
    return undefined;
  }
}

export function saveClientState(stateDir: string, state: DeviceClientState): void {
  writeFileDurable(files(stateDir).clientState, JSON.stringify(state));
}
