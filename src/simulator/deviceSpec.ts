// One simulated device, generated from (fleet seed, index, profile) alone: its OS, names, addresses, files and
// process table. Same inputs, same device, so a fleet can be rebuilt exactly.
import type { DeviceFacts } from '../protocol/v1.ts';
import {
  DEMO_SHA1,
  DEMO_SHA256,
  DEMO_SIZE,
  LEGACY_OS_VARIANTS,
  LINUX_APPS,
  LINUX_ROLES,
  LINUX_SUSPECTS,
  OS_VARIANTS,
  WINDOWS_APPS,
  WINDOWS_SERVER_ROLES,
  WINDOWS_SUSPECTS,
  WINDOWS_USERS,
  capabilitiesOf,
  imageFiles,
  virtualFile,
  type OsVariant,
  type VirtualFile,
} from './catalog.ts';
import type { Profile } from './profiles.ts';
import { Random, seedFrom } from './random.ts';

export interface VirtualProcess {
  pid: number;
  parentPid: number | null;
  /** Executable path (the interpreter for scripts); null for kernel-ish processes. */
  exe: string | null;
  cmdline: string;
  /** The file the process runs: its executable, or the script an interpreter runs. */
  file: VirtualFile | null;
  /** How a scan finds it by the file's hash. */
  matchedBy: 'exe' | 'script';
}

export interface DeviceSpec {
  index: number;
  os: OsVariant;
  facts: DeviceFacts;
  /** Everything on disk worth reporting: the OS image plus apps, suspects and the demo file. */
  files: readonly VirtualFile[];
  processes: readonly VirtualProcess[];
  /** Chaos behaviours the profile gave this device. */
  flapping: boolean;
  intermittent: boolean;
}

function demoFile(path: string): VirtualFile {
  return { path, sha1: DEMO_SHA1, sha256: DEMO_SHA256, size: DEMO_SIZE, signer: null, publisher: null };
}

