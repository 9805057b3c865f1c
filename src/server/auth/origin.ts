// The `scheme://host[:port]` a client used to reach us. It ends up in discovery documents and decides which
// self-naming audiences are accepted, so a Host header that is not a plain host[:port] is not trusted.
import type { FastifyRequest } from 'fastify';

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The request's own origin, or null when its Host header is missing or malformed. */
export function requestOriginOf(request: Pick<FastifyRequest, 'protocol' | 'host'>): string | null {
  const host = request.host;
  if (typeof host !== 'string' || host.length > 261 || !HOST.test(host)) return null;
  return `${request.protocol}://${host.toLowerCase()}`;
}

/** Where links we publish should point: the configured public URL, else the request's origin. */
export function publicBaseOf(request: Pick<FastifyRequest, 'protocol' | 'host'>, publicUrl: string | null): string | null {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  return requestOriginOf(request);
}
