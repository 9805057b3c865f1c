// What simulated devices are made of: OS variants (current and too old), the files each OS image ships, the apps and
// the suspicious files a fleet may carry, and the demo file every device runs.
import { createHash } from 'node:crypto';
import { MDE_ACTION_TYPES, type ActionType } from '../core/actions.ts';
import { MIN_LINUX_AGENT_VERSION } from '../core/platform.ts';

/**
 * The well-known demo SHA-1: the EICAR anti-malware test file. Every simulated device has it on disk and running,
 * so a StopAndQuarantineFile for it always has something to stop and quarantine.
 */
export const DEMO_SHA1 = '3395856ce81f2b7382dee72602f798b642f14140';
export const DEMO_SHA256 = '275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f';
export const DEMO_SIZE = 68;

/** The version simulated Linux devices report for the Tourniquet agent they pretend to run. */
export const SIM_LINUX_AGENT_VERSION = '0.1.0';

/** Trust categories as the server stores them on file observations. */
export type TrustSigner = 'Microsoft' | 'TrustedPublisher' | 'PackageManager' | null;

export interface VirtualFile {
  path: string;
  sha1: string;
  sha256: string;
  size: number;
  signer: TrustSigner;
  /** Who signed it (Microsoft Windows, Google LLC) or which package owns it (dpkg: bash). */
  publisher: string | null;
  /** Run through an interpreter rather than executed (a shell script). */
  script?: boolean;
}

export type Family = 'windows' | 'linux';

export interface OsVariant {
  key: string;
  family: Family;
  osPlatform: string;
  osVersion: string | null;
  version: string;
  osBuild: number | null;
  agentVersion: string;
  /** Too old for StopAndQuarantineFile: the server refuses actions for it. */
  legacy: boolean;
  role: 'client' | 'server';
}

export const OS_VARIANTS: readonly (readonly [OsVariant, number])[] = [
  [{ key: 'win11-23h2', family: 'windows', osPlatform: 'Windows11', osVersion: null, version: '23H2', osBuild: 22631, agentVersion: '10.8760.22631.4317', legacy: false, role: 'client' }, 25],
  [{ key: 'win11-22h2', family: 'windows', osPlatform: 'Windows11', osVersion: null, version: '22H2', osBuild: 22621, agentVersion: '10.8760.22621.4317', legacy: false, role: 'client' }, 10],
  [{ key: 'win10-22h2', family: 'windows', osPlatform: 'Windows10', osVersion: null, version: '22H2', osBuild: 19045, agentVersion: '10.8760.19045.5011', legacy: false, role: 'client' }, 20],
  [{ key: 'win10-21h2', family: 'windows', osPlatform: 'Windows10', osVersion: null, version: '21H2', osBuild: 19044, agentVersion: '10.8760.19044.4894', legacy: false, role: 'client' }, 5],
  [{ key: 'ws2022', family: 'windows', osPlatform: 'WindowsServer2022', osVersion: null, version: '21H2', osBuild: 20348, agentVersion: '10.8760.20348.2762', legacy: false, role: 'server' }, 8],
  [{ key: 'ws2019', family: 'windows', osPlatform: 'WindowsServer2019', osVersion: null, version: '1809', osBuild: 17763, agentVersion: '10.8760.17763.6414', legacy: false, role: 'server' }, 5],
  [{ key: 'ubuntu-2204', family: 'linux', osPlatform: 'Linux', osVersion: 'Ubuntu 22.04.5 LTS', version: '22.04', osBuild: null, agentVersion: SIM_LINUX_AGENT_VERSION, legacy: false, role: 'server' }, 10],
  [{ key: 'ubuntu-2404', family: 'linux', osPlatform: 'Linux', osVersion: 'Ubuntu 24.04.1 LTS', version: '24.04', osBuild: null, agentVersion: SIM_LINUX_AGENT_VERSION, legacy: false, role: 'server' }, 7],
  [{ key: 'debian-12', family: 'linux', osPlatform: 'Linux', osVersion: 'Debian GNU/Linux 12 (bookworm)', version: '12', osBuild: null, agentVersion: SIM_LINUX_AGENT_VERSION, legacy: false, role: 'server' }, 5],
  [{ key: 'rhel-94', family: 'linux', osPlatform: 'Linux', osVersion: 'Red Hat Enterprise Linux 9.4 (Plow)', version: '9.4', osBuild: null, agentVersion: SIM_LINUX_AGENT_VERSION, legacy: false, role: 'server' }, 5],
];

