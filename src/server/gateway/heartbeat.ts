// One interval for every device connection: pings, reaps the silent, times out handshakes and spreads the
// throttled lastSeen writes. Per-connection timers would cost more than the whole tick at 20k devices.
import { CLOSE_CODES } from '../../protocol/codes.ts';
import type { DeviceConnection } from './connection.ts';

/** lastSeen (and the IP sightings behind findbyip, whose window is ±15 min) are rewritten this often. */
export const LAST_SEEN_WRITE_MS = 5 * 60_000;
/** Writes started per tick at most, so a fleet that connected together does not write together. */
const TOUCHES_PER_TICK = 200;
const TICK_MS = 1000;

export interface HeartbeatOptions {
  connections: () => Iterable<DeviceConnection>;
  heartbeatMs: number;
  idleMs: number;
  helloTimeoutMs: number;
  touch: (conn: DeviceConnection) => void;
  helloTimedOut: (conn: DeviceConnection) => void;
}

export function startHeartbeat(o: HeartbeatOptions): () => void {
  /** Returns whether it started a lastSeen write. */
  const tickOne = (c: DeviceConnection, now: number, mayTouch: boolean): boolean => {
    if (c.state === 'handshake' || c.state === 'authenticating') {
      if (now - c.openedAt > o.helloTimeoutMs) {
        o.helloTimedOut(c);
        c.close(CLOSE_CODES.authenticationFailed, 'no hello in time');
      }
      return false;
    }
    if (c.state !== 'ready') return false;
    if (now - c.lastActivityAt > o.idleMs) {
      c.ws.terminate(); // dead peer: no close handshake to wait for
      return false;
    }
    if (now - c.lastPingAt >= o.heartbeatMs && c.isOpen) {
      c.lastPingAt = now;
      c.ws.ping();
    }
    if (mayTouch && now - c.lastSeenWrittenAt >= LAST_SEEN_WRITE_MS) {
      c.lastSeenWrittenAt = now;
      o.touch(c);
      return true;
    }
    return false;
  };

  const timer = setInterval(() => {
    const now = Date.now();
    let touches = TOUCHES_PER_TICK;
    for (const c of o.connections()) {
      try {
        if (tickOne(c, now, touches > 0)) touches--;
      } catch {
        c.ws.terminate(); // a socket we cannot look after is not kept
      }
    }
  }, Math.min(TICK_MS, o.heartbeatMs));
  timer.unref();
  return () => clearInterval(timer);
}