export function generateDeviceSpec(fleetSeed: number, index: number, profile: Profile): DeviceSpec {
  const r = new Random(seedFrom(fleetSeed, 'device', index));
  const os = r.chance(profile.legacyOs) ? r.weighted(LEGACY_OS_VARIANTS) : r.weighted(OS_VARIANTS);
  const windows = os.family === 'windows';
  const user = r.pick(WINDOWS_USERS);
  const n = String(index + 1).padStart(4, '0');
  let hostname: string;
  let domain: string | null = null;
  if (windows && os.role === 'client') {
    hostname = `DESKTOP-${r.alnum(7)}`;
    domain = r.chance(0.7) ? 'contoso.local' : null;
  } else if (windows) {
    hostname = `SRV-${r.pick(WINDOWS_SERVER_ROLES)}-${n}`;
    domain = 'contoso.local';
  } else {
    hostname = `${r.pick(LINUX_ROLES)}-${n}`;
  }
  const guid = r.guid();
  const aadDeviceId = windows && os.role === 'client' && r.chance(0.6) ? guid : null;
  const ip = `10.${Math.floor(index / (254 * 256)) % 256}.${Math.floor(index / 254) % 256}.${(index % 254) + 1}`;
  const mac = r.hex(12).toUpperCase();
  const tags = ['tourniquet-sim', ...(r.chance(0.3) ? [r.pick(['finance', 'engineering', 'sales', 'prod', 'staging'])] : [])];

  // Files: the image, a few apps, suspects by prevalence, and the demo file (sometimes twice).
  const image = imageFiles(os);
  const apps = (windows ? WINDOWS_APPS : LINUX_APPS).filter(() => r.chance(0.5));
  const appFiles = apps.map((a) => virtualFile(`${os.family}|${a.path}`, a.path, a.size, a.signer, a.publisher));
  const home = windows ? `C:\\Users\\${user}` : `/home/${user}`;
  const suspects = (windows ? WINDOWS_SUSPECTS : LINUX_SUSPECTS).filter((s) => r.chance(s.prevalence));
  const suspectFiles = suspects.map((s) => {
    const dir = s.dir.replace('{user}', user);
    return virtualFile(`suspect|${fleetSeed}|${s.name}`, windows ? `${dir}\\${s.name}` : `${dir}/${s.name}`, s.size, null, null, s.script);
  });
  const demoPath = windows ? `${home}\\Downloads\\eicar.com` : '/tmp/eicar.com';
  const demoCopies = [demoFile(demoPath), ...(r.chance(0.3) ? [demoFile(windows ? `${home}\\Desktop\\eicar.com` : `${home}/eicar.com`)] : [])];
  const files = [...image, ...appFiles, ...suspectFiles, ...demoCopies];

  // Processes: system ones, the apps (with children), some suspects, and the demo file (sometimes with a child).
  const byPath = new Map(files.map((f) => [f.path, f]));
  const processes: VirtualProcess[] = [];
  let pid = windows ? 400 + r.int(0, 200) * 4 : 300 + r.int(0, 400);
  const nextPid = () => (pid += windows ? 4 * r.int(1, 40) : r.int(1, 60));
  const spawn = (
    exe: string | null,
    parentPid: number | null,
    cmdline?: string,
    file?: VirtualFile | null,
    matchedBy: 'exe' | 'script' = 'exe',
    fixedPid?: number,
  ) => {
    const p: VirtualProcess = {
      pid: fixedPid ?? nextPid(),
      parentPid,
      exe,
      cmdline: cmdline ?? exe ?? 'System',
      file: file === undefined ? (exe ? (byPath.get(exe) ?? null) : null) : file,
      matchedBy,
    };
    processes.push(p);
    return p;
  };
  let shell: VirtualProcess;
  if (windows) {
    spawn(null, null, 'System', null, 'exe', 4);
    const services = spawn('C:\\Windows\\System32\\services.exe', null);
    spawn('C:\\Windows\\System32\\lsass.exe', null);
    for (let i = 0; i < 3; i++) spawn('C:\\Windows\\System32\\svchost.exe', services.pid, 'C:\\Windows\\System32\\svchost.exe -k netsvcs -p');
    spawn(image[7]!.path, services.pid);
    shell = spawn('C:\\Windows\\explorer.exe', null);
  } else {
    const init = spawn('/usr/lib/systemd/systemd', null, '/sbin/init', undefined, 'exe', 1);
    const sshd = spawn('/usr/sbin/sshd', init.pid, 'sshd: /usr/sbin/sshd -D [listener]');
    spawn('/usr/sbin/cron', init.pid, '/usr/sbin/cron -f');
    shell = spawn('/usr/bin/bash', sshd.pid, '-bash');
  }
  for (const a of apps) {
    const parent = spawn(a.path, shell.pid);
    for (let i = 0; i < a.children; i++) spawn(a.path, parent.pid, `${a.path} --type=worker`);
  }
  suspects.forEach((s, i) => {
    if (!r.chance(s.running)) return;
    const f = suspectFiles[i]!;
    if (s.script) spawn('/usr/bin/bash', shell.pid, `bash ${f.path}`, f, 'script');
    else spawn(f.path, shell.pid);
  });
  const demo = spawn(demoPath, shell.pid, windows ? `"${demoPath}"` : demoPath);
  if (r.chance(0.5)) spawn(windows ? 'C:\\Windows\\System32\\cmd.exe' : '/usr/bin/curl', demo.pid);

  const facts: DeviceFacts = {
    hostname,
    osPlatform: os.osPlatform,
    osVersion: os.osVersion,
    version: os.version,
    osBuild: os.osBuild,
    osArchitecture: '64-bit',
    agentVersion: os.agentVersion,
    protectionRunning: true,
    aadDeviceId,
    domain,
    tags,
    ipAddresses: [
      { ipAddress: ip, macAddress: mac, type: 'Ethernet', operationalStatus: 'Up' },
      { ipAddress: '127.0.0.1', macAddress: null, type: 'SoftwareLoopback', operationalStatus: 'Up' },
    ],
    externalIp: null,
    capabilities: capabilitiesOf(os),
    simulated: true,
  };
  return {
    index,
    os,
    facts,
    files,
    processes,
    flapping: r.chance(profile.flapping),
    intermittent: r.chance(profile.intermittent),
  };
}
