// A synthetic file tree for the index benches: nested directories (3 levels), mostly small files of varied
// sizes and a few larger ones, every file's content distinct. Sizes come from a seeded generator so runs are
// comparable.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldNow } from 'node:timers/promises';
import { MiB } from './stats.ts';

export interface TreeSpec {
  files: number;
  /** How many of them are large (1–8 MiB). */
  large: number;
}

export interface Tree {
  root: string;
  files: number;
  directories: number;
  bytes: number;
  /** Every `sampleEvery`-th file path, for look-ups. */
  sample: string[];
  createSeconds: number;
}

/** mulberry32: a tiny seeded PRNG, good enough for picking sizes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 80 % under 4 KiB, 18 % 4–32 KiB, 2 % 32–256 KiB: roughly the shape of a home or /opt tree. */
function smallSize(rand: () => number): number {
  const r = rand();
  if (r < 0.8) return Math.floor(rand() * 4096);
  if (r < 0.98) return 4096 + Math.floor(rand() * 28 * 1024);
  return 32 * 1024 + Math.floor(rand() * 224 * 1024);
}

export async function generateTree(root: string, spec: TreeSpec, sampleCount = 2000): Promise<Tree> {
  const t0 = performance.now();
  const rand = prng(0x70757271);
  const pool = randomBytes(MiB);
  const fanTop = Math.max(1, Math.round(Math.cbrt(spec.files / 100) * 1.5));
  const fanMid = Math.max(1, Math.round(spec.files / 100 / fanTop));
  const perLeaf = Math.ceil(spec.files / (fanTop * fanMid));
  const largeEvery = spec.large > 0 ? Math.floor(spec.files / spec.large) : Infinity;
  const sampleEvery = Math.max(1, Math.floor(spec.files / sampleCount));
  const sample: string[] = [];
  let made = 0;
  let bytes = 0;
  let directories = 0;
  mkdirSync(root, { recursive: true });
  for (let a = 0; a < fanTop && made < spec.files; a++) {
    for (let b = 0; b < fanMid && made < spec.files; b++) {
      const dir = join(root, `d${a}`, `e${b}`);
      mkdirSync(dir, { recursive: true });
      directories += b === 0 ? 2 : 1;
      for (let c = 0; c < perLeaf && made < spec.files; c++) {
        const i = made++;
        if (i % 2000 === 1999) await yieldNow(); // signals get handled (and clean up) while the tree grows
        const large = i % largeEvery === largeEvery - 1;
        const size = large ? MiB + Math.floor(rand() * 7 * MiB) : smallSize(rand);
        const path = join(dir, `f${i}.${['txt', 'so', 'py', 'bin', 'json'][i % 5]}`);
        const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
        try {
          // A distinct header makes every content (and SHA-1) unique; the rest is a slice of the random pool.
          const header = Buffer.from(`${i}\n`);
          let off = writeSync(fd, header, 0, Math.min(header.length, size));
          while (off < size) {
            const start = (i * 7919 + off) % (pool.length - 1);
            const n = Math.min(size - off, pool.length - start);
            off += writeSync(fd, pool, start, n);
          }
        } finally {
          closeSync(fd);
        }
        bytes += size;
        if (i % sampleEvery === 0) sample.push(path);
      }
    }
  }
  return { root, files: made, directories, bytes, sample, createSeconds: (performance.now() - t0) / 1000 };
}
