// What this Linux device says about itself: hostname, distribution, kernel, architecture and addresses.
import { readFileSync } from 'node:fs';
import { arch, hostname, networkInterfaces, release } from 'node:os';
import type { DeviceFacts } from '../protocol/v1.ts';

export const AGENT_VERSION = '0.1.0';
export const AGENT_CAPABILITIES = ['StopAndQuarantineFile', 'RestoreQuarantinedFile'];

/** /etc/os-release as key → value (quotes removed); empty when the file is missing. */
function osRelease(): Record<string, string> {
  try {
    const out: Record<string, string> = {};
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
    }
    return out;
  } catch {
    return {};
  }
}

function addresses(): DeviceFacts['ipAddresses'] {
  const out: DeviceFacts['ipAddresses'] = [];
  for (const [name, list] of Object.entries(networkInterfaces())) {
    for (const a of list ?? []) {
      out.push({
        ipAddress: a.address.split('%')[0]!,
        macAddress: a.mac && a.mac !== '00:00:00:00:00:00' ? a.mac.replace(/:/g, '').toUpperCase() : null,
        type: a.internal ? 'SoftwareLoopback' : name.startsWith('wl') ? 'Wireless80211' : 'Ethernet',
        operationalStatus: 'Up',
      });
    }
  }
  return out.slice(0, 64);
}

export function linuxFacts(opts: { tags?: string[]; aadDeviceId?: string | null } = {}): DeviceFacts {
  const os = osRelease();
  return {
    hostname: hostname(),
    osPlatform: 'Linux',
    osVersion: os.PRETTY_NAME ?? null,
    version: os.VERSION_ID ?? release(),
    osBuild: null,
    osArchitecture: arch() === 'x64' || arch() === 'arm64' ? '64-bit' : '32-bit',
    agentVersion: AGENT_VERSION,
    protectionRunning: true,
    aadDeviceId: opts.aadDeviceId ?? null,
    domain: null,
    tags: opts.tags ?? [],
    ipAddresses: addresses(),
    externalIp: null,
    capabilities: AGENT_CAPABILITIES,
  };
}
