// The mutable side of a simulated device: which processes still run, which files are quarantined, isolation.
// Executes actions against that state and answers in the protocol's per-process, per-copy result shape, refusing
// protected files as MDE does.
import { HRESULT } from '../core/actions.ts';
import type { ActionOutcome, ObservedFile, VaultReportItem } from '../protocol/deviceClient.ts';
import type { ActionOrder, FileItem, ProcessItem } from '../protocol/v1.ts';
import type { TrustSigner, VirtualFile } from './catalog.ts';
import type { DeviceSpec, VirtualProcess } from './deviceSpec.ts';
import type { Random } from './random.ts';
import { seedFrom } from './random.ts';

/** 0x80070020 ERROR_SHARING_VIOLATION: the file is in use. */
export const SHARING_VIOLATION = -2147024864;

const HRESULT_TEXT = new Map<number, string>([
  [HRESULT.accessDenied, 'Access is denied'],
  [HRESULT.fail, 'Unspecified error'],
  [HRESULT.fileNotFound, 'The system cannot find the file specified'],
  [SHARING_VIOLATION, 'The process cannot access the file because it is being used by another process'],
]);

export function hresultText(hr: number): string {
  return HRESULT_TEXT.get(hr) ?? `Operation failed with HRESULT 0x${(hr >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;
}

function protectionReason(signer: TrustSigner, publisher: string | null): string {
  switch (signer) {
    case 'Microsoft':
      return 'The file is signed by Microsoft and cannot be stopped and quarantined';
    case 'TrustedPublisher':
      return `The file is signed by a trusted publisher (${publisher ?? 'unknown'}) and cannot be stopped and quarantined`;
    case 'PackageManager':
      return `The file is owned by the package manager (${publisher ?? 'package'}) and cannot be stopped and quarantined`;
    default:
      return 'The file is protected and cannot be stopped and quarantined';
  }
}

export interface ExecutionPlan {
  /** Fail with this HRESULT (scripted, injected, or drawn from the profile's failure rate). */
  failHResult: number | null;
  /** Refuse as protected even if the file is not. */
  forceProtected: boolean;
  durationMs: number;
  now: string;
  rng: Random;
}

export interface Execution {
  outcome: ActionOutcome;
  /** Vault items created or changed by this action. */
  vault: VaultReportItem[];
}

export class VirtualHost {
  #killed = new Set<number>();
  #quarantined = new Map<string, VaultReportItem>();
  #isolated = false;
  #restricted = false;

  constructor(readonly spec: DeviceSpec) {}

  get isolated(): boolean {
    return this.#isolated;
  }

  /** Every file on disk, as reported to the server (a complete inventory). */
  inventory(): ObservedFile[] {
    return this.spec.files
      .filter((f) => !this.#quarantined.has(f.path))
      .map((f) => ({ sha1: f.sha1, sha256: f.sha256, path: f.path, size: f.size, signer: f.signer, trusted: f.signer !== null }));
  }

  runningProcesses(): VirtualProcess[] {
    return this.spec.processes.filter((p) => !this.#killed.has(p.pid));
  }

  /** Back to the generated state; returns the vault items that were restored. */
  reset(): VaultReportItem[] {
    const restored = [...this.#quarantined.values()].map((v) => ({ ...v, state: 'restored' as const }));
    this.#killed.clear();
    this.#quarantined.clear();
    this.#isolated = false;
    this.#restricted = false;
    return restored;
  }

  execute(order: ActionOrder, plan: ExecutionPlan): Execution {
    const empty = { processes: [], files: [], durationMs: plan.durationMs };
    const fail = (hr: number, reason = hresultText(hr)): Execution => ({
      outcome: { outcome: 'Failed', errorHResult: hr, reason, detail: empty },
      vault: [],
    });
    const ok = (): Execution => ({ outcome: { outcome: 'Succeeded', errorHResult: 0, reason: null, detail: empty }, vault: [] });
    switch (order.type) {
      case 'StopAndQuarantineFile':
        return this.#stopAndQuarantine(order, plan);
      case 'Isolate':
      case 'Unisolate':
        if (plan.failHResult !== null) return fail(plan.failHResult);
        this.#isolated = order.type === 'Isolate';
        return ok();
      case 'RestrictCodeExecution':
      case 'UnrestrictCodeExecution':
        if (plan.failHResult !== null) return fail(plan.failHResult);
        this.#restricted = order.type === 'RestrictCodeExecution';
        return ok();
      case 'RunAntiVirusScan':
      case 'CollectInvestigationPackage':
      case 'LiveResponse':
      case 'Offboard':
        return plan.failHResult !== null ? fail(plan.failHResult) : ok();
      default:
        return fail(HRESULT.fail, `${order.type} is not supported by this device`);
    }
  }

  #stopAndQuarantine(order: ActionOrder, plan: ExecutionPlan): Execution {
    const sha1 = order.sha1?.toLowerCase() ?? null;
    const durationMs = plan.durationMs;
    if (!sha1) {
      return {
        outcome: { outcome: 'Failed', errorHResult: HRESULT.fail, reason: 'No SHA-1 given', detail: { processes: [], files: [], durationMs } },
        vault: [],
      };
    }
    const copies = this.spec.files.filter((f) => f.sha1 === sha1 && !this.#quarantined.has(f.path));
    const direct = this.runningProcesses().filter((p) => p.file?.sha1 === sha1);
    const tree = this.#descendants(direct);

    const guarded = copies.find((c) => c.signer !== null);
    if (plan.forceProtected || guarded) {
      const reason = protectionReason(guarded?.signer ?? null, guarded?.publisher ?? null);
      return {
        outcome: {
          outcome: 'Failed',
          errorHResult: HRESULT.protectedFile,
          reason,
          detail: {
            processes: direct.map((p) => this.#processItem(p, p.matchedBy, false, 'not stopped: the file is protected')),
            files: copies.map((c) => this.#fileItem(c, 'protected', reason)),
            durationMs,
          },
        },
        vault: [],
      };
    }
    if (copies.length === 0 && direct.length === 0) {
      if ([...this.#quarantined.values()].some((v) => v.sha1 === sha1)) {
        // Already in the vault: nothing left to stop or move.
        return {
          outcome: { outcome: 'Succeeded', errorHResult: 0, reason: 'already quarantined', detail: { processes: [], files: [], durationMs } },
          vault: [],
        };
      }
      return {
        outcome: {
          outcome: 'Failed',
          errorHResult: HRESULT.fileNotFound,
          reason: 'File not found on the device',
          detail: { processes: [], files: [], durationMs },
        },
        vault: [],
      };
    }

    // Stop first (the whole tree), then move the copies: a moved file keeps running otherwise.
    const processes: ProcessItem[] = [];
    for (const p of direct) processes.push(this.#processItem(p, p.matchedBy, true));
    for (const p of tree) processes.push(this.#processItem(p, 'descendant', true));
    for (const p of [...direct, ...tree]) this.#killed.add(p.pid);

    if (plan.failHResult !== null) {
      const reason = hresultText(plan.failHResult);
      return {
        outcome: {
          outcome: 'Failed',
          errorHResult: plan.failHResult,
          reason,
          detail: { processes, files: copies.map((c) => this.#fileItem(c, 'failed', reason)), durationMs },
        },
        vault: [],
      };
    }
    const vault: VaultReportItem[] = [];
    const files: FileItem[] = copies.map((c) => {
      const item: VaultReportItem = {
        itemId: `q-${plan.rng.hex(16)}`,
        actionId: order.id,
        sha1: c.sha1,
        sha256: c.sha256,
        originalPath: c.path,
        size: c.size,
        quarantinedAt: plan.now,
        state: 'quarantined',
      };
      this.#quarantined.set(c.path, item);
      vault.push(item);
      return { ...this.#fileItem(c, 'quarantined'), vaultItemId: item.itemId };
    });
    return { outcome: { outcome: 'Succeeded', errorHResult: 0, reason: null, detail: { processes, files, durationMs } }, vault };
  }

  #descendants(roots: VirtualProcess[]): VirtualProcess[] {
    const seen = new Set(roots.map((p) => p.pid));
    const out: VirtualProcess[] = [];
    const running = this.runningProcesses();
    for (let frontier = [...seen]; frontier.length > 0; ) {
      const next: number[] = [];
      for (const p of running) {
        if (p.parentPid !== null && frontier.includes(p.parentPid) && !seen.has(p.pid)) {
          seen.add(p.pid);
          out.push(p);
          next.push(p.pid);
        }
      }
      frontier = next;
    }
    return out;
  }

  #processItem(p: VirtualProcess, matchedBy: ProcessItem['matchedBy'], killed: boolean, error?: string): ProcessItem {
    return {
      pid: p.pid,
      exe: p.exe,
      cmdline: p.cmdline,
      matchedBy,
      parentPid: p.parentPid,
      killed,
      ...(error ? { error } : {}),
    };
  }

  #fileItem(f: VirtualFile, status: FileItem['status'], reason?: string): FileItem {
    const linux = this.spec.os.family === 'linux';
    return {
      path: f.path,
      device: linux ? 2049 : null,
      inode: linux ? (seedFrom(this.spec.index, f.path) % 4_000_000) + 1000 : null,
      size: f.size,
      sha1: f.sha1,
      status,
      ...(reason ? { reason } : {}),
    };
  }
}
