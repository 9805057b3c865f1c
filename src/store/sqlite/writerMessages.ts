// What the main thread and the SQLite writer thread say to each other, and how errors cross between them
// (a structured clone keeps an Error's message but not its class or its code).
import { MdeError, type MdeErrorCode } from '../../core/errors.ts';
import type { MachineAction } from '../../core/actions.ts';
import type { PendingAction } from '../batchWrites.ts';
import type { ItemOutcome } from '../groupCommit.ts';
import type { AuditEntry, NewAuditEntry } from '../store.ts';

export interface WriterThreadData {
  file: string;
  busyTimeoutMs: number;
}

export type WriterRequest =
  | { id: number; lease: true }
  | { id: number; release: true }
  | { id: number; batch: 'actions'; items: PendingAction[] }
  | { id: number; batch: 'audit'; items: NewAuditEntry[] }
  | { id: number; close: true };

export type EncodedError =
  | { kind: 'mde'; status: number; code: MdeErrorCode; message: string }
  | { kind: 'error'; name: string; message: string; code: string | undefined };

export type EncodedOutcome<O> = { ok: true; value: O } | { ok: false; error: EncodedError };

export type WriterReply =
  | { id: number; ready: true }
  | { id: number; closed: true }
  | { id: number; granted: true }
  | { id: number; outcomes: EncodedOutcome<MachineAction | AuditEntry>[] }
  | { id: number; error: EncodedError };

/** An error SQLite (or the code around it) raised in the writer thread, with its code (SQLITE_BUSY, …). */
export class SqliteWriterError extends Error {
  constructor(
    name: string,
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = name;
  }
}

export function encodeError(err: unknown): EncodedError {
  if (err instanceof MdeError) return { kind: 'mde', status: err.status, code: err.code, message: err.message };
  const e = (typeof err === 'object' && err !== null ? err : {}) as { name?: unknown; message?: unknown; code?: unknown };
  return {
    kind: 'error',
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : String(err),
    code: typeof e.code === 'string' ? e.code : undefined,
  };
}

export function decodeError(e: EncodedError): Error {
  return e.kind === 'mde' ? new MdeError(e.status, e.code, e.message) : new SqliteWriterError(e.name, e.message, e.code);
}

export function encodeOutcomes<O>(outcomes: ItemOutcome<O>[]): EncodedOutcome<O>[] {
  return outcomes.map((o) => (o.ok ? o : { ok: false, error: encodeError(o.error) }));
}

export function decodeOutcomes<O>(outcomes: EncodedOutcome<O>[]): ItemOutcome<O>[] {
  return outcomes.map((o) => (o.ok ? o : { ok: false, error: decodeError(o.error) }));
}
