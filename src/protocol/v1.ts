// Agent ↔ server protocol, version 1. Shared verbatim by the server gateway, the real agent and the simulator.
// Transport: JSON text frames over WebSocket at CONNECT_PATH; enrollment is one HTTP POST at ENROLL_PATH.
// Full description: docs/agent-protocol.md.

export const PROTOCOL_VERSION = 1;
export const ENROLL_PATH = '/agent/v1/enroll';
export const CONNECT_PATH = '/agent/v1/connect';
/** Largest frame the gateway accepts; bigger ones are refused and logged. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** What a device says about itself at enrollment and whenever it changes. */
export interface DeviceFacts {
  hostname: string;
  osPlatform: string; // 'Linux', 'Windows10', 'Windows11', 'WindowsServer2019', ...
  osVersion: string | null;
  version: string | null; // release (21H2) or distribution version
  osBuild: number | null;
  osArchitecture: string | null; // '64-bit'
  agentVersion: string;
  protectionRunning: boolean;
  aadDeviceId: string | null;
  domain: string | null;
  tags: string[];
  ipAddresses: { ipAddress: string; macAddress: string | null; type: string; operationalStatus: string }[];
  externalIp: string | null;
  /** Action types the device can perform. */
  capabilities: string[];
  simulated?: boolean;
}

export interface EnrollRequest {
  enrollToken: string;
  publicKey: string; // Ed25519 SPKI DER, base64
  facts: DeviceFacts;
}

export interface EnrollResponse {
  machineId: string; // 40 hex
  serverTime: string;
  protocolVersion: number;
}

/** The action as a device receives it. */
export interface ActionOrder {
  id: string;
  type: string;
  comment: string;
  sha1: string | null;
  scope: string | null;
  requestor: string;
  createdAt: string;
  expiresAt: string;
  /** Extra parameters for extension actions (e.g. RestoreQuarantinedFile: { itemId }). */
  params: Record<string, unknown>;
}

/** One process the device found running the file. */
export interface ProcessItem {
  pid: number;
  exe: string | null;
  cmdline: string | null;
  /** How it matched: the executable itself, a script argument, an open descriptor, a mapping. */
  matchedBy: 'exe' | 'script' | 'fd' | 'map' | 'descendant';
  parentPid: number | null;
  killed: boolean;
  /** Present when the process was started again during the action (a supervisor). */
  respawned?: boolean;
  error?: string;
}

/** One copy of the file the device found. */
export interface FileItem {
  path: string;
  device: number | null;
  inode: number | null;
  size: number;
  sha1: string;
  status: 'quarantined' | 'protected' | 'failed' | 'restored';
  reason?: string;
  vaultItemId?: string;
}

export interface ActionResultDetail {
  processes: ProcessItem[];
  files: FileItem[];
  durationMs: number;
}

export type ServerMessage =
  | { t: 'challenge'; nonce: string; serverTime: string; protocolVersion: number }
  | { t: 'welcome'; machineId: string; heartbeatSec: number }
  | { t: 'action'; action: ActionOrder }
  | { t: 'cancel'; actionId: string }
  | { t: 'accepted'; seq: number }
  | { t: 'error'; code: string; message: string; seq?: number };

export type DeviceMessage =
  | { t: 'hello'; machineId: string; signature: string; agentVersion: string }
  | { t: 'ack'; seq: number; actionId: string }
  | { t: 'progress'; seq: number; actionId: string; message: string }
  | {
      t: 'result';
      seq: number;
      actionId: string;
      outcome: 'Succeeded' | 'Failed';
      errorHResult: number;
      reason: string | null;
      detail: ActionResultDetail;
      /** Ed25519 signature (base64) over resultSigningInput(...): a receipt of execution, not of delivery. */
      signature: string;
    }
  | { t: 'facts'; seq: number; facts: DeviceFacts }
  | {
      t: 'observations';
      seq: number;
      complete: boolean;
      files: { sha1: string; sha256: string | null; path: string; size: number; signer: string | null; trusted: boolean }[];
    }
  | {
      t: 'vault';
      seq: number;
      items: {
        itemId: string;
        actionId: string | null;
        sha1: string;
        sha256: string | null;
        originalPath: string;
        size: number;
        quarantinedAt: string;
        state: 'quarantined' | 'restored' | 'purged';
      }[];
    };

/** Bytes the device signs in `hello`: binds the key to this server's fresh nonce and to the machine id. */
export function helloSigningInput(nonce: string, machineId: string): Buffer {
  return Buffer.from(`tourniquet-agent-v1\nhello\n${nonce}\n${machineId}`, 'utf8');
}

/** Bytes the device signs in `result`: action, outcome and a digest of the detail. */
export function resultSigningInput(
  machineId: string,
  actionId: string,
  outcome: string,
  errorHResult: number,
  detailJson: string,
): Buffer {
  return Buffer.from(
    `tourniquet-agent-v1\nresult\n${machineId}\n${actionId}\n${outcome}\n${errorHResult}\n${detailJson}`,
    'utf8',
  );
}
