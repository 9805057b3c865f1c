// The vault's write-ahead journal: one fsynced JSON file per operation in flight, written before the
// operation touches anything and removed after it is complete. recoverVault() finishes or undoes whatever a
// crash interrupted, using it.
import { readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { unlinkDurable, writeFileDurable } from './durable.ts';

export interface QuarantineJournal {
  op: 'quarantine';
  id: string;
  startedAt: string;
  /** Names that will be removed once the item is stored (all names of one inode). */
  paths: string[];
  /** The identity those names had when the operation began (decimal strings). */
  identity: { dev: string; ino: string; size: string; mtimeNs: string };
}

export interface RestoreJournal {
  op: 'restore';
  id: string;
  startedAt: string;
  /** The temp file the content is decrypted into, next to the target. */
  tmpPath: string;
  target: string;
}

export type JournalEntry = QuarantineJournal | RestoreJournal;

export const ITEM_ID_RE = /^[0-9a-f]{32}$/;

export class Journal {
  constructor(readonly dir: string) {}

  private file(id: string, op: JournalEntry['op']): string {
    if (!ITEM_ID_RE.test(id)) throw new Error(`invalid vault item id: ${id}`);
    return posix.join(this.dir, `${id}.${op}.json`);
  }

  write(entry: JournalEntry): void {
    writeFileDurable(this.file(entry.id, entry.op), JSON.stringify(entry));
  }

  remove(id: string, op: JournalEntry['op']): void {
    unlinkDurable(this.file(id, op));
  }

  /** Every entry on disk; entries that cannot be parsed are returned as `broken` names. */
  list(): { entries: JournalEntry[]; broken: string[] } {
    const entries: JournalEntry[] = [];
    const broken: string[] = [];
    for (const name of readdirSync(this.dir)) {
      const m = /^([0-9a-f]{32})\.(quarantine|restore)\.json$/.exec(name);
      if (!m) {
        if (!name.startsWith('.')) broken.push(name);
        continue;
      }
      try {
        const e = JSON.parse(readFileSync(posix.join(this.dir, name), 'utf8')) as JournalEntry;
        if (e.id !== m[1] || e.op !== m[2]) throw new Error('mismatch');
        entries.push(e);
      } catch {
        broken.push(name);
      }
    }
    return { entries, broken };
  }
}
