// The agent gateway: enrollment over HTTP and one authenticated WebSocket per machine at /agent/v1/connect.
// Owns the machineId → connection map the dispatcher delivers through, and keeps healthStatus/lastSeen honest.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { machineIdFromPublicKey } from '../../core/ids.ts';
import { CLOSE_CODES, ERROR_CODES, HELLO_TIMEOUT_MS } from '../../protocol/codes.ts';
import { importPublicKey, verifyHello } from '../../protocol/signing.ts';
import { CONNECT_PATH, MAX_FRAME_BYTES, PROTOCOL_VERSION, type DeviceMessage, type ServerMessage } from '../../protocol/v1.ts';
import { nowTimestamp } from '../clock.ts';
import { newNodeId } from '../cluster/nodeId.ts';
import { startNodePresence, type NodePresence } from '../cluster/nodePresence.ts';
import { startRedelivery } from '../cluster/redelivery.ts';
import { clusterTiming } from '../cluster/timing.ts';
import { DeviceConnection, type FrameRejection } from './connection.ts';
import { deviceAudit, type GatewayDeps } from './deps.ts';
import { DeviceFrames } from './deviceFrames.ts';
import { Dispatcher } from './dispatcher.ts';
import { registerEnrollRoute } from './enroll.ts';
import { startHeartbeat } from './heartbeat.ts';
import { sightedIps } from './machineFacts.ts';

export type { GatewayDeps } from './deps.ts';

export interface Gateway {
  /** This node's id in the cluster tables. */
  readonly nodeId: string;
  connectedCount(): number;
  isConnected(machineId: string): boolean;
  close(): Promise<void>;
}

/** Connections still in the handshake at once; more are refused (503) so a flood cannot pin memory. */
const MAX_HANDSHAKING = 10_000;

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.destroy();
}

function remoteIpOf(req: IncomingMessage): string | null {
  const a = req.socket.remoteAddress ?? null;
  return a?.startsWith('::ffff:') ? a.slice(7) : a;
}

class DeviceGateway implements Gateway {
  readonly nodeId: string;
  readonly #deps: GatewayDeps;
  readonly #wss: WebSocketServer;
  readonly #all = new Set<DeviceConnection>();
  readonly #byMachine = new Map<string, DeviceConnection>();
  /** Health writes per machine run in order, so "Inactive" of an old connection never lands after "Active". */
  readonly #healthChain = new Map<string, Promise<void>>();
  readonly #frames: DeviceFrames;
  readonly #dispatcher: Dispatcher;
  readonly #heartbeatSec: number;
  readonly #stopHeartbeat: () => void;
  readonly #presence: NodePresence;
  readonly #stopRedelivery: () => Promise<void>;
  readonly #unsubscribe: () => void;
  readonly #server: FastifyInstance['server'];
  #handshaking = 0;
  #closing = false;

