// Durable small-file writes: write a temp file (O_EXCL, 0600), fsync it, rename it over the target, fsync the
// directory. After a crash the target is either the old or the new content, never a torn mix.
import { closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/** Replaces `path` atomically and durably with `data` (mode 0600). */
export function writeFileDurable(path: string, data: string | Buffer, opts: { syncDir?: boolean } = {}): void {
  const dir = posix.dirname(path);
  const tmp = posix.join(dir, `.${posix.basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  if (opts.syncDir !== false) fsyncDir(dir);
}

/** Unlinks `path` (ignoring ENOENT) and fsyncs its directory. */
export function unlinkDurable(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fsyncDir(posix.dirname(path));
}
