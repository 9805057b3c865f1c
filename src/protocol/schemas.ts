// JSON-schema validators for every v1 frame and for enrollment. The gateway is strict with what devices send (no
// unknown properties, bounded sizes); devices are strict on types but ignore unknown properties in what the server
// sends, so a newer v1 server can add fields without breaking older agents.
import { isIP } from 'node:net';
import { Ajv, type ValidateFunction } from 'ajv';
import { LIMITS } from './codes.ts';
import type { DeviceFacts, DeviceMessage, EnrollRequest, EnrollResponse, ServerMessage } from './v1.ts';

const GUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const SHA1 = '^[0-9a-fA-F]{40}$';
const SHA256 = '^[0-9a-fA-F]{64}$';
const MACHINE_ID = '^[0-9a-f]{40}$';
const BASE64 = '^[A-Za-z0-9+/]*={0,2}$';
const TIMESTAMP = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?Z$';
/** Printable, no control characters: what ends up in logs and in the API. */
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';

const MAX_SEQ = Number.MAX_SAFE_INTEGER;
const INT32_MIN = -2147483648;
const UINT32_MAX = 4294967295; // HRESULTs written unsigned (0x80070005) are accepted and folded to int32

const str = (maxLength: number, extra: Record<string, unknown> = {}) => ({ type: 'string', maxLength, ...extra });
const text = (maxLength: number, minLength = 0) => ({ type: 'string', minLength, maxLength, pattern: PRINTABLE });
const nullable = (schema: Record<string, unknown>) => ({ anyOf: [{ type: 'null' }, schema] });
const seq = { type: 'integer', minimum: 1, maximum: MAX_SEQ };
const strictObject = (properties: Record<string, unknown>, optional: string[] = []) => ({
  type: 'object',
  additionalProperties: false,
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
  properties,
});
/** Server → device: unknown properties are tolerated (forward compatibility inside v1). */
const openObject = (properties: Record<string, unknown>, optional: string[] = []) => ({
  type: 'object',
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
  properties,
});
const tag = <T extends string>(t: T) => ({ const: t });

const ipAddressInfo = strictObject({
  ipAddress: str(45, { format: 'ip' }),
  macAddress: nullable(str(32, { pattern: '^[0-9A-Fa-f:.-]*$' })),
  type: text(32),
  operationalStatus: text(16),
});

export const deviceFactsSchema = strictObject(
  {
    hostname: str(LIMITS.hostname, { minLength: 1, pattern: '^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$' }),
    osPlatform: str(64, { minLength: 1, pattern: '^[A-Za-z0-9]+$' }),
    osVersion: nullable(text(128)),
    version: nullable(text(64)),
    osBuild: nullable({ type: 'integer', minimum: 0, maximum: 2147483647 }),
    osArchitecture: nullable(text(16)),
    agentVersion: str(64, { minLength: 1, pattern: '^[0-9A-Za-z.+_-]+$' }),
    protectionRunning: { type: 'boolean' },
    aadDeviceId: nullable(str(36, { pattern: GUID })),
    domain: nullable(str(LIMITS.hostname, { pattern: '^[A-Za-z0-9.-]*$' })),
    tags: { type: 'array', maxItems: LIMITS.tags, items: text(LIMITS.tag, 1) },
    ipAddresses: { type: 'array', maxItems: LIMITS.ipAddresses, items: ipAddressInfo },
    externalIp: nullable(str(45, { format: 'ip' })),
    capabilities: {
      type: 'array',
      maxItems: LIMITS.capabilities,
      uniqueItems: true,
      items: str(64, { pattern: '^[A-Za-z0-9]+$' }),
    },
    simulated: { type: 'boolean' },
  },
  ['simulated'],
);

