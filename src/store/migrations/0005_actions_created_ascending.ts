// The creation-time index of machine actions, stored ascending.
//
// 0004 declared it (creation_date_time_utc DESC, id) to match the listing's default order (newest first, id as the
// tie-breaker). Stored descending, every new action is the smallest key, so both databases insert at the index's
// leftmost leaf: that leaf splits half-full again and again (the index grew to ~2× its packed size) and a commit of
// ~17 durable POSTs wrote ~4.4 of its pages to SQLite's WAL instead of ~1.8 (bench/api, docs/decisions.md).
// Ascending on creation and descending on id, new keys append at the right edge, which both databases pack full,
// and a backward scan still yields (creation DESC, id ASC): the listing's order, without a sort.
import type { Migration } from 'kysely';

export const actionsCreatedAscending: Migration = {
  async up(db) {
    await db.schema.dropIndex('ix_actions_created').execute();
    await db.schema
      .createIndex('ix_actions_created')
      .on('machine_actions')
      .columns(['creation_date_time_utc', 'id desc'])
      .execute();
  },
};
