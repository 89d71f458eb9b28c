import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ErrorCode, httpStatusOf, isKairosError } from '../../domain/errors/index.js';

/** A request the framework refused before any route ran (bad body, bad URL): the same shape as a `ValidationError`. */
export const sendInputError = (reply: FastifyReply, status: number, path: string, message: string): FastifyReply =>
  reply
    .status(status)
    .send({ code: ErrorCode.validation, message: `${path}: ${message}`, details: { issues: [{ path, message }] } });

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
      return sendInputError(reply, 415, 'body', 'unsupported content type: send JSON (application/json)');
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return sendInputError(reply, error.statusCode, 'body', error.message);
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).send({
      code: ErrorCode.internal,
      message: 'internal error; see the node log',
      details: { requestId: request.id },
    });
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send({ code: ErrorCode.notFound, message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );
};
