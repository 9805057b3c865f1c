// Every query-option failure reads like the live service's OData parser: one fixed lead sentence, then the reason.
import { ODataQueryError } from '../../../core/errors.ts';

export const INVALID_QUERY = 'The query specified in the URI is not valid.';

export function invalidQuery(reason: string): ODataQueryError {
  return new ODataQueryError(`${INVALID_QUERY} ${reason}`);
}

const ECHO_LIMIT = 256;
const EXCERPT_RADIUS = 40;

/**
 * `at position N in '<text>'` — the parser's way of pointing at the offending character (0-based). A long text
 * is not echoed whole; the excerpt around the position is enough to find the mistake.
 */
export function at(position: number, text: string): string {
  if (text.length <= ECHO_LIMIT) return `at position ${position} in '${text}'`;
  const from = Math.max(0, position - EXCERPT_RADIUS);
  const excerpt = text.slice(from, position + EXCERPT_RADIUS);
  return `at position ${position} near '${from > 0 ? '…' : ''}${excerpt}${position + EXCERPT_RADIUS < text.length ? '…' : ''}'`;
}
