// Inode flags that block removal: immutable (+i) and append-only (+a) make unlink and rename fail with EPERM
// (endpoint-agent.md §3.8). Node has no FS_IOC_GETFLAGS, so e2fsprogs' lsattr/chattr are used when present.
// They are run synchronously so that no process scan can ever see them (their argument is the file itself).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface RemovalFlags {
  immutable: boolean;
  appendOnly: boolean;
  /** False when the flags could not be read (no e2fsprogs, or the filesystem has no such flags). */
  captured: boolean;
  note?: string;
}

function tool(name: 'lsattr' | 'chattr'): string | null {
  return [`/usr/bin/${name}`, `/bin/${name}`, `/usr/sbin/${name}`, `/sbin/${name}`].find((p) => existsSync(p)) ?? null;
}

/** Reads +i/+a of a regular file. Paths must be absolute (so none can be taken for an option). */
export function readRemovalFlags(path: string): RemovalFlags {
  const lsattr = tool('lsattr');
  if (!lsattr) return { immutable: false, appendOnly: false, captured: false, note: 'lsattr not installed' };
  if (!path.startsWith('/')) throw new Error(`absolute path required: ${path}`);
  try {
    const out = execFileSync(lsattr, ['-d', path], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
    const flags = out.trim().split(/\s+/)[0] ?? '';
    return { immutable: flags.includes('i'), appendOnly: flags.includes('a'), captured: true };
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    return { immutable: false, appendOnly: false, captured: false, note: stderr || 'lsattr failed' };
  }
}

/** Sets or clears +i/+a. Throws with chattr's message when it fails. */
export function setRemovalFlags(path: string, flags: { immutable?: boolean; appendOnly?: boolean }, on: boolean): void {
  const chattr = tool('chattr');
  if (!chattr) throw new Error('chattr not installed');
  if (!path.startsWith('/')) throw new Error(`absolute path required: ${path}`);
  const letters = `${flags.immutable ? 'i' : ''}${flags.appendOnly ? 'a' : ''}`;
  if (!letters) return;
  try {
    execFileSync(chattr, [`${on ? '+' : '-'}${letters}`, path], { timeout: 5000, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`chattr ${on ? '+' : '-'}${letters} ${path} failed: ${stderr || (err as Error).message}`);
  }
}
