import type { FastifyError, FastifyInstance } from 'fastify';
import { ErrorCode, httpStatusOf, isKairosError } from '../../domain/errors/index.js';

/**
 * Every error leaves the API as `{code, message, details}` with the status of its code. Bad input is
 * a 4xx naming the field; only a bug is a 500, and then the body says nothing internal.
 */
export const installErrorHandling = (app: FastifyInstance): void => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isKairosError(error)) {
      return reply.status(httpStatusOf(error.code)).send(error.toJSON());
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.status(415).send({ code: ErrorCode.validation, message: `unsupported content type: send JSON (application/json)`, details: { field: 'body' } });
    }
    if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' || (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500)) {
      return reply.status(error.statusCode ?? 400).send({ code: ErrorCode.validation, message: `body: ${error.message}`, details: { field: 'body' } });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).send({ code: ErrorCode.internal, message: 'internal error; see the node log', details: { requestId: request.id } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ code: ErrorCode.notFound, message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );
};
