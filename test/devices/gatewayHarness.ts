// A bare Fastify with a fresh SQLite store and the real gateway on 127.0.0.1:0, for protocol-level tests that do
// not need the MDE API. Actions are created the way the MDE routes create them: store.createAction + publish.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { action } from '../store/fixtures.ts';
import { duplicateKey, type MachineAction } from '../../src/core/actions.ts';
import type { Machine } from '../../src/core/machines.ts';
import { millisToTimestamp } from '../../src/core/time.ts';
import { nowTimestamp } from '../../src/server/clock.ts';
import { DEFAULT_CONFIG, type ServerConfig } from '../../src/server/config.ts';
import { sha256hex } from '../../src/server/gateway/enroll.ts';
import { registerGateway, type Gateway } from '../../src/server/gateway/index.ts';
import { openSqliteStore } from '../../src/store/sqlite/openSqliteStore.ts';
import type { AuditEntry, NewAuditEntry, Store } from '../../src/store/store.ts';

export interface Harness {
  url: string;
  store: Store;
  app: FastifyInstance;
  gateway: Gateway;
  audits: Omit<NewAuditEntry, 'at'>[];
  enrollToken(opts?: { group?: string | null; expiresInSec?: number; maxUses?: number | null }): Promise<{ token: string; id: string }>;
  createAction(machineId: string, patch?: Partial<MachineAction>): Promise<MachineAction>;
  cancel(actionId: string): Promise<MachineAction | null>;
  machine(id: string): Promise<Machine | null>;
  waitFor<T>(fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs?: number): Promise<T>;
  auditLog(): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

export async function startHarness(overrides: Partial<ServerConfig> = {}, helloTimeoutMs?: number): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'tq-dev-'));
  const store = await openSqliteStore({ path: join(dir, 'db.sqlite') });
  const config: ServerConfig = { ...DEFAULT_CONFIG, port: 0, dataDir: dir, logLevel: 'silent', ...overrides };
  const app = Fastify({ logger: { level: process.env.TQ_TEST_LOG ?? 'silent' } });
  const audits: Omit<NewAuditEntry, 'at'>[] = [];
  const gateway = registerGateway(app, {
    ...(helloTimeoutMs !== undefined ? { helloTimeoutMs } : {}),
    store,
    config,
    log: app.log,
    audit: async (e) => {
      audits.push(e);
      await store.appendAudit({ ...e, at: nowTimestamp() });
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

  const h: Harness = {
    url,
    store,
    app,
    gateway,
    audits,
    async enrollToken(opts = {}) {
      const token = randomBytes(24).toString('base64url');
      const id = randomUUID();
      await store.createEnrollToken({
        id,
        tokenHash: sha256hex(token),
        group: opts.group ?? null,
        createdAt: nowTimestamp(),
        expiresAt: millisToTimestamp(Date.now() + (opts.expiresInSec ?? 3600) * 1000),
        revokedAt: null,
        maxUses: opts.maxUses ?? null,
        uses: 0,
      });
      return { token, id };
    },
    async createAction(machineId, patch = {}) {
      const m = await store.getMachine(machineId);
      const now = nowTimestamp();
      const a = action(
        { id: machineId, computerDnsName: '' },
        {
          computerDnsName: m?.computerDnsName ?? null,
          requestor: 'test-app',
          requestorComment: 'test',
          creationDateTimeUtc: now,
          lastUpdateDateTimeUtc: now,
          requestorId: 'test-app-id',
          expiresAt: millisToTimestamp(Date.now() + 3600_000),
          ...patch,
        },
      );
      const created = await store.createAction(a, duplicateKey(machineId, a.type, a.relatedFileInfo?.fileIdentifier ?? null));
      await store.publish({ channel: 'action', machineId, actionId: created.id });
      return created;
    },
    async cancel(actionId) {
      const now = nowTimestamp();
      const r = await store.transitionAction(actionId, { kind: 'cancel' }, now, {
        cancellationRequestor: 'test-app',
        cancellationComment: 'cancel',
        cancellationDateTimeUtc: now,
      });
      if (r?.changed) await store.publish({ channel: 'action', machineId: r.action.machineId, actionId });
      return r?.action ?? null;
    },
    machine: (id) => store.getMachine(id),
    async waitFor(fn, timeoutMs = 5000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const v = await fn();
        if (v) return v as never;
        if (Date.now() > until) throw new Error('waitFor: timed out');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    auditLog: () => store.listAudit({ top: 10_000, skip: 0 }),
    async close() {
      await gateway.close();
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}
