// How every /api response looks on the wire: content types, OData headers, compact JSON, the error envelope.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomHex } from '../../core/ids.ts';

export const ODATA_CONTENT_TYPE = 'application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8';
export const ERROR_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Per-request correlation id in the live service's current form: `|<8 hex>-<16 hex>.` */
export function newCorrelationId(): string {
  const b = randomHex(24);
  return `|${b.slice(0, 8)}-${b.slice(8, 24)}.`;
}

/** `<scheme>://<host>[:port]` the client used (or the configured public URL), for @odata.context. */
export function originOf(req: FastifyRequest, publicUrl: string | null): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  return `${req.protocol}://${req.host}`;
}

export function contextUrl(origin: string, fragment: string): string {
  return `${origin}/api/$metadata#${fragment}`;
}

/** Sends an OData success body that is already compact JSON. */
export function sendOData(reply: FastifyReply, status: number, json: string): FastifyReply {
  return reply.code(status).header('content-type', ODATA_CONTENT_TYPE).header('odata-version', '4.0').send(json);
}

export function errorBody(code: string, message: string, target: string): string {
  return JSON.stringify({ error: { code, message, target } });
}

/** The OData query-parser failure shape: empty code, details[], no target (m365#12682). */
export function odataParserErrorBody(message: string): string {
  return JSON.stringify({ error: { code: '', message, details: [] } });
}

export function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): FastifyReply {
  reply.code(status).header('content-type', ERROR_CONTENT_TYPE);
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  return reply.send(errorBody(code, message, String(reply.request.id)));
}

/** 404 for unknown routes and 405 for wrong verbs carry no body at all, as observed live. */
export function sendEmpty(reply: FastifyReply, status: number, headers: Record<string, string> = {}): FastifyReply {
  reply.code(status);
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  reply.header('content-length', '0');
  return reply.send();
}