const processItem = strictObject(
  {
    pid: { type: 'integer', minimum: 0, maximum: 2147483647 },
    exe: nullable(str(LIMITS.path)),
    cmdline: nullable(str(2 * LIMITS.path)),
    matchedBy: { enum: ['exe', 'script', 'fd', 'map', 'descendant'] },
    parentPid: nullable({ type: 'integer', minimum: 0, maximum: 2147483647 }),
    killed: { type: 'boolean' },
    respawned: { type: 'boolean' },
    error: str(LIMITS.reason),
  },
  ['respawned', 'error'],
);

const fileItem = strictObject(
  {
    path: str(LIMITS.path, { minLength: 1 }),
    device: nullable({ type: 'integer', minimum: 0 }),
    inode: nullable({ type: 'integer', minimum: 0 }),
    size: { type: 'integer', minimum: 0 },
    sha1: str(40, { pattern: SHA1 }),
    status: { enum: ['quarantined', 'protected', 'failed', 'restored'] },
    reason: str(LIMITS.reason),
    vaultItemId: str(128, { pattern: '^[A-Za-z0-9._-]+$' }),
  },
  ['reason', 'vaultItemId'],
);

export const resultDetailSchema = strictObject({
  processes: { type: 'array', maxItems: LIMITS.processesPerResult, items: processItem },
  files: { type: 'array', maxItems: LIMITS.filesPerResult, items: fileItem },
  durationMs: { type: 'number', minimum: 0, maximum: 1e10 },
});

const observedFile = strictObject({
  sha1: str(40, { pattern: SHA1 }),
  sha256: nullable(str(64, { pattern: SHA256 })),
  path: str(LIMITS.path, { minLength: 1 }),
  size: { type: 'integer', minimum: 0 },
  signer: nullable(text(256)),
  trusted: { type: 'boolean' },
});

const vaultItem = strictObject({
  itemId: str(128, { minLength: 1, pattern: '^[A-Za-z0-9._-]+$' }),
  actionId: nullable(str(36, { pattern: GUID })),
  sha1: str(40, { pattern: SHA1 }),
  sha256: nullable(str(64, { pattern: SHA256 })),
  originalPath: str(LIMITS.path, { minLength: 1 }),
  size: { type: 'integer', minimum: 0 },
  quarantinedAt: str(40, { pattern: TIMESTAMP }),
  state: { enum: ['quarantined', 'restored', 'purged'] },
});

const signature = str(128, { minLength: 1, pattern: BASE64 });

export const deviceMessageSchema = {
  type: 'object',
  required: ['t'],
  discriminator: { propertyName: 't' },
  oneOf: [
    strictObject({
      t: tag('hello'),
      machineId: str(40, { pattern: MACHINE_ID }),
      signature,
      agentVersion: str(64, { minLength: 1, pattern: '^[0-9A-Za-z.+_-]+$' }),
    }),
    strictObject({ t: tag('ack'), seq, actionId: str(36, { pattern: GUID }) }),
    strictObject({
      t: tag('progress'),
      seq,
      actionId: str(36, { pattern: GUID }),
      message: text(LIMITS.progressMessage),
    }),
    strictObject({
      t: tag('result'),
      seq,
      actionId: str(36, { pattern: GUID }),
      outcome: { enum: ['Succeeded', 'Failed'] },
      errorHResult: { type: 'integer', minimum: INT32_MIN, maximum: UINT32_MAX },
      reason: nullable(str(LIMITS.reason)),
      detail: resultDetailSchema,
      signature,
    }),
    strictObject({ t: tag('facts'), seq, facts: deviceFactsSchema }),
    strictObject({
      t: tag('observations'),
      seq,
      complete: { type: 'boolean' },
      files: { type: 'array', maxItems: LIMITS.observationsPerFrame, items: observedFile },
    }),
    strictObject({ t: tag('vault'), seq, items: { type: 'array', maxItems: LIMITS.vaultItemsPerFrame, items: vaultItem } }),
  ],
};

const actionOrder = openObject({
  id: str(36, { pattern: GUID }),
  type: str(64, { minLength: 1, pattern: '^[A-Za-z0-9]+$' }),
  comment: str(LIMITS.comment),
  sha1: nullable(str(40, { pattern: SHA1 })),
  scope: nullable(str(64)),
  requestor: str(1024),
  createdAt: str(40, { pattern: TIMESTAMP }),
  expiresAt: str(40, { pattern: TIMESTAMP }),
  params: { type: 'object', maxProperties: 64 },
});

