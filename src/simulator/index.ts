// The simulator's public surface, for the CLI, the demo and tests.
export { DEMO_SHA1, DEMO_SHA256 } from './catalog.ts';
export { Fleet, type FleetOptions, type FleetStatus, type DeviceSummary, type FaultTarget } from './fleet.ts';
export { registerSimulatorAdmin, ADMIN_PREFIX, type SimulatorAdminOptions } from './adminApi.ts';
export { runSimulate, DEFAULT_SIMULATED_DEVICES, type RunSimulateOptions, type RunningSimulation } from './runSimulate.ts';
export { PROFILE_NAMES, type ProfileName } from './profiles.ts';
export { FAULT_KINDS, type Fault, type FaultKind } from './simulatedDevice.ts';
export type { JournalEntry } from './journal.ts';
