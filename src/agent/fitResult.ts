// The server refuses result frames beyond protocol v1's bounds (src/protocol/codes.ts LIMITS, mirrored here so
// the agent depends on v1 types only). A fork bomb can yield thousands of killed processes and a path can be
// PATH_MAX long, so results are fitted before they leave: long strings are cut with a marker, and long lists
// keep the items that explain a failure first and say how many were left out.
import type { ActionResultDetail, FileItem, ProcessItem } from '../protocol/v1.ts';

export const RESULT_LIMITS = {
  reason: 2000,
  path: 4096,
  cmdline: 8192,
  processes: 2000,
  files: 2000,
} as const;

const MARK = '…';

export function clip(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - MARK.length) + MARK;
}

function fitProcess(p: ProcessItem): ProcessItem {
  const out: ProcessItem = { ...p };
  if (out.exe !== null) out.exe = clip(out.exe, RESULT_LIMITS.path);
  if (out.cmdline !== null) out.cmdline = clip(out.cmdline, RESULT_LIMITS.cmdline);
  if (out.error !== undefined) out.error = clip(out.error, RESULT_LIMITS.reason);
  return out;
}

function fitFile(f: FileItem): FileItem {
  const out: FileItem = { ...f, path: clip(f.path || '?', RESULT_LIMITS.path) };
  if (out.reason !== undefined) out.reason = clip(out.reason, RESULT_LIMITS.reason);
  return out;
}

/** Keeps at most `max` items, failures first (in their original order), then the rest. */
function cap<T>(items: T[], max: number, failed: (t: T) => boolean): { kept: T[]; dropped: number } {
  if (items.length <= max) return { kept: items, dropped: 0 };
  const kept = [...items.filter(failed), ...items.filter((i) => !failed(i))].slice(0, max);
  return { kept, dropped: items.length - max };
}

export function fitResult(reason: string | null, detail: ActionResultDetail): { reason: string | null; detail: ActionResultDetail } {
  const procs = cap(detail.processes, RESULT_LIMITS.processes, (p) => !p.killed);
  const files = cap(detail.files, RESULT_LIMITS.files, (f) => f.status !== 'quarantined' && f.status !== 'restored');
  const notes: string[] = [];
  if (procs.dropped > 0) notes.push(`${procs.dropped} more process(es) not listed`);
  if (files.dropped > 0) notes.push(`${files.dropped} more file(s) not listed`);
  let r = reason;
  if (notes.length > 0) r = [reason, notes.join('; ')].filter(Boolean).join(' (') + (reason ? ')' : '');
  return {
    reason: r === null ? null : clip(r, RESULT_LIMITS.reason),
    detail: {
      processes: procs.kept.map(fitProcess),
      files: files.kept.map(fitFile),
      durationMs: detail.durationMs,
    },
  };
}