export const serverMessageSchema = {
  type: 'object',
  required: ['t'],
  discriminator: { propertyName: 't' },
  oneOf: [
    openObject({
      t: tag('challenge'),
      nonce: str(128, { minLength: 16, pattern: '^[A-Za-z0-9_-]+$' }),
      serverTime: str(40, { pattern: TIMESTAMP }),
      protocolVersion: { type: 'integer', minimum: 1 },
    }),
    openObject({
      t: tag('welcome'),
      machineId: str(40, { pattern: MACHINE_ID }),
      heartbeatSec: { type: 'integer', minimum: 1, maximum: 3600 },
    }),
    openObject({ t: tag('action'), action: actionOrder }),
    openObject({ t: tag('cancel'), actionId: str(36, { pattern: GUID }) }),
    openObject({ t: tag('accepted'), seq }),
    openObject({ t: tag('error'), code: str(64), message: str(LIMITS.reason), seq }, ['seq']),
  ],
};

export const enrollRequestSchema = strictObject({
  enrollToken: str(512, { minLength: 1, pattern: '^[\\x21-\\x7e]+$' }),
  publicKey: str(256, { minLength: 1, pattern: BASE64 }),
  facts: deviceFactsSchema,
});

export const enrollResponseSchema = openObject({
  machineId: str(40, { pattern: MACHINE_ID }),
  serverTime: str(40, { pattern: TIMESTAMP }),
  protocolVersion: { type: 'integer', minimum: 1 },
});

// Validators are compiled on first use: a device only ever checks server frames and enroll responses, and
// compiling every schema up front costs the long-running agent ~20 MB of resident memory (measured).
let ajv: Ajv | null = null;
function lazyValidator<T>(schema: object): () => ValidateFunction<T> {
  let compiled: ValidateFunction<T> | null = null;
  return () => {
    if (!ajv) {
      ajv = new Ajv({ allErrors: false, strict: true, strictRequired: false, discriminator: true, allowUnionTypes: true });
      ajv.addFormat('ip', { type: 'string', validate: (s: string) => isIP(s) !== 0 });
    }
    compiled ??= ajv.compile<T>(schema);
    return compiled;
  };
}

const validateDeviceMessage = lazyValidator<DeviceMessage>(deviceMessageSchema);
const validateServerMessage = lazyValidator<ServerMessage>(serverMessageSchema);
const validateEnrollRequest = lazyValidator<EnrollRequest>(enrollRequestSchema);
const validateEnrollResponse = lazyValidator<EnrollResponse>(enrollResponseSchema);
const validateDeviceFacts = lazyValidator<DeviceFacts>(deviceFactsSchema);

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

function check<T>(validate: ValidateFunction<T>, value: unknown, name: string): Checked<T> {
  if (validate(value)) return { ok: true, value };
  return { ok: false, error: ajv!.errorsText(validate.errors, { dataVar: name }).slice(0, 500) };
}

export const checkDeviceMessage = (v: unknown): Checked<DeviceMessage> => check(validateDeviceMessage(), v, 'frame');
export const checkServerMessage = (v: unknown): Checked<ServerMessage> => check(validateServerMessage(), v, 'frame');
export const checkEnrollRequest = (v: unknown): Checked<EnrollRequest> => check(validateEnrollRequest(), v, 'body');
export const checkEnrollResponse = (v: unknown): Checked<EnrollResponse> => check(validateEnrollResponse(), v, 'body');
export const checkDeviceFacts = (v: unknown): Checked<DeviceFacts> => check(validateDeviceFacts(), v, 'facts');

/** HRESULTs travel as signed 32-bit integers; an unsigned spelling (0x80070005 = 2147942405) is folded. */
export function toInt32HResult(n: number): number {
  return n | 0;
}
