// Server-driven paging: without $top, results beyond one page of 10,000 get an @odata.nextLink with a correct $skip.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ListResult } from '../../../store/store.ts';
import type { ServerContext } from '../../context.ts';
import { listJson } from '../serialize.ts';
import { contextUrl, originOf, sendOData } from '../wire.ts';
import { MAX_TOP } from '../../../core/query.ts';
import type { ParsedListQuery } from '../odata/index.ts';

export function nextLinkFor(req: FastifyRequest, origin: string, q: ParsedListQuery, returned: number): string | null {
  if (q.topSpecified || returned < MAX_TOP) return null;
  const raw = req.query as Record<string, unknown>;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(raw)) if (k !== '$skip' && typeof v === 'string') params.set(k, v);
  params.set('$skip', String(q.skip + returned));
  const path = req.url.split('?')[0];
  return `${origin}${path}?${params.toString().replace(/%24/g, '$')}`;
}

/** Applies `$select`: only the named properties, in the entity's own order. */
export function project(entity: Record<string, unknown>, select: string[] | undefined): Record<string, unknown> {
  if (!select) return entity;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(entity)) if (select.includes(k)) out[k] = entity[k];
  return out;
}

/** One page of an entity set on the wire: context, optional count, the projected entities, and a next link. */
export function sendPage<T>(
  ctx: ServerContext,
  req: FastifyRequest,
  reply: FastifyReply,
  entitySet: string,
  query: ParsedListQuery,
  result: ListResult<T>,
  wire: (item: T) => Record<string, unknown>,
): FastifyReply {
  const origin = originOf(req, ctx.config.publicUrl);
  return sendOData(
    reply,
    200,
    listJson(
      contextUrl(origin, entitySet),
      result.items.map((item) => project(wire(item), query.select)),
      query.count ? result.count : null,
      nextLinkFor(req, origin, query, result.items.length),
    ),
  );
}
