// Extended attributes (ACLs, file capabilities, SELinux labels, user.*) and nanosecond timestamps are part of
// what a restore must put back. Node has no xattr API and its utimes loses sub-microsecond precision, so both
// go through the system Python (os.listxattr/getxattr/setxattr, os.utime(ns=)) acting on an already open
// descriptor passed as its stdin: no path is re-resolved, so nothing can be swapped in between.
// Python runs isolated (-I -S: no PYTHON* variables, no user site) from an absolute path only.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const READ_SCRIPT = `
import os, sys, json, base64
out = {}
for name in os.listxattr(0):
    try:
        out[name] = base64.b64encode(os.getxattr(0, name)).decode()
    except OSError:
        pass
sys.stdout.write(json.dumps(out))
`;

const WRITE_SCRIPT = `
import os, sys, json, base64
spec = json.loads(sys.argv[1])
errors = []
for name, value in spec.get('xattrs', {}).items():
    try:
        os.setxattr(0, name, base64.b64decode(value))
    except OSError as e:
        errors.append('%s: %s' % (name, e.strerror))
t = spec.get('times')
if t:
    os.utime(0, ns=(int(t[0]), int(t[1])))
sys.stdout.write(json.dumps({'errors': errors}))
`;

function python(): string | null {
  return ['/usr/bin/python3', '/bin/python3', '/usr/libexec/platform-python'].find((p) => existsSync(p)) ?? null;
}

export type XattrCapture =
  | { captured: true; values: Record<string, string> }
  | { captured: false; reason: string };

/** Reads every extended attribute of the open file `fd` (values base64). */
export function readXattrs(fd: number): XattrCapture {
  const py = python();
  if (!py) return { captured: false, reason: 'no system python3 to read extended attributes (Node has no xattr API)' };
  try {
    const out = execFileSync(py, ['-I', '-S', '-c', READ_SCRIPT], { stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8', timeout: 10_000 });
    const values = JSON.parse(out) as unknown;
    if (typeof values !== 'object' || values === null || Array.isArray(values)) throw new Error('unexpected output');
    for (const v of Object.values(values)) if (typeof v !== 'string') throw new Error('unexpected output');
    return { captured: true, values: values as Record<string, string> };
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim().split('\n').pop();
    return { captured: false, reason: `reading extended attributes failed: ${stderr || (err as Error).message}` };
  }
}

export interface ApplyResult {
  /** Times were set with nanosecond precision. */
  exactTimes: boolean;
  errors: string[];
}

/**
 * Sets extended attributes and (atime, mtime) in nanoseconds on the open file `fd`. Without Python the
 * caller falls back to futimes (microsecond precision) and reports that xattrs were not restored.
 */
export function applyXattrsAndTimes(
  fd: number,
  xattrs: Record<string, string>,
  times: { atimeNs: bigint; mtimeNs: bigint } | null,
): ApplyResult | null {
  const py = python();
  if (!py) return null;
  const spec = JSON.stringify({ xattrs, times: times ? [String(times.atimeNs), String(times.mtimeNs)] : null });
  try {
    const out = execFileSync(py, ['-I', '-S', '-c', WRITE_SCRIPT, spec], { stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8', timeout: 10_000 });
    const parsed = JSON.parse(out) as { errors?: unknown };
    const errors = Array.isArray(parsed.errors) ? parsed.errors.map(String) : [];
    return { exactTimes: times !== null, errors };
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim().split('\n').pop();
    return { exactTimes: false, errors: [`setting attributes failed: ${stderr || (err as Error).message}`] };
  }
}