/** Too old for the action: Windows 10 before 1703 → ClientVersionNotSupported; unsupported platforms →
 *  OsPlatformNotSupported; Linux agents older than the action's minimum → ClientVersionNotSupported. */
export const LEGACY_OS_VARIANTS: readonly (readonly [OsVariant, number])[] = [
  [{ key: 'win10-1607', family: 'windows', osPlatform: 'Windows10', osVersion: null, version: '1607', osBuild: 14393, agentVersion: '10.3720.14393.2248', legacy: true, role: 'client' }, 40],
  [{ key: 'win10-1511', family: 'windows', osPlatform: 'Windows10', osVersion: null, version: '1511', osBuild: 10586, agentVersion: '10.3720.10586.545', legacy: true, role: 'client' }, 10],
  [{ key: 'win7-sp1', family: 'windows', osPlatform: 'Windows7', osVersion: null, version: 'SP1', osBuild: 7601, agentVersion: '10.7146.7601.24544', legacy: true, role: 'client' }, 15],
  [{ key: 'ws2008r2', family: 'windows', osPlatform: 'WindowsServer2008R2', osVersion: null, version: 'SP1', osBuild: 7601, agentVersion: '10.7146.7601.24544', legacy: true, role: 'server' }, 15],
  [{ key: 'ubuntu-2004-old-agent', family: 'linux', osPlatform: 'Linux', osVersion: 'Ubuntu 20.04.6 LTS', version: '20.04', osBuild: null, agentVersion: '0.0.9', legacy: true, role: 'server' }, 20],
];

/** Simulated devices perform MDE's actions only; vault restore is the real agent's. */
export function capabilitiesOf(os: OsVariant): ActionType[] {
  const mde: readonly string[] = MDE_ACTION_TYPES;
  if (os.family === 'linux') return (Object.keys(MIN_LINUX_AGENT_VERSION) as ActionType[]).filter((t) => mde.includes(t));
  return [...MDE_ACTION_TYPES];
}

const digest = (alg: 'sha1' | 'sha256', label: string) => createHash(alg).update(label).digest('hex');

/** A file whose content is identified by `label`: the same label gives the same hashes on every device. */
export function virtualFile(
  label: string,
  path: string,
  size: number,
  signer: TrustSigner,
  publisher: string | null,
  script = false,
): VirtualFile {
  return {
    path,
    sha1: digest('sha1', `tourniquet-sim-file\n${label}`),
    sha256: digest('sha256', `tourniquet-sim-file\n${label}`),
    size,
    signer,
    publisher,
    ...(script ? { script: true } : {}),
  };
}

/** Files every device of an OS variant ships, shared (never mutated) by all of them. */
const images = new Map<string, readonly VirtualFile[]>();

export function imageFiles(os: OsVariant): readonly VirtualFile[] {
  const cached = images.get(os.key);
  if (cached) return cached;
  const f = (path: string, size: number, signer: TrustSigner, publisher: string) =>
    virtualFile(`${os.key}|${path}`, path, size, signer, publisher);
  const files =
    os.family === 'windows'
      ? [
          f('C:\\Windows\\System32\\svchost.exe', 57_360, 'Microsoft', 'Microsoft Windows'),
          f('C:\\Windows\\explorer.exe', 5_345_280, 'Microsoft', 'Microsoft Windows'),
          f('C:\\Windows\\System32\\lsass.exe', 59_456, 'Microsoft', 'Microsoft Windows'),
          f('C:\\Windows\\System32\\services.exe', 719_360, 'Microsoft', 'Microsoft Windows'),
          f('C:\\Windows\\System32\\cmd.exe', 323_584, 'Microsoft', 'Microsoft Windows'),
          f('C:\\Windows\\System32\\notepad.exe', 201_216, 'Microsoft', 'Microsoft Windows'),
          f('C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', 455_680, 'Microsoft', 'Microsoft Windows'),
          f(
            'C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\MsMpEng.exe',
            133_048,
            'Microsoft',
            'Microsoft Corporation',
          ),
        ]
      : [
          f('/usr/lib/systemd/systemd', 96_312, 'PackageManager', 'package: systemd'),
          f('/usr/bin/bash', 1_396_520, 'PackageManager', 'package: bash'),
          f('/usr/sbin/sshd', 921_336, 'PackageManager', 'package: openssh-server'),
          f('/usr/sbin/cron', 60_184, 'PackageManager', 'package: cron'),
          f('/usr/bin/python3.12', 8_019_136, 'PackageManager', 'package: python3'),
          f('/usr/bin/curl', 280_080, 'PackageManager', 'package: curl'),
        ];
  images.set(os.key, files);
  return files;
}

