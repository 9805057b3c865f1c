// cgroup v1 freezer: a task frozen by it sits in state D and a SIGKILL only lands once its cgroup is THAWED
// (endpoint-agent.md §3.4). When a killed process refuses to die, thawing its freezer cgroup lets the kill
// through. cgroup v2 freezing needs nothing: SIGKILL kills a v2-frozen task at once.
import { readFileSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';

function freezerMountPoint(): string | null {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    // id parent major:minor root mountpoint options ... - fstype source superoptions
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' || !superOptions.split(',').includes('freezer')) continue;
    const mountPoint = line.slice(0, sep).split(' ')[4];
    if (mountPoint) return mountPoint;
  }
  return null;
}

/** Thaws the v1 freezer cgroup holding `pid` if it is frozen; true when a thaw was written. */
export function thawV1FreezerOf(pid: number): boolean {
  let cgroups: string;
  try {
    cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return false;
  }
  const line = cgroups.split('\n').find((l) => l.split(':')[1]?.split(',').includes('freezer'));
  const rel = line?.split(':').slice(2).join(':');
  if (!rel || rel === '/') return false;
  const mount = freezerMountPoint();
  if (!mount) return false;
  const stateFile = posix.join(mount, posix.normalize(rel), 'freezer.state');
  if (!stateFile.startsWith(mount + '/')) return false;
  try {
    const state = readFileSync(stateFile, 'utf8').trim();
    if (state !== 'FROZEN' && state !== 'FREEZING') return false;
    writeFileSync(stateFile, 'THAWED');
    return true;
  } catch {
    return false;
  }
}
