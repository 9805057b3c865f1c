// LISTEN/NOTIFY between server nodes sharing one PostgreSQL database: one dedicated listening connection per
// store (pooled connections cannot hold a LISTEN), re-established with backoff whenever it drops.
import pg from 'pg';
import type { Notifier } from '../notifier.ts';
import { parseNotification, SubscriberSet } from '../notifier.ts';
import type { StoreNotification } from '../store.ts';

export const NOTIFY_CHANNEL = 'tourniquet';

/** NOTIFY payloads are capped by PostgreSQL at 8000 bytes; ours are a few ids, so anything bigger is a bug. */
const MAX_PAYLOAD = 7900;

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;

export class PgNotifier implements Notifier {
  private readonly subscribers = new SubscriberSet();
  private client: pg.Client | null = null;
  private closed = false;
  private backoffMs = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly listenConfig: pg.ClientConfig;

  /**
   * `scope` (the schema) is carried in every payload: deployments or test runs that share a database in
   * different schemas use the same channel and must not hear each other.
   */
  constructor(
    private readonly pool: pg.Pool,
    clientConfig: pg.ClientConfig,
    private readonly scope: string,
  ) {
    // A recognisable name lets operators (and tests) find this connection in pg_stat_activity.
    this.listenConfig = { ...clientConfig, application_name: `tourniquet-listen:${scope}`.slice(0, 63) };
  }

  /** Connects and LISTENs; resolves only once notifications are being received. */
  async start(): Promise<void> {
    await this.connect();
  }

  async publish(n: StoreNotification): Promise<void> {
    const checked = parseNotification(n);
    if (!checked) throw new TypeError('invalid store notification');
    const payload = JSON.stringify({ scope: this.scope, n: checked });
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) throw new RangeError('store notification too large');
    await this.pool.query('select pg_notify($1, $2)', [NOTIFY_CHANNEL, payload]);
  }

  subscribe(fn: (n: StoreNotification) => void): () => void {
    return this.subscribers.add(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const c = this.client;
    this.client = null;
    this.subscribers.clear();
    if (c) await c.end().catch(() => undefined);
  }

  /** For tests and health checks: whether the listening connection is currently up. */
  get listening(): boolean {
    return this.client !== null;
  }

  private async connect(): Promise<void> {
    const c = new pg.Client(this.listenConfig);
    let dropped = false;
    const onDrop = () => {
      if (dropped) return;
      dropped = true;
      if (this.client === c) this.client = null;
      c.end().catch(() => undefined);
      this.scheduleReconnect();
    };
    c.on('error', onDrop);
    c.on('end', onDrop);
    c.on('notification', (msg) => this.onNotification(msg));
    try {
      await c.connect();
      await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (err) {
      dropped = true;
      await c.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      dropped = true;
      await c.end().catch(() => undefined);
      return;
    }
    this.client = c;
    this.backoffMs = RECONNECT_MIN_MS;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, RECONNECT_MAX_MS);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closed) return;
      this.connect().catch(() => this.scheduleReconnect());
    }, delay);
    this.reconnectTimer.unref();
  }

  private onNotification(msg: pg.Notification): void {
    if (msg.channel !== NOTIFY_CHANNEL || !msg.payload) return;
    let body: unknown;
    try {
      body = JSON.parse(msg.payload);
    } catch {
      return; // not ours: anyone with database access can NOTIFY on this channel
    }
    if (typeof body !== 'object' || body === null) return;
    const { scope, n } = body as { scope?: unknown; n?: unknown };
    if (scope !== this.scope) return;
    const checked = parseNotification(n);
    if (checked) this.subscribers.deliver(checked);
  }
}
