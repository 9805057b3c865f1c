// The `tourniquet` command. Output lines named in shared/contract.md are kept exactly.
// Commands load their modules on demand: the long-running agent then carries none of the server's code.
import { Command } from 'commander';

const program = new Command('tourniquet').description('Stop a malicious file everywhere it runs, through the MDE API.');

if (process.argv[2] !== 'agent') {
  const { registerServerCommands } = await import('./serverCommands.ts');
  registerServerCommands(program);
  const { registerRbacCommands } = await import('./rbacCommands.ts');
  registerRbacCommands(program);
}
const { registerAgentCommands } = await import('./agentCommands.ts');
registerAgentCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`tourniquet: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
