// Turns anything thrown inside an /api (or extension) route into the wire's error shapes; never a bare 500 body.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { MdeError, ODataQueryError } from '../../core/errors.ts';
import { ERROR_CONTENT_TYPE, odataParserErrorBody, sendError } from './wire.ts';

/** Fastify's own 4xx errors (body parsing, limits, URLs) in MDE terms. */
const FRAMEWORK_ERRORS: Record<string, { status: number; code: string; message: (e: FastifyError) => string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'RequestEntityTooLarge', message: () => 'Request body is too large' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: 'InvalidRequestBody',
    message: () => 'Request body length does not match Content-Length',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'InvalidRequestBody', message: () => 'Request body is incorrect' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'UnsupportedMediaType',
    message: (e) => `Unsupported media type: ${e.message}`,
  },
  FST_ERR_BAD_URL: { status: 400, code: 'BadRequest', message: () => 'The request URL is malformed' },
};

export function mdeErrorHandler(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof MdeError) return sendError(reply, err.status, err.code, err.message, err.headers);
  if (err instanceof ODataQueryError) {
    return reply.code(400).header('content-type', ERROR_CONTENT_TYPE).send(odataParserErrorBody(err.message));
  }
  const fe = err as FastifyError;
  const known = fe.code ? FRAMEWORK_ERRORS[fe.code] : undefined;
  if (known) return sendError(reply, known.status, known.code, known.message(fe));
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return sendError(reply, fe.statusCode, 'BadRequest', fe.message);
  }
  req.log.error({ err }, 'unhandled error');
  return sendError(reply, 500, 'InternalServerError', 'An unexpected error occurred; retry the request');
}
