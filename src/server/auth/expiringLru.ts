// A bounded, least-recently-used map whose entries also carry a hard expiry. Auth caches use it so that a flood
// of distinct keys cannot grow memory without limit and no cached verdict can outlive what it vouches for.
// Recency is kept to the second: a hit moves its key to the young end at most once a second, since moving costs
// two more Map operations on every API request (the token cache is read on each).

/** How stale a key's place in the recency order may get before a hit moves it. */
const TOUCH_EVERY_MS = 1000;

export class ExpiringLru<K, V> {
  private readonly entries = new Map<K, { value: V; expiresAtMs: number; touchedMs: number }>();

  constructor(private readonly maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
  }

  get(key: K, nowMs: number): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAtMs <= nowMs) {
      this.entries.delete(key);
      return undefined;
    }
    if (nowMs - entry.touchedMs >= TOUCH_EVERY_MS) {
      // Re-inserting moves the key to the young end of the Map's insertion order.
      entry.touchedMs = nowMs;
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry.value;
  }

  set(key: K, value: V, expiresAtMs: number): void {
    this.entries.delete(key);
    // Just inserted, so youngest; the first hit records the time in the caller's clock.
    this.entries.set(key, { value, expiresAtMs, touchedMs: -Infinity });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
