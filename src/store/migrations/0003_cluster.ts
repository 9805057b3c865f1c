// Several server nodes on one database (issue 5): which nodes are alive, which node holds each device's
// connection, and (PostgreSQL only) the table the shared rate limiter counts in.
import { PostgresAdapter, sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

/** The rate limiter's table: the exact shape rate-limiter-flexible's RateLimiterPostgres reads and writes. */
export const RATE_LIMIT_TABLE = 'rate_limits';

export const cluster: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    const text = postgres ? sql`text collate "C"` : sql`text`;

    // A node's heartbeat is its own clock in epoch milliseconds; a node silent for longer than the dead-after
    // period is reaped by any other node (its devices become Inactive).
    await db.schema
      .createTable('cluster_nodes')
      .addColumn('node_id', text, (c) => c.primaryKey())
      .addColumn('started_at', text, (c) => c.notNull())
      .addColumn('heartbeat_ms', 'bigint', (c) => c.notNull())
      .addColumn('detail', text, (c) => c.notNull())
      .execute();

    // One row per connected machine: the node holding its one live connection. A row whose node is gone is a
    // device nobody is talking to.
    await db.schema
      .createTable('device_connections')
      .addColumn('machine_id', text, (c) => c.primaryKey())
      .addColumn('node_id', text, (c) => c.notNull())
      .addColumn('connected_at', text, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ix_device_connections_node').on('device_connections').columns(['node_id', 'machine_id']).execute();

    if (postgres) {
      await db.schema
        .createTable(RATE_LIMIT_TABLE)
        .addColumn('key', 'varchar(255)', (c) => c.primaryKey())
        .addColumn('points', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('expire', 'bigint')
        .execute();
    }
  },
};
