// A directory only the agent's user may enter: created 0700, never a symlink, owned by us, tightened to 0700
// if someone loosened it. The state directory, the vault and its journal are all private directories.
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { posix } from 'node:path';

export function ensurePrivateDir(dir: string): string {
  if (!posix.isAbsolute(dir)) throw new Error(`directory must be an absolute path: ${dir}`);
  const path = posix.normalize(dir);
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const st = lstatSync(path);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new Error(`${path} must be a real directory, not a symlink or file`);
  const uid = process.geteuid?.() ?? 0;
  if (st.uid !== uid) throw new Error(`${path} is owned by uid ${st.uid}, expected ${uid}`);
  if ((st.mode & 0o777) !== 0o700) chmodSync(path, 0o700);
  return path;
}
