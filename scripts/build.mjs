// Bundles the TypeScript sources into dist/ (entry dist/main.js plus shared chunks; dependencies stay external). Run by `npm install`
// (prepare): the bundle starts in a fraction of the time the on-the-fly TypeScript loader takes and leaves
// ~30 MiB of loader out of the long-running agent. bin/tourniquet.js falls back to the sources when the bundle
// is missing or older than them, so editing src/ never runs stale code.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
// Chunk names change with their content: start from an empty dist/ so no stale chunk lingers.
rmSync(join(root, 'dist'), { recursive: true, force: true });
await build({
  entryPoints: [
    join(root, 'src/cli/main.ts'),
    // Loaded by src/store/sqlite/writerThread.ts as a worker, from next to the chunk that holds it.
    { in: join(root, 'src/store/sqlite/writerThreadEntry.ts'), out: 'sqliteWriterThread' },
  ],
  outdir: join(root, 'dist'),
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
