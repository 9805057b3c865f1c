// `tourniquet agent enroll` and `tourniquet agent run` (shared/contract.md).
import type { Command } from 'commander';
import { enrollAgent, runAgent } from '../agent/agentService.ts';
import { DEFAULT_STATE_DIR } from '../agent/state.ts';
import { agentLog } from '../agent/log.ts';
import { resolve } from 'node:path';

export function registerAgentCommands(program: Command): void {
  const agent = program.command('agent').description('The Linux endpoint agent (runs as root)');
  agent
    .command('enroll')
    .description('Enroll this device with a server')
    .requiredOption('--server <url>', 'server base URL')
    .requiredOption('--token <token>', 'enroll token')
    .option('--state <dir>', 'state directory', DEFAULT_STATE_DIR)
    .option('--tags <tags>', 'comma-separated device tags')
    .action(async (opts) => {
      const machineId = await enrollAgent({
        server: opts.server,
        token: opts.token,
        stateDir: resolve(opts.state),
        tags: opts.tags ? String(opts.tags).split(',').map((t: string) => t.trim()).filter(Boolean) : [],
      });
      console.log(`enrolled as machine ${machineId}`);
    });
  agent
    .command('run')
    .description('Connect and execute actions until stopped')
    .option('--state <dir>', 'state directory', DEFAULT_STATE_DIR)
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (opts) => {
      const log = agentLog(opts.logLevel);
      const running = await runAgent({ stateDir: resolve(opts.state), log });
      console.log(`agent running as machine ${running.machineId}`);
      const shutdown = async () => {
        await running.stop();
        process.exit(0);
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    });
}
