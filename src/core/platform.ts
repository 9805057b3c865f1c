// Device prerequisites per action: which OS platforms, versions and agent versions can perform it.
// Mirrors MDE's table (Windows 10 1703+, Windows 11, Windows Server 2012 R2+) and adds Linux with our agent.
import type { ActionType } from './actions.ts';
import { MdeError } from './errors.ts';
import type { Machine } from './machines.ts';

const WINDOWS_CLIENT = new Set(['Windows10', 'Windows11']);
const WINDOWS_SERVER = /^WindowsServer(2012R2|2016|2019|2022|2025)$/;

/** Windows 10 builds by release: 1703 = 15063, 1709 = 16299. */
const MIN_WIN10_BUILD: Partial<Record<ActionType, number>> = {
  StopAndQuarantineFile: 15063,
  Isolate: 15063,
  RunAntiVirusScan: 16299,
};

/** The oldest Tourniquet agent that can perform each action on Linux. */
export const MIN_LINUX_AGENT_VERSION: Partial<Record<ActionType, string>> = {
  StopAndQuarantineFile: '0.1.0',
  Isolate: '0.1.0',
  Unisolate: '0.1.0',
  RunAntiVirusScan: '0.1.0',
  RestoreQuarantinedFile: '0.1.0',
};

// Parsed versions, by text: a fleet reports a handful of agent versions, and every action checks one.
const parsedVersions = new Map<string, readonly number[]>();

function versionParts(v: string): readonly number[] {
  let parts = parsedVersions.get(v);
  if (!parts) {
    parts = v.split(/[.\-+]/).map((x) => Number.parseInt(x, 10) || 0);
    if (parsedVersions.size >= 1000) parsedVersions.clear();
    parsedVersions.set(v, parts);
  }
  return parts;
}

export function compareVersions(a: string, b: string): number {
  const pa = versionParts(a);
  const pb = versionParts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

type MachineFacts = Pick<
  Machine,
  'osPlatform' | 'osBuild' | 'agentVersion' | 'capabilities' | 'protectionRunning' | 'offboarded' | 'id'
>;

/** Throws the MDE error a device that cannot perform `type` gets; returns normally when it can. */
export function assertDeviceCanPerform(m: MachineFacts, type: ActionType): void {
  if (m.offboarded) {
    throw new MdeError(400, 'DisallowedOperation', `Machine ${m.id} is offboarded and cannot receive actions`);
  }
  if (!m.protectionRunning) {
    throw new MdeError(
      400,
      'DisallowedOperation',
      `Machine ${m.id} protection is not running; ${type} requires an active sensor`,
    );
  }
  const p = m.osPlatform;
  if (p === 'Linux') {
    const min = MIN_LINUX_AGENT_VERSION[type];
    if (!min) throw new MdeError(400, 'OsPlatformNotSupported', `OS Platform ${p} isn't supported for this action`);
    if (!m.agentVersion || compareVersions(m.agentVersion, min) < 0) {
      throw new MdeError(400, 'ClientVersionNotSupported', `${type} is supported on client version ${min} and above`);
    }
  } else if (p === 'Windows10') {
    const min = MIN_WIN10_BUILD[type] ?? 15063;
    if (m.osBuild !== null && m.osBuild < min) {
      throw new MdeError(
        400,
        'ClientVersionNotSupported',
        `${type} is supported on client version ${min === 15063 ? '1703' : '1709'} and above`,
      );
    }
  } else if (!WINDOWS_CLIENT.has(p) && !WINDOWS_SERVER.test(p)) {
    throw new MdeError(400, 'OsPlatformNotSupported', `OS Platform ${p} isn't supported for this action`);
  }
  // A device that declares its capabilities must list the action (empty list = not declared).
  if (m.capabilities.length > 0 && !m.capabilities.includes(type)) {
    throw new MdeError(400, 'OsPlatformNotSupported', `OS Platform ${p} isn't supported for this action`);
  }
}
