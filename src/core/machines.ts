// The machine (device) resource: the 32 properties MDE serves, plus the internal facts Tourniquet keeps.

export const HEALTH_STATUSES = [
  'Active',
  'Inactive',
  'ImpairedCommunication',
  'NoSensorData',
  'NoSensorDataImpairedCommunication',
  'Unknown',
] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

export interface IpAddressInfo {
  ipAddress: string;
  macAddress: string | null;
  type: string; // Ethernet, SoftwareLoopback, ...
  operationalStatus: string; // Up, Down
}

export interface VmMetadata {
  vmId: string | null;
  cloudProvider: string | null;
  resourceId: string | null;
  subscriptionId: string | null;
}

/** A machine as the store holds it; wire fields carry the MDE names. Timestamps use the stored form (time.ts). */
export interface Machine {
  id: string; // 40 lower-case hex
  mergedIntoMachineId: string | null;
  isPotentialDuplication: boolean;
  isExcluded: boolean;
  exclusionReason: string | null;
  computerDnsName: string;
  firstSeen: string;
  lastSeen: string;
  osPlatform: string; // Windows10, Windows11, WindowsServer2019, Linux, ...
  osVersion: string | null;
  osProcessor: string | null;
  version: string | null; // 1709, 21H2, or the Linux kernel/distribution version
  lastIpAddress: string | null;
  lastExternalIpAddress: string | null;
  agentVersion: string | null;
  osBuild: number | null;
  healthStatus: HealthStatus;
  deviceValue: 'Normal' | 'Low' | 'High' | null;
  rbacGroupId: number;
  rbacGroupName: string | null;
  riskScore: 'None' | 'Informational' | 'Low' | 'Medium' | 'High' | null;
  exposureLevel: 'None' | 'Low' | 'Medium' | 'High' | null;
  isAadJoined: boolean;
  aadDeviceId: string | null;
  machineTags: string[];
  defenderAvStatus: string | null;
  onboardingStatus: string;
  osArchitecture: string | null;
  managedBy: string | null;
  managedByStatus: string | null;
  ipAddresses: IpAddressInfo[];
  vmMetadata: VmMetadata | null;
  // Internal, never serialized on /api:
  /** Ed25519 public key (SPKI DER, base64) the device proves itself with. */
  devicePublicKey: string | null;
  /** Whether the device says its protection (agent) is running; false → actions are refused with 400. */
  protectionRunning: boolean;
  /** Actions the device says it can perform, e.g. ["StopAndQuarantineFile", "Isolate"]. */
  capabilities: string[];
  /** The enroll-token group it came in with (input to device-group rules). */
  enrollGroup: string | null;
  domain: string | null;
  offboarded: boolean;
  /** Set when the device is simulated (never trusted for anything else). */
  simulated: boolean;
}

/** MDE machine ids: 40 hex characters. */
export const MACHINE_ID_RE = /^[0-9a-f]{40}$/i;
