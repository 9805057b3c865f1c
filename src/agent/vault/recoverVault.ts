// Crash recovery, run when the vault is opened: finishes or undoes every operation the journal says was in
// flight. A quarantine whose metadata exists (so its content was verified and fsynced) is rolled forward; any
// earlier state is rolled back, and the original, which is only touched after the metadata exists, is intact.
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { hashFile } from '../hashIndex/hashFile.ts';
import { fsyncDir, unlinkDurable } from './durable.ts';
import type { ItemMetadata } from './itemMetadata.ts';
import { readMetadata } from './itemMetadata.ts';
import { removeNames } from './quarantineFile.ts';
import { markRestored } from './restoreItem.ts';
import type { VaultStore } from './vaultStore.ts';
import { errText } from './vaultStore.ts';

export interface RecoveryReport {
  rolledForward: string[];
  rolledBack: string[];
  restoresCleaned: string[];
  removedTemp: string[];
  problems: string[];
}

/**
 * Finishes or undoes every operation a crash interrupted. A quarantine whose metadata was written (so its
 * content was verified and fsynced) is rolled forward: the item is re-verified, then the original names are
 * removed if they still are the same file. Any earlier state is rolled back: the partial item is deleted,
 * and the original, which is only ever touched after the metadata exists, is still in place.
 */
export function recoverVault(store: VaultStore): RecoveryReport {
  const report: RecoveryReport = { rolledForward: [], rolledBack: [], restoresCleaned: [], removedTemp: [], problems: [] };
  const { entries, broken } = store.journal.list();
  for (const name of broken) {
    report.problems.push(`unreadable journal entry ${name}`);
    const m = /^([0-9a-f]{32})\.quarantine\.json$/.exec(name);
    if (m) recoverQuarantine(store, m[1]!, report);
  }
  for (const entry of entries) {
    if (entry.op === 'quarantine') recoverQuarantine(store, entry.id, report);
    else recoverRestore(store, entry.id, entry.tmpPath, entry.target, report);
  }
  // Temp files whose journal entry is gone can only be leftovers of a finished or abandoned write.
  for (const dirPath of [store.dir, store.journal.dir]) {
    for (const name of readdirSync(dirPath)) {
      const tmpItem = /^tmp-([0-9a-f]{32})$/.exec(name);
      const tmpDurable = /^\..+\.[0-9a-f]{12}\.tmp$/.test(name);
      if (!(tmpItem || tmpDurable)) continue;
      try {
        unlinkSync(posix.join(dirPath, name));
        report.removedTemp.push(posix.join(dirPath, name));
      } catch (err) {
        report.problems.push(`cannot remove ${name}: ${errText(err)}`);
      }
    }
    fsyncDir(dirPath);
  }
  // Data files without metadata and without a journal entry should not exist; keep them and say so.
  for (const name of readdirSync(store.dir)) {
    const m = /^([0-9a-f]{32})\.data$/.exec(name);
    if (m && !existsSync(store.metaPath(m[1]!))) report.problems.push(`orphan data file ${name} kept for inspection`);
  }
  return report;
}

function recoverQuarantine(store: VaultStore, id: string, report: RecoveryReport): void {
  try {
    unlinkSync(store.tmpPath(id));
    report.removedTemp.push(store.tmpPath(id));
  } catch {
    // never created or already renamed
  }
  let meta: ItemMetadata | null = null;
  if (existsSync(store.metaPath(id))) {
    try {
      meta = readMetadata(store.metaPath(id), store.keys.mac, id);
    } catch (err) {
      report.problems.push(`item ${id}: ${errText(err)}; kept for inspection`);
      store.journal.remove(id, 'quarantine');
      return;
    }
  }
  if (meta && existsSync(store.dataPath(id)) && store.verify(id)) {
    removeNames(meta, () => {});
    if (meta.paths.length > 0 && !meta.paths.some((p) => p.removed)) {
      // The original could not be removed (it changed, or EPERM): keep one copy only, the original.
      unlinkDurable(store.metaPath(id));
      unlinkDurable(store.dataPath(id));
      report.rolledBack.push(id);
    } else {
      store.writeMeta(meta);
      report.rolledForward.push(id);
    }
  } else if (meta && meta.paths.some((p) => p.removed)) {
    // Cannot happen with fsync ordering short of disk corruption: never delete what may be the last copy.
    report.problems.push(`item ${id} fails verification but its original was already removed; kept for inspection`);
  } else {
    for (const p of [store.metaPath(id), store.dataPath(id)]) {
      try {
        unlinkSync(p);
      } catch {
        // absent
      }
    }
    fsyncDir(store.dir);
    report.rolledBack.push(id);
  }
  store.journal.remove(id, 'quarantine');
}

function recoverRestore(store: VaultStore, id: string, tmpPath: string, target: string, report: RecoveryReport): void {
  const base = posix.basename(tmpPath);
  if (base.startsWith(`.tourniquet-restore-${id}-`)) {
    try {
      unlinkSync(tmpPath);
      fsyncDir(posix.dirname(tmpPath));
    } catch {
      // already renamed into place, or never created
    }
  }
  try {
    const meta = readMetadata(store.metaPath(id), store.keys.mac, id);
    // Died after the rename but before the metadata update: the file is back, say so.
    if (meta.state === 'quarantined' && existsSync(target) && hashFile(target).sha1 === meta.sha1) {
      markRestored(store, meta, target, ['restore completed during crash recovery']);
    }
  } catch (err) {
    report.problems.push(`restore of ${id}: ${errText(err)}`);
  }
  store.journal.remove(id, 'restore');
  report.restoresCleaned.push(id);
}
