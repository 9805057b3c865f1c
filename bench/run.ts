// `npm run bench`: every benchmark, one after another, each in its own process so they do not disturb each other.
// Each prints one JSON document; the collected results go to bench/results/latest.json (not in git) and a summary
// to stdout. BENCHMARKS.md reports them as ratios against baselines measured in the same run.
//   npm run bench                 all benchmarks, full size
//   npm run bench -- --quick      smaller sizes (minutes instead of tens of minutes)
//   npm run bench -- api agent    only the named ones
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const named = args.filter((a) => !a.startsWith('--'));
const ALL = ['api', 'fleet', 'agent', 'cluster'];
const selected = named.length > 0 ? named : ALL;

function runOne(name: string): Promise<unknown> {
  const script = join(root, 'bench', name, 'run.ts');
  if (!existsSync(script)) return Promise.resolve({ skipped: `no ${script}` });
  const env = { ...process.env, ...(quick ? { BENCH_QUICK: '1', BENCH_SECONDS: '5' } : {}) };
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...(quick ? ['--quick'] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
    cwd: root,
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      const start = out.indexOf('{');
      try {
        resolve(JSON.parse(out.slice(start, out.lastIndexOf('}') + 1)));
      } catch {
        resolve({ failed: `exit ${code}`, output: out.slice(-2000) });
      }
    }),
  );
}

const results: Record<string, unknown> = { at: new Date().toISOString(), quick };
for (const name of selected) {
  console.error(`== bench ${name}`);
  results[name] = await runOne(name);
  console.log(JSON.stringify({ [name]: results[name] }, null, 2));
}
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'latest.json'), JSON.stringify(results, null, 2));
