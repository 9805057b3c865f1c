// The agent's log: one JSON object per line on stderr, pino's shape (level numbers, time, msg). Not pino itself:
// loading pino costs the long-running agent ~9 MB of resident memory (measured; docs/decisions.md).
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LevelName = keyof typeof LEVELS;

export interface AgentLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export function agentLog(level: string, write: (line: string) => void = (l) => process.stderr.write(l)): AgentLog {
  const min = LEVELS[level as LevelName];
  if (min === undefined) throw new Error(`unknown log level ${level} (${Object.keys(LEVELS).join(', ')})`);
  const at = (n: number) => (obj: object, msg?: string) => {
    if (n < min) return;
    const base: Record<string, unknown> = { level: n, time: Date.now(), svc: 'tourniquet-agent' };
    for (const [k, v] of Object.entries(obj)) base[k] = v instanceof Error ? { message: v.message, stack: v.stack } : v;
    if (msg !== undefined) base.msg = msg;
    write(`${JSON.stringify(base)}\n`);
  };
  return { debug: at(20), info: at(30), warn: at(40), error: at(50) };
}
