// Several real `tourniquet serve` processes on one fresh PostgreSQL schema (dropped afterwards), the CLI run
// against the same database, and direct SQL for what only the database can tell (who holds a connection, how many
// times a row changed). Set TOURNIQUET_TEST_PG_URL to use another server.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import pg from 'pg';

export const PG_URL = process.env.TOURNIQUET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BIN = new URL('../../bin/tourniquet.js', import.meta.url).pathname;

export interface Node {
  name: string;
  url: string;
  child: ChildProcess;
  /** SIGKILL: no close frames, no deregistration — a node that dies. */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export interface Cluster {
  schema: string;
  /** TOURNIQUET_DATABASE_URL of every node: the test database with ?schema=. */
  databaseUrl: string;
  nodes: Node[];
  startNode(name: string, env?: Record<string, string>): Promise<Node>;
  /** Runs the CLI against the cluster's database; returns stdout (throws on a non-zero exit). */
  cli(args: string[]): string;
  sql<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

export async function startCluster(baseEnv: Record<string, string> = {}): Promise<Cluster> {
  const schema = `tq_cluster_${process.pid}_${randomBytes(4).toString('hex')}`;
  const databaseUrl = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...process.env,
    TOURNIQUET_DATABASE_URL: databaseUrl,
    TOURNIQUET_LOG_LEVEL: process.env.TQ_TEST_LOG ?? 'error',
    ...baseEnv,
    ...extra,
  });

  const nodes: Node[] = [];
  const c: Cluster = {
    schema,
    databaseUrl,
    nodes,
    async startNode(name, extra = {}) {
      const child = spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0'], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: env(extra),
      });
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`node ${name} did not start`)), 30_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`node ${name} exited ${code}`));
        });
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const m = /^listening on (http:\/\/\S+)$/.exec(line);
          if (m) {
            clearTimeout(timer);
            child.removeAllListeners('exit');
            resolve(m[1]!);
          }
        });
      });
      const node: Node = {
        name,
        url,
        child,
        async kill9() {
          child.kill('SIGKILL');
          await exited(child);
        },
        async stop() {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited(child);
          clearTimeout(t);
        },
      };
      nodes.push(node);
      return node;
    },
    cli(args) {
      const r = spawnSync(process.execPath, [BIN, ...args], { env: env(), encoding: 'utf8', timeout: 30_000 });
      if (r.status !== 0) throw new Error(`tourniquet ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
      return r.stdout;
    },
    async sql(text, values) {
      await admin.query(`set search_path = ${schema}`);
      return (await admin.query(text, values as unknown[])).rows;
    },
    async close() {
      await Promise.all(nodes.map((n) => n.stop()));
      try {
        await admin.query(`drop schema if exists "${schema}" cascade`);
      } finally {
        await admin.end();
      }
    },
  };
  return c;
}

export interface Http {
  status: number;
  headers: Headers;
  json: any;
}

export async function http(url: string, opts: { method?: string; token?: string; body?: unknown } = {}): Promise<Http> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method: opts.method ?? 'GET',
    headers,
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  let json: any = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
