// A server node's identity in the cluster tables: new for every process, so a restarted node never inherits the
// connections (or the death) of its previous life.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

export function newNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 60) || 'node';
  return `${host}:${process.pid}:${randomBytes(6).toString('hex')}`;
}
