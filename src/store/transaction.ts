// All or nothing on one connection, with the dialect's own BEGIN (SQLite: BEGIN IMMEDIATE, see dialect.ts).
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.ts';

/** Runs `fn` inside a transaction on one connection of `db`; `fn` must use the connection it is given. */
export function runTransaction<T>(db: Kysely<Database>, begin: string, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql.raw(begin).execute(conn);
    let result: T;
    try {
      result = await fn(conn);
    } catch (err) {
      await sql`rollback`.execute(conn).catch(() => undefined);
      throw err;
    }
    try {
      await sql`commit`.execute(conn);
    } catch (err) {
      await sql`rollback`.execute(conn).catch(() => undefined);
      throw err;
    }
    return result;
  });
}