  constructor(app: FastifyInstance, deps: GatewayDeps) {
    this.#deps = deps;
    this.#server = app.server;
    const idleMs = Math.max(1, deps.config.deviceIdleTimeoutSec) * 1000;
    this.#heartbeatSec = Math.max(1, Math.floor(deps.config.deviceIdleTimeoutSec / 3));
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: MAX_FRAME_BYTES,
      clientTracking: false,
    });
    this.nodeId = deps.nodeId ?? newNodeId();
    this.#dispatcher = new Dispatcher(deps, this.nodeId, (id) => this.#byMachine.get(id));
    this.#frames = new DeviceFrames(deps, (a) => {
      void deps.store.publish({ channel: 'action', machineId: a.machineId, actionId: a.id });
    });
    // Connected here, or (as far as the store knows) to another node.
    registerEnrollRoute(app, deps, async (id) => this.isConnected(id) || (await deps.store.connectionOwner(id)) !== null);
    app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.#unsubscribe = deps.store.subscribe((n) => this.#dispatcher.onNotification(n));
    this.#stopHeartbeat = startHeartbeat({
      connections: () => this.#all,
      heartbeatMs: this.#heartbeatSec * 1000,
      idleMs,
      helloTimeoutMs: deps.helloTimeoutMs ?? HELLO_TIMEOUT_MS,
      touch: (c) => this.#touch(c),
      helloTimedOut: (c) => deps.log.info({ ip: c.remoteIp }, 'device connection closed: no hello in time'),
    });
    const timing = clusterTiming(deps.config.deviceIdleTimeoutSec);
    this.#presence = startNodePresence({
      store: deps.store,
      log: deps.log,
      nodeId: this.nodeId,
      heartbeatMs: timing.heartbeatMs,
      deadAfterMs: timing.deadAfterMs,
      detail: { pid: process.pid, host: deps.config.host, port: deps.config.port },
      onReRegistered: () => {
        for (const c of this.#byMachine.values()) if (c.state === 'ready') this.#claim(c, nowTimestamp());
      },
    });
    this.#stopRedelivery = startRedelivery({
      store: deps.store,
      log: deps.log,
      nodeId: this.nodeId,
      everyMs: timing.redeliverMs,
      deliver: (a) => this.#dispatcher.redeliver(a),
    });
  }

  connectedCount(): number {
    return this.#byMachine.size;
  }

  isConnected(machineId: string): boolean {
    return this.#byMachine.has(machineId);
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#stopHeartbeat();
    this.#unsubscribe();
    await this.#stopRedelivery();
    await this.#presence.stop();
    const machines = [...this.#byMachine.keys()];
    this.#byMachine.clear();
    for (const c of this.#all) c.close(CLOSE_CODES.goingAway, 'server shutting down');
    const now = nowTimestamp();
    // Released, not just marked: a device that already reconnected to another node stays Active there.
    const marking = (async () => {
      for (let i = 0; i < machines.length; i += 64) {
        await Promise.all(machines.slice(i, i + 64).map((id) => this.#release(id, now)));
      }
      await Promise.all(this.#healthChain.values());
      await this.#deps.store.removeNode(this.nodeId);
    })().catch((err: unknown) => this.#deps.log.error({ err }, 'node could not be deregistered'));
    await Promise.race([marking, new Promise((r) => setTimeout(r, 5000).unref())]);
    for (const c of this.#all) c.ws.terminate();
    this.#all.clear();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0]!.replace(/\/+$/, '').toLowerCase();
    if (path !== CONNECT_PATH) {
      // Someone else may handle other upgrade paths; answer only when we are the only listener.
      if (this.#server.listenerCount('upgrade') === 1) rejectUpgrade(socket, 404, 'Not Found');
      return;
    }
    if (this.#closing) return rejectUpgrade(socket, 503, 'Service Unavailable');
    if (this.#handshaking >= MAX_HANDSHAKING) return rejectUpgrade(socket, 503, 'Service Unavailable');
    socket.on('error', () => socket.destroy());
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req));
  }

  #accept(ws: WebSocket, req: IncomingMessage): void {
    if (this.#closing) {
      ws.close(CLOSE_CODES.goingAway, 'server shutting down');
      return;
    }
    const conn = new DeviceConnection(ws, remoteIpOf(req), randomBytes(32).toString('base64url'), {
      frame: (c, msg) => this.#onFrame(c, msg),
      rejected: (c, r, seq) => this.#onRejected(c, r, seq),
      closed: (c, code, reason) => this.#onClosed(c, code, reason),
    });
    ws.on('error', (err: Error & { code?: string }) => {
      const oversized = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
      this.#deps.log.warn({ machineId: conn.machineId, ip: conn.remoteIp, err: err.message }, 'device frame refused');
      if (oversized) {
        void this.#deps.audit(
          deviceAudit(conn, 'device.frameRejected', 'failure', null, { code: 'FrameTooLarge', limit: MAX_FRAME_BYTES }),
        );
      }
    });
    this.#all.add(conn);
    this.#handshaking++;
    conn.send({ t: 'challenge', nonce: conn.nonce, serverTime: nowTimestamp(), protocolVersion: PROTOCOL_VERSION });
  }

  async #onFrame(conn: DeviceConnection, msg: DeviceMessage): Promise<ServerMessage | FrameRejection | null> {
    if (msg.t === 'hello') {
      await this.#hello(conn, msg);
      return null;
    }
    return this.#frames.handle(conn, msg);
  }

  /** Challenge-response: the device proves it holds the key it enrolled with, over this connection's nonce. */
  async #hello(conn: DeviceConnection, msg: Extract<DeviceMessage, { t: 'hello' }>): Promise<void> {
    conn.state = 'authenticating';
    const deny = (code: number, reason: string, audit: boolean) => {
      this.#deps.log.warn({ machineId: msg.machineId, ip: conn.remoteIp, reason }, 'device hello refused');
      if (audit) {
        void this.#deps.audit(
          deviceAudit({ ...conn, machineId: msg.machineId }, 'device.hello', 'failure', msg.machineId, { reason }),
        );
      }
      conn.send({ t: 'error', code: ERROR_CODES.notAuthenticated, message: reason });
      conn.close(code, reason);
    };
    let machine;
    try {
      machine = await this.#deps.store.getMachine(msg.machineId);
    } catch (err) {
      this.#deps.log.error({ err }, 'device hello: store unavailable');
      conn.close(CLOSE_CODES.goingAway, 'try again later');
      return;
    }
    if (conn.state !== 'authenticating') return; // closed meanwhile
    const key = machine?.devicePublicKey ? importPublicKey(machine.devicePublicKey) : null;
    if (!machine || !key || machineIdFromPublicKey(key.canonical) !== machine.id) {
      return deny(CLOSE_CODES.authenticationFailed, 'unknown machine', true);
    }
    if (!verifyHello(key.key, conn.nonce, machine.id, msg.signature)) {
      return deny(CLOSE_CODES.authenticationFailed, 'hello signature does not verify', true);
    }
    if (machine.offboarded) return deny(CLOSE_CODES.offboarded, 'machine is offboarded', false);

    conn.machineId = machine.id;
    conn.hostname = machine.computerDnsName;
    conn.publicKey = key.key;
    conn.ipAddresses = machine.ipAddresses;
    conn.state = 'ready';
    this.#handshaking--;
    const older = this.#byMachine.get(machine.id);
    this.#byMachine.set(machine.id, conn);
    if (older && older !== conn) older.close(CLOSE_CODES.replaced, 'replaced by a newer connection');

    const now = nowTimestamp();
    conn.lastSeenWrittenAt = Date.now();
    await this.#claim(conn, now, msg.agentVersion);
    await this.#recordIps(conn, now);
    if (!conn.send({ t: 'welcome', machineId: machine.id, heartbeatSec: this.#heartbeatSec })) return;
    try {
      await this.#dispatcher.pushPending(conn);
    } catch (err) {
      this.#deps.log.error({ err, machineId: machine.id }, 'pending actions could not be pushed');
      conn.close(CLOSE_CODES.goingAway, 'try again later'); // the device reconnects and gets them then
    }
  }

  #onRejected(conn: DeviceConnection, r: FrameRejection, seq: number | undefined): void {
    this.#deps.log.warn(
      { machineId: conn.machineId, ip: conn.remoteIp, code: r.code, reason: r.message, seq },
      'device frame rejected',
    );
    if (r.audit) {
      void this.#deps.audit(deviceAudit(conn, 'device.frameRejected', 'failure', null, { code: r.code, reason: r.message, seq }));
    }
  }

  #onClosed(conn: DeviceConnection, code: number, reason: string): void {
    this.#all.delete(conn);
    if (conn.machineId === null) {
      this.#handshaking--;
      return;
    }
    this.#deps.log.debug({ machineId: conn.machineId, code, reason }, 'device disconnected');
    if (this.#byMachine.get(conn.machineId) === conn) {
      this.#byMachine.delete(conn.machineId);
      if (!this.#closing) void this.#release(conn.machineId, nowTimestamp());
    }
  }

  /**
   * Records in the store that this node holds the machine's connection, then marks it Active; when another node
   * held it, tells the others so that one closes its stale connection.
   */
  #claim(conn: DeviceConnection, at: string, agentVersion?: string): Promise<void> {
    const machineId = conn.machineId!;
    return this.#serially(machineId, 'machine connection could not be claimed', async () => {
      const { previousNode } = await this.#deps.store.claimConnection(machineId, this.nodeId, at);
      conn.claimed = true;
      await this.#deps.store.updateMachine(machineId, { healthStatus: 'Active', lastSeen: at, ...(agentVersion ? { agentVersion } : {}) });
      if (previousNode !== null && previousNode !== this.nodeId) await this.#deps.store.publish({ channel: 'machine', machineId });
    });
  }

  /** Inactive only while this node still holds the connection: the device may already be Active on another node. */
  #release(machineId: string, at: string): Promise<void> {
    return this.#serially(machineId, 'machine connection could not be released', () =>
      this.#deps.store.releaseConnection(machineId, this.nodeId, at),
    );
  }

  #setHealth(machineId: string, health: 'Active' | 'Inactive', at: string): Promise<void> {
    return this.#serially(machineId, 'machine health could not be written', () =>
      this.#deps.store.updateMachine(machineId, { healthStatus: health, lastSeen: at }),
    );
  }

  /** Health writes per machine run in the order issued; a failure is logged and does not stop later ones. */
  #serially(machineId: string, failure: string, op: () => Promise<unknown>): Promise<void> {
    const prev = this.#healthChain.get(machineId) ?? Promise.resolve();
    const next = prev
      .then(op)
      .then(
        () => undefined,
        (err: unknown) => this.#deps.log.error({ err, machineId }, failure),
      )
      .finally(() => {
        if (this.#healthChain.get(machineId) === next) this.#healthChain.delete(machineId);
      });
    this.#healthChain.set(machineId, next);
    return next;
  }

  async #recordIps(conn: DeviceConnection, at: string): Promise<void> {
    try {
      for (const ip of sightedIps(conn.ipAddresses)) {
        await this.#deps.store.recordMachineIp(conn.machineId!, ip, at);
      }
    } catch (err) {
      this.#deps.log.error({ err, machineId: conn.machineId }, 'machine addresses could not be recorded');
    }
  }

  /** The throttled "still here" write: lastSeen and the IP sightings findbyip answers from. */
  #touch(conn: DeviceConnection): void {
    if (conn.state !== 'ready' || this.#byMachine.get(conn.machineId!) !== conn) return;
    const now = nowTimestamp();
    void this.#setHealth(conn.machineId!, 'Active', now).then(() => this.#recordIps(conn, now));
  }
}

/** Mounts the agent gateway on the server: POST /agent/v1/enroll and the WebSocket at /agent/v1/connect. */
export function registerGateway(app: FastifyInstance, deps: GatewayDeps): Gateway {
  return new DeviceGateway(app, deps);
}
