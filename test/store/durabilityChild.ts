// Child process for the SQLite durability test: creates actions as fast as it can and prints each id only
// after createAction resolved (= committed). The parent SIGKILLs it mid-burst and checks every printed id.
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import { action, keyOf, machine } from './fixtures.ts';

const path = process.argv[2];
if (!path) throw new Error('usage: durabilityChild.ts <db path> [writer-thread]');
const store = await openSqliteStore({ path, writerThread: process.argv[3] === 'writer-thread' });
const m = machine();
await store.upsertMachine(m);
process.stdout.write('ready\n');

// Many writers in flight at once, as concurrent HTTP requests would be, so group commit batches them.
async function writer(): Promise<never> {
  for (;;) {
    const a = action(m);
    await store.createAction(a, keyOf(a));
    process.stdout.write(`${a.id}\n`);
  }
}
await Promise.all(Array.from({ length: 32 }, writer));
