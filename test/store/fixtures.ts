// Builders for store test data: complete, valid objects with one-line overrides.
import { createHash, randomUUID } from 'node:crypto';
import type { MachineAction } from '../../src/core/actions.ts';
import { duplicateKey } from '../../src/core/actions.ts';
import type { Machine } from '../../src/core/machines.ts';
import { millisToTimestamp } from '../../src/core/time.ts';
import type { FilterExpr, ListQuery, Literal } from '../../src/core/query.ts';
import type { AppRecord, EnrollTokenRecord, NewAuditEntry, SigningKeyRecord, Store, VaultItemRecord } from '../../src/store/store.ts';

const BASE_MS = Date.parse('2026-03-01T12:00:00Z');

/** A stored-form timestamp `seconds` after a fixed base (negative = before). */
export function ts(seconds: number): string {
  return millisToTimestamp(BASE_MS + seconds * 1000);
}

export function hex40(seed: string): string {
  return createHash('sha1').update(seed).digest('hex');
}

let machineSeq = 0;

export function machine(over: Partial<Machine> = {}): Machine {
  const n = ++machineSeq;
  return {
    id: hex40(`machine-${n}-${randomUUID()}`),
    mergedIntoMachineId: null,
    isPotentialDuplication: false,
    isExcluded: false,
    exclusionReason: null,
    computerDnsName: `host-${n}.example.org`,
    firstSeen: ts(-86400),
    lastSeen: ts(0),
    osPlatform: 'Linux',
    osVersion: null,
    osProcessor: 'x64',
    version: '6.1',
    lastIpAddress: '10.0.0.1',
    lastExternalIpAddress: null,
    agentVersion: '0.1.0',
    osBuild: null,
    healthStatus: 'Active',
    deviceValue: 'Normal',
    rbacGroupId: 0,
    rbacGroupName: null,
    riskScore: 'None',
    exposureLevel: 'Low',
    isAadJoined: false,
    aadDeviceId: null,
    machineTags: [],
    defenderAvStatus: 'Updated',
    onboardingStatus: 'Onboarded',
    osArchitecture: '64-bit',
    managedBy: 'Unknown',
    managedByStatus: 'Unknown',
    ipAddresses: [{ ipAddress: '10.0.0.1', macAddress: '000C2992A64D', type: 'Ethernet', operationalStatus: 'Up' }],
    vmMetadata: null,
    devicePublicKey: 'MCowBQYDK2VwAyEA' + 'A'.repeat(43) + '=',
    protectionRunning: true,
    capabilities: ['StopAndQuarantineFile'],
    enrollGroup: null,
    domain: null,
    offboarded: false,
    simulated: true,
    ...over,
  };
}

export function action(m: Pick<Machine, 'id' | 'computerDnsName'>, over: Partial<MachineAction> = {}): MachineAction {
  const sha1 = hex40(randomUUID());
  return {
    id: randomUUID(),
    type: 'StopAndQuarantineFile',
    title: null,
    requestor: 'Playbook App',
    requestorComment: 'contain',
    status: 'Pending',
    machineId: m.id,
    computerDnsName: m.computerDnsName,
    creationDateTimeUtc: ts(0),
    lastUpdateDateTimeUtc: ts(0),
    cancellationRequestor: null,
    cancellationComment: null,
    cancellationDateTimeUtc: null,
    errorHResult: 0,
    scope: null,
    externalId: null,
    requestSource: 'PublicApi',
    relatedFileInfo: { fileIdentifier: sha1, fileIdentifierType: 'Sha1' },
    commands: [],
    troubleshootInfo: null,
    requestorId: randomUUID(),
    deviceResult: null,
    expiresAt: ts(7 * 86400),
    ...over,
  };
}

export function keyOf(a: MachineAction): string {
  return duplicateKey(a.machineId, a.type, a.relatedFileInfo?.fileIdentifier ?? null);
}

export function app(over: Partial<AppRecord> = {}): AppRecord {
  return {
    clientId: randomUUID(),
    tenantId: randomUUID(),
    name: 'Playbook App',
    secretHash: 'scrypt$16384$8$1$c2FsdA==$aGFzaA==',
    roles: ['Machine.StopAndQuarantine', 'Machine.Read.All'],
    createdAt: ts(0),
    disabled: false,
    ...over,
  };
}

export function signingKey(over: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  const kid = randomUUID();
  return {
    kid,
    alg: 'RS256',
    publicJwk: JSON.stringify({ kty: 'RSA', kid, n: 'AQAB', e: 'AQAB' }),
    privatePem: '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n',
    createdAt: ts(0),
    status: 'active',
    retiredAt: null,
    ...over,
  };
}

export function enrollToken(over: Partial<EnrollTokenRecord> = {}): EnrollTokenRecord {
  return {
    id: randomUUID(),
    tokenHash: createHash('sha256').update(randomUUID()).digest('hex'),
    group: null,
    createdAt: ts(0),
    expiresAt: ts(3600),
    revokedAt: null,
    maxUses: null,
    uses: 0,
    ...over,
  };
}

export function auditEntry(over: Partial<NewAuditEntry> = {}): NewAuditEntry {
  return {
    at: ts(0),
    actorType: 'app',
    actorId: randomUUID(),
    actorName: 'Playbook App',
    action: 'machineAction.create',
    target: randomUUID(),
    result: 'success',
    status: 201,
    clientIp: '127.0.0.1',
    correlationId: '|1d25001e-48e8e09dbddde4f4.',
    detail: { sha1: hex40('x'), nested: { b: 2, a: [1, 'two', null] } },
    ...over,
  };
}

export function vaultItem(machineId: string, over: Partial<VaultItemRecord> = {}): VaultItemRecord {
  return {
    machineId,
    itemId: randomUUID(),
    actionId: randomUUID(),
    sha1: hex40(randomUUID()),
    sha256: null,
    originalPath: '/tmp/evil.bin',
    size: 1234,
    quarantinedAt: ts(0),
    state: 'quarantined',
    detail: { mode: 0o755 },
    ...over,
  };
}

// ---- ListQuery builders ----

export const str = (value: string): Literal => ({ kind: 'string', value });
export const num = (value: number): Literal => ({ kind: 'number', value });
export const boolLit = (value: boolean): Literal => ({ kind: 'boolean', value });
export const dt = (value: string): Literal => ({ kind: 'datetime', value });
export const nil: Literal = { kind: 'null' };

export function cmp(field: string, op: 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le', value: Literal): FilterExpr {
  return { kind: 'compare', op, field, value };
}
export const and = (left: FilterExpr, right: FilterExpr): FilterExpr => ({ kind: 'and', left, right });
export const or = (left: FilterExpr, right: FilterExpr): FilterExpr => ({ kind: 'or', left, right });
export const not = (expr: FilterExpr): FilterExpr => ({ kind: 'not', expr });

export function query(over: Partial<ListQuery> = {}): ListQuery {
  return { filter: null, orderBy: [], top: 10_000, skip: 0, count: false, ...over };
}

/** Two concurrent StopAndQuarantineFile for one machine and SHA-1: how each settled (one must be refused). */
export async function raceTwinActions(s: Store): Promise<string[]> {
  const m = machine();
  await s.upsertMachine(m);
  const a = action(m);
  const dup = action(m, { relatedFileInfo: a.relatedFileInfo });
  const r = await Promise.allSettled([s.createAction(a, keyOf(a)), s.createAction(dup, keyOf(dup))]);
  return r.map((x) => x.status).sort();
}
