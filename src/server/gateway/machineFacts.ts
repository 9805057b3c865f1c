// What a device says about itself (protocol DeviceFacts) → the Machine fields MDE clients read.
import type { HealthStatus, IpAddressInfo, Machine } from '../../core/machines.ts';
import type { DeviceFacts } from '../../protocol/v1.ts';

const WINDOWS = /^Windows/;

/** The address MDE shows as lastIpAddress: the first interface that is up and not loopback, IPv4 preferred. */
export function primaryIp(ips: IpAddressInfo[]): string | null {
  const usable = ips.filter((i) => i.operationalStatus.toLowerCase() === 'up' && !isLoopback(i));
  const v4 = usable.find((i) => i.ipAddress.includes('.'));
  return (v4 ?? usable[0] ?? ips.find((i) => !isLoopback(i)) ?? null)?.ipAddress ?? null;
}

/** Addresses worth remembering for findbyip: loopback says nothing about where a machine is. */
export function sightedIps(ips: IpAddressInfo[]): string[] {
  return [...new Set(ips.filter((i) => !isLoopback(i)).map((i) => i.ipAddress))];
}

function isLoopback(i: IpAddressInfo): boolean {
  return i.type === 'SoftwareLoopback' || i.ipAddress.startsWith('127.') || i.ipAddress === '::1';
}

function dnsName(f: DeviceFacts): string {
  const host = f.hostname.toLowerCase();
  return host.includes('.') || !f.domain ? host : `${host}.${f.domain.toLowerCase()}`;
}

function processor(arch: string | null): string | null {
  if (arch === '64-bit') return 'x64';
  if (arch === '32-bit') return 'x86';
  return null;
}

/** The fields that follow the device's facts; everything else about a machine is the server's. */
export function factsPatch(f: DeviceFacts, remoteIp: string | null): Partial<Machine> {
  return {
    computerDnsName: dnsName(f),
    osPlatform: f.osPlatform,
    osVersion: f.osVersion,
    osProcessor: processor(f.osArchitecture),
    version: f.version,
    lastIpAddress: primaryIp(f.ipAddresses),
    lastExternalIpAddress: f.externalIp ?? remoteIp,
    agentVersion: f.agentVersion,
    osBuild: f.osBuild,
    isAadJoined: f.aadDeviceId !== null,
    aadDeviceId: f.aadDeviceId ? f.aadDeviceId.toLowerCase() : null,
    machineTags: [...new Set(f.tags)],
    // Only Windows devices have a Defender AV to report on; Tourniquet's own agent is not Defender.
    defenderAvStatus: WINDOWS.test(f.osPlatform) ? (f.protectionRunning ? 'Updated' : 'Disabled') : null,
    osArchitecture: f.osArchitecture,
    ipAddresses: f.ipAddresses.map((i) => ({ ...i })),
    protectionRunning: f.protectionRunning,
    capabilities: [...f.capabilities],
    domain: f.domain,
    simulated: f.simulated === true,
  };
}

export interface EnrollmentInput {
  machineId: string;
  publicKey: string;
  facts: DeviceFacts;
  group: string | null;
  now: string;
  remoteIp: string | null;
  existing: Machine | null;
  connected: boolean;
}

/** The machine after an enrollment: a new one, or the existing one with its facts refreshed. */
export function enrolledMachine(e: EnrollmentInput): Machine {
  const health: HealthStatus = e.connected ? 'Active' : 'Inactive';
  const base: Machine = e.existing ?? {
    id: e.machineId,
    mergedIntoMachineId: null,
    isPotentialDuplication: false,
    isExcluded: false,
    exclusionReason: null,
    computerDnsName: '',
    firstSeen: e.now,
    lastSeen: e.now,
    osPlatform: '',
    osVersion: null,
    osProcessor: null,
    version: null,
    lastIpAddress: null,
    lastExternalIpAddress: null,
    agentVersion: null,
    osBuild: null,
    healthStatus: health,
    deviceValue: 'Normal',
    rbacGroupId: 0,
    rbacGroupName: null,
    riskScore: 'None',
    exposureLevel: 'None',
    isAadJoined: false,
    aadDeviceId: null,
    machineTags: [],
    defenderAvStatus: null,
    onboardingStatus: 'Onboarded',
    osArchitecture: null,
    managedBy: 'Unknown',
    managedByStatus: 'Unknown',
    ipAddresses: [],
    vmMetadata: null,
    devicePublicKey: e.publicKey,
    protectionRunning: false,
    capabilities: [],
    enrollGroup: null,
    domain: null,
    offboarded: false,
    simulated: false,
  };
  return {
    ...base,
    ...factsPatch(e.facts, e.remoteIp),
    lastSeen: e.now,
    healthStatus: health,
    onboardingStatus: 'Onboarded',
    devicePublicKey: e.publicKey,
    enrollGroup: e.group,
  };
}
