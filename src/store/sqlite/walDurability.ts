// Durable acknowledgements without an fsync on the event loop (the SQLite store in place, on a file).
//
// With synchronous=FULL, SQLite fsyncs inside COMMIT and, every 1,000 WAL pages, inside the automatic checkpoint
// (the WAL before copying, the database file after), all on the calling thread — here the one serving HTTP and the
// devices' connections, which stood still for every fsync. So the connection runs with synchronous=OFF and without
// automatic checkpoints, and this class keeps FULL's promise that what was acknowledged is on disk:
// - a write is reported done only after an fdatasync of the WAL that began after its COMMIT returned. It runs on
//   libuv's thread pool; the commits that land while one is under way share the next one.
// - checkpoints happen here, after every frame they copy is on disk, and the database file is fdatasynced before
//   anyone may reuse the WAL from its start (that reuse is what could otherwise lose checkpointed pages to a power
//   cut). A second connection holds the write lock from the checkpoint until that fdatasync is done, so no writer of
//   this process or another restarts the WAL in between; opening also fsyncs the database file, in case a process
//   died inside that window.
// - before the connection closes (SQLite checkpoints and deletes the WAL then), it goes back to synchronous=FULL.
// Between a COMMIT and its fdatasync, readers may already see a write that a power cut could still undo; nobody is
// told it happened (no 201, no dispatch to a device) before it is on disk. An fdatasync that fails leaves the store
// refusing every later write: nothing is acknowledged from a disk that lost data.
import { closeSync, fdatasync, fsyncSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { openConnection } from './connection.ts';

/** WAL frames not yet copied into the database file that start a checkpoint (SQLite's own default, 1,000 pages). */
const CHECKPOINT_FRAMES = 1000;

// The wal-index header at the start of the -shm file (https://www.sqlite.org/walformat.html, 2.1), in the host's
// byte order: mxFrame (the last valid frame) at 16; nBackfill (frames already copied) at 96.
const SHM_HEADER_BYTES = 100;
const MX_FRAME_OFFSET = 16;
const N_BACKFILL_OFFSET = 96;
const LITTLE_ENDIAN = endianness() === 'LE';

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export class WalDurability {
  private waiting: Waiter[] = [];
  private syncing = false;
  private readonly shmHeader = Buffer.alloc(SHM_HEADER_BYTES);
  private closed = false;
  private failure: Error | null = null;

  private constructor(
    private readonly main: BetterSqlite3.Database,
    private readonly lockHolder: BetterSqlite3.Database,
    private readonly walFd: number,
    private readonly dbFd: number,
    private readonly shmFd: number,
  ) {}

  /**
   * Takes over durability for `main`, a WAL-mode connection to `file` whose earlier writes were made with
   * synchronous=FULL (so they are on disk already).
   */
  static open(main: BetterSqlite3.Database, file: string, busyTimeoutMs: number): WalDurability {
    const fds: number[] = [];
    let lockHolder: BetterSqlite3.Database | null = null;
    try {
      // The WAL and -shm exist from the first read in WAL mode; they are opened, never created, here.
      for (const path of [`${file}-wal`, file, `${file}-shm`]) fds.push(openSync(path, 'r'));
      // A checkpoint a dead process copied but did not sync; the -wal file's directory entry (FULL syncs both).
      fsyncSync(fds[1]!);
      const dir = openSync(dirname(file), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
      lockHolder = openConnection(file, { busyTimeoutMs });
      lockHolder.pragma('wal_autocheckpoint = 0');
      main.pragma('wal_autocheckpoint = 0');
      main.pragma('synchronous = OFF');
    } catch (err) {
      lockHolder?.close();
      for (const fd of fds) closeSync(fd);
      main.pragma('synchronous = FULL');
      throw err;
    }
    return new WalDurability(main, lockHolder, fds[0]!, fds[1]!, fds[2]!);
  }

  /** After a write committed: resolves once it is on disk (an fdatasync of the WAL begun after this call). */
  synced(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.syncing) this.syncNext();
    });
  }

  private syncNext(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.syncing = true;
    fdatasync(this.walFd, (err) => {
      this.syncing = false;
      if (err) this.failure ??= err;
      for (const w of batch) {
        if (err) w.reject(err);
        else w.resolve();
      }
      if (this.waiting.length > 0) this.syncNext();
    });
  }

  /** The last valid frame of the WAL and how many frames are already copied, as the wal-index says. */
  private walIndex(): { mxFrame: number; nBackfill: number } {
    readSync(this.shmFd, this.shmHeader, 0, SHM_HEADER_BYTES, 0);
    const read = (at: number) => (LITTLE_ENDIAN ? this.shmHeader.readUInt32LE(at) : this.shmHeader.readUInt32BE(at));
    return { mxFrame: read(MX_FRAME_OFFSET), nBackfill: read(N_BACKFILL_OFFSET) };
  }

  /**
   * Called after a commit, still holding this process's write lock: copies the WAL into the database file once it
   * holds CHECKPOINT_FRAMES frames not yet copied. Returns once the database file is on disk.
   */
  async checkpointIfDue(): Promise<void> {
    if (this.closed || this.failure) return;
    const before = this.walIndex();
    if (before.mxFrame - before.nBackfill < CHECKPOINT_FRAMES) return;
    // Another process's writer must not restart the WAL before the database file is on disk: hold the lock. If that
    // process is writing now (busy), the checkpoint waits for a later commit.
    try {
      this.lockHolder.exec('begin immediate');
    } catch {
      return;
    }
    try {
      // Every frame the checkpoint may copy must be on disk first (FULL syncs the WAL inside its checkpoints too).
      // Synced under the lock: a commit another process made before we took it may not be synced yet, and copying
      // its pages into the database file ahead of its WAL frames could leave a torn database after a power cut.
      await this.synced();
      // Read under the lock: no writer can restart the WAL (and so reset the count) until the rollback below.
      const copied = this.walIndex().nBackfill;
      const [r] = this.main.pragma('wal_checkpoint(PASSIVE)') as { checkpointed: number }[];
      // `checkpointed` counts every frame copied so far; only newly copied pages need the database file synced (a
      // reader of another process can hold a checkpoint back, and then every commit comes here).
      if (r && r.checkpointed > copied) await datasync(this.dbFd);
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      this.lockHolder.exec('rollback');
    }
  }

  /** Before the main connection closes (its closing checkpoint must sync as FULL does), after the last write. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.syncing || this.waiting.length > 0) await this.synced().catch(() => undefined);
    this.main.pragma('synchronous = FULL');
    this.lockHolder.close();
    for (const fd of [this.walFd, this.dbFd, this.shmFd]) closeSync(fd);
  }
}