export interface AppTemplate {
  name: string;
  path: string;
  size: number;
  signer: TrustSigner;
  publisher: string | null;
  /** Child processes it usually has running. */
  children: number;
}

export const WINDOWS_APPS: readonly AppTemplate[] = [
  { name: 'chrome.exe', path: 'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe', size: 3_155_296, signer: 'TrustedPublisher', publisher: 'Google LLC', children: 3 },
  { name: 'firefox.exe', path: 'C:\\Program Files\\Mozilla Firefox\\firefox.exe', size: 683_944, signer: 'TrustedPublisher', publisher: 'Mozilla Corporation', children: 2 },
  { name: 'Zoom.exe', path: 'C:\\Program Files\\Zoom\\bin\\Zoom.exe', size: 428_480, signer: 'TrustedPublisher', publisher: 'Zoom Video Communications, Inc.', children: 0 },
  { name: 'WINWORD.EXE', path: 'C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE', size: 1_914_200, signer: 'Microsoft', publisher: 'Microsoft Corporation', children: 0 },
  { name: '7zFM.exe', path: 'C:\\Program Files\\7-Zip\\7zFM.exe', size: 948_224, signer: null, publisher: null, children: 0 },
];

export const LINUX_APPS: readonly AppTemplate[] = [
  { name: 'nginx', path: '/usr/sbin/nginx', size: 1_239_640, signer: 'PackageManager', publisher: 'package: nginx', children: 2 },
  { name: 'dockerd', path: '/usr/bin/dockerd', size: 92_041_232, signer: 'PackageManager', publisher: 'package: docker-ce', children: 1 },
  { name: 'postgres', path: '/usr/lib/postgresql/16/bin/postgres', size: 9_810_024, signer: 'PackageManager', publisher: 'package: postgresql-16', children: 4 },
  { name: 'node', path: '/opt/app/bin/node', size: 96_153_112, signer: null, publisher: null, children: 0 },
];

/** Suspicious, unsigned files a fleet may carry; `prevalence` is the share of devices that have one. */
export interface SuspectTemplate {
  name: string;
  dir: string;
  size: number;
  prevalence: number;
  running: number;
  script?: boolean;
}

export const WINDOWS_SUSPECTS: readonly SuspectTemplate[] = [
  { name: 'invoice_2026_11.exe', dir: 'C:\\Users\\{user}\\Downloads', size: 482_816, prevalence: 0.08, running: 0.6 },
  { name: 'svch0st.exe', dir: 'C:\\Users\\{user}\\AppData\\Local\\Temp', size: 73_728, prevalence: 0.04, running: 0.9 },
  { name: 'AdobeUpdateHelper.exe', dir: 'C:\\ProgramData\\AdobeUpdate', size: 1_204_224, prevalence: 0.03, running: 0.7 },
  { name: 'keygen_pro.exe', dir: 'C:\\Users\\{user}\\Downloads', size: 2_310_144, prevalence: 0.02, running: 0.3 },
  { name: 'mimikatz.exe', dir: 'C:\\Users\\Public', size: 1_250_056, prevalence: 0.01, running: 0.5 },
];

export const LINUX_SUSPECTS: readonly SuspectTemplate[] = [
  { name: 'kdevtmpfsi', dir: '/tmp', size: 2_269_704, prevalence: 0.06, running: 0.9 },
  { name: 'kinsing', dir: '/var/tmp', size: 16_896_496, prevalence: 0.04, running: 0.8 },
  { name: 'xmrig', dir: '/dev/shm/.s', size: 8_104_960, prevalence: 0.03, running: 0.9 },
  { name: 'update.sh', dir: '/tmp', size: 1_812, prevalence: 0.05, running: 0.6, script: true },
];

export const WINDOWS_USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy'];
export const LINUX_ROLES = ['web', 'api', 'db', 'cache', 'worker', 'build', 'k8s-node', 'bastion'];
export const WINDOWS_SERVER_ROLES = ['DC', 'FS', 'SQL', 'APP', 'RDS', 'EXCH'];
