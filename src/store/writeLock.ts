// SQLite allows one writer per database file. Two store instances in ONE process (tests, the CLI inside a demo
// server) would otherwise meet SQLite's busy handler, which sleeps synchronously and so blocks the very event
// loop the lock holder needs to finish: a deadlock until busy_timeout. Writers in one process therefore queue
// here, asynchronously, per file; other processes are still handled by SQLite's own locking and busy_timeout.

const tails = new Map<string, Promise<void>>();

/** Runs `fn` when every earlier writer on `key` has finished. */
export async function withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = tails.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = previous.then(() => mine);
  tails.set(key, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (tails.get(key) === tail) tails.delete(key);
  }
}
