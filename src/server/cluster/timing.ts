// How often nodes heartbeat, when a silent node counts as dead, and how often lost notifications are made up
// for — all derived from the device idle timeout, the one liveness setting operators already tune.

export interface ClusterTiming {
  /** A node silent for this long is dead: its devices become Inactive (≈ the device idle timeout). */
  deadAfterMs: number;
  /** Heartbeat (and dead-node check) period: a quarter of deadAfterMs, so three missed beats are tolerated. */
  heartbeatMs: number;
  /** Period of the safety sweep that re-sends Pending actions whose notification may have been lost. */
  redeliverMs: number;
}

export function clusterTiming(deviceIdleTimeoutSec: number): ClusterTiming {
  const deadAfterMs = Math.max(2000, Math.round(deviceIdleTimeoutSec * 1000));
  return {
    deadAfterMs,
    heartbeatMs: Math.max(500, Math.floor(deadAfterMs / 4)),
    redeliverMs: Math.min(30_000, Math.max(1000, Math.floor(deadAfterMs / 3))),
  };
}
