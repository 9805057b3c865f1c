// Simulator profiles: how fast simulated devices answer, how often they fail or drop off, and which OS mix they run.

export const PROFILE_NAMES = ['instant', 'realistic', 'mde', 'chaos', 'legacy'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export interface Latency {
  median: number;
  sigma: number;
  min: number;
  max: number;
}

export interface Profile {
  name: ProfileName;
  /** Receipt → ack. */
  ack: Latency;
  /** Ack → result. */
  execute: Latency;
  /** Chance an action fails for no scripted reason (access denied, file in use, ...). */
  failureRate: number;
  /** Chance the device drops its connection while executing (the result waits in its outbox). */
  disconnectMidAction: number;
  /** Fraction of devices that flap (short, frequent disconnects) once the fleet is up. */
  flapping: number;
  /** Fraction of devices that go offline for longer stretches once the fleet is up. */
  intermittent: number;
  /** Fraction of devices running an OS or agent too old for StopAndQuarantineFile. */
  legacyOs: number;
}

const fixed = (ms: number): Latency => ({ median: ms, sigma: 0, min: ms, max: ms });

/** A fleet that behaves: no failures, no disconnects, every device on a supported OS. */
const NO_FAULTS = { failureRate: 0, disconnectMidAction: 0, flapping: 0, intermittent: 0, legacyOs: 0 } as const;

const realistic: Profile = {
  name: 'realistic',
  ack: { median: 120, sigma: 0.6, min: 20, max: 600 },
  execute: { median: 900, sigma: 0.6, min: 250, max: 4000 },
  ...NO_FAULTS,
};

export const PROFILES: Record<ProfileName, Profile> = {
  instant: { name: 'instant', ack: fixed(0), execute: fixed(0), ...NO_FAULTS },
  realistic,
  // Microsoft's documented sample took ~34 s from creation to Succeeded.
  mde: {
    name: 'mde',
    ack: { median: 3000, sigma: 0.4, min: 1000, max: 8000 },
    execute: { median: 30_000, sigma: 0.15, min: 20_000, max: 45_000 },
    ...NO_FAULTS,
  },
  chaos: {
    name: 'chaos',
    ack: { median: 200, sigma: 0.9, min: 10, max: 3000 },
    execute: { median: 1500, sigma: 0.9, min: 100, max: 15_000 },
    failureRate: 0.15,
    disconnectMidAction: 0.1,
    flapping: 0.1,
    intermittent: 0.1,
    legacyOs: 0.05,
  },
  // realistic timing, with two devices in five on an OS MDE no longer supports.
  legacy: { ...realistic, name: 'legacy', legacyOs: 0.4 },
};

export function isProfileName(s: string): s is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(s);
}

export function profileNamed(s: string): Profile {
  if (!isProfileName(s)) throw new Error(`unknown simulator profile "${s}" (one of ${PROFILE_NAMES.join(', ')})`);
  return PROFILES[s];
}
