// An in-memory memo of file hashes keyed by file identity (dev, ino, size, mtime, ctime), so re-scans during
// one action and later actions never hash the same unchanged file twice. A changed file changes its ctime,
// which user space cannot set, so a hit is always the current content's hash.
import type { FileIdentity } from './hashFile.ts';
import { identityKey } from './hashFile.ts';

export interface CachedHashes {
  sha1: string;
  sha256: string | null;
}

/** Consulted on a miss, e.g. the persistent hash index. */
export type HashOracle = (identity: FileIdentity) => CachedHashes | null;

export class HashCache {
  private readonly entries = new Map<string, CachedHashes>();

  constructor(
    private readonly capacity = 8192,
    private readonly oracle: HashOracle | null = null,
  ) {}

  get(identity: FileIdentity): CachedHashes | null {
    const key = identityKey(identity);
    const hit = this.entries.get(key);
    if (hit) {
      // Refresh recency: Map iteration order is insertion order, so re-inserting makes it the newest.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const known = this.oracle?.(identity) ?? null;
    if (known) this.put(identity, known);
    return known;
  }

  put(identity: FileIdentity, hashes: CachedHashes): void {
    const key = identityKey(identity);
    this.entries.delete(key);
    this.entries.set(key, hashes);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
