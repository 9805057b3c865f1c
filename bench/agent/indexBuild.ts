// The agent's persistent hash index over a generated tree: a cold build (fresh index, first scan), a warm
// rescan with nothing changed, and warm look-ups of one SHA-1 among all indexed files (hits and misses).
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { openAgentRuntime } from '../../src/agent/runtime.ts';
import { HashIndex } from '../../src/agent/hashIndex/hashIndex.ts';
import type { ScanReport } from '../../src/agent/hashIndex/hashIndex.ts';
import { hashFile } from '../../src/agent/hashIndex/hashFile.ts';
import { generateTree } from './fileTree.ts';
import { MiB, percentiles, round } from './stats.ts';

export interface IndexBuildOptions {
  dir: string;
  files: number;
  largeFiles: number;
  lookups: number;
}

function scanSummary(r: ScanReport) {
  return {
    seconds: round(r.durationMs / 1000, 2),
    filesPerSecond: round(r.files / (r.durationMs / 1000), 0),
    files: r.files,
    hashed: r.hashed,
    unchanged: r.unchanged,
    removed: r.removed,
    errors: r.errors,
  };
}

export async function benchIndexBuild(opts: IndexBuildOptions) {
  const tree = await generateTree(join(opts.dir, 'tree'), { files: opts.files, large: opts.largeFiles });
  const stateDir = join(opts.dir, 'index-state');
  const rt = openAgentRuntime(stateDir, { roots: [tree.root] });
  try {
    const cold = await rt.index.scan();
    if (cold.files !== tree.files || cold.errors !== 0) throw new Error(`cold scan saw ${cold.files} files, ${cold.errors} errors; expected ${tree.files}, 0`);
    const warm = await rt.index.scan();
    if (warm.unchanged !== tree.files) throw new Error(`warm rescan re-hashed ${warm.hashed} files`);

    // The index must agree with a direct hash of the file.
    const known = tree.sample.map((path) => {
      const row = rt.index.lookupPath(path);
      if (!row?.sha1) throw new Error(`${path} not indexed`);
      return { path, sha1: row.sha1 };
    });
    for (const k of known.slice(0, 20)) {
      if (hashFile(k.path).sha1 !== k.sha1) throw new Error(`index holds a wrong SHA-1 for ${k.path}`);
    }

    const hitMs: number[] = [];
    for (let i = 0; i < opts.lookups; i++) {
      const k = known[(i * 7919) % known.length]!;
      const t = performance.now();
      const rows = rt.index.lookupSha1(k.sha1);
      hitMs.push(performance.now() - t);
      if (!rows.some((r) => r.path === k.path)) throw new Error(`look-up of ${k.sha1} missed ${k.path}`);
    }
    const missMs: number[] = [];
    for (let i = 0; i < Math.ceil(opts.lookups / 4); i++) {
      const sha1 = randomBytes(20).toString('hex');
      const t = performance.now();
      const rows = rt.index.lookupSha1(sha1);
      missMs.push(performance.now() - t);
      if (rows.length !== 0) throw new Error('a random SHA-1 matched');
    }

    // A new connection (as after an agent restart): its first look-up pays for reading the schema and pages.
    const reopened = HashIndex.open({ file: rt.layout.indexFile, roots: [tree.root] });
    let firstAfterReopenMs: number;
    try {
      const t = performance.now();
      if (reopened.lookupSha1(known[0]!.sha1).length === 0) throw new Error('reopened index missed a known SHA-1');
      firstAfterReopenMs = performance.now() - t;
    } finally {
      reopened.close();
    }

    return {
      tree: {
        files: tree.files,
        directories: tree.directories,
        largeFiles: opts.largeFiles,
        totalMiB: round(tree.bytes / MiB, 1),
        createSeconds: round(tree.createSeconds, 2),
        shape: '3 levels; 80% < 4 KiB, 18% 4–32 KiB, 2% 32–256 KiB, plus the large files (1–8 MiB)',
      },
      note: 'cold = fresh index, first scan (SHA-1 + SHA-256 of every file, SQLite inserts); the page cache is warm since the tree was just written',
      cold: scanSummary(cold),
      warmRescan: scanSummary(warm),
      lookupHitMs: percentiles(hitMs),
      lookupMissMs: percentiles(missMs),
      firstLookupAfterReopenMs: round(firstAfterReopenMs, 3),
      indexFileMiB: round(statSync(rt.layout.indexFile).size / MiB, 1),
      target: { lookupMsBelow: 50 },
      stateDir,
      root: tree.root,
    };
  } finally {
    rt.close();
  }
}
