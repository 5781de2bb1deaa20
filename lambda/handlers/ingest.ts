/**
 * Lambda handler behind `POST /PutAuditEvents` (API Gateway REST, Lambda proxy). Wiring only:
 * the logic is lambda/core/ingest.ts.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { ENV, type RecipientAllowList } from '../core/config';
import { putAuditEvents, RequestError, type Caller, type IngestDeps } from '../core/ingest';
import { createClients } from '../adapters/clients';
import { KinesisRecordStream } from '../adapters/kinesis';
import { createLogger } from '../adapters/observability';
import { requiredEnv } from './env';

const logger = createLogger('ingest');

function json(statusCode: number, body: unknown): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  };
}

/** The caller as API Gateway's IAM authorizer saw it. */
function callerOf(event: APIGatewayProxyEvent): Caller {
  const identity = (event.requestContext?.identity ?? {}) as unknown as Record<string, unknown>;
  return {
    ...(typeof identity.accountId === 'string' ? { accountId: identity.accountId } : {}),
    ...(typeof identity.principalOrgId === 'string'
      ? { principalOrgId: identity.principalOrgId }
      : {}),
  };
}

/** Builds the handler from its ports (the embedded runtime and tests pass their own). */
export function createIngestHandler(deps: IngestDeps) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const body =
      event.body == null
        ? ''
        : event.isBase64Encoded
          ? Buffer.from(event.body, 'base64').toString('utf8')
          : event.body;
    try {
      const result = await putAuditEvents(body, callerOf(event), deps);
      if (result.failed.length > 0)
        logger.info('entries refused', {
          failed: result.failed.length,
          successful: result.successful.length,
        });
      return json(200, result);
    } catch (error) {
      if (error instanceof RequestError)
        return json(400, { __type: error.code, message: error.message });
      logger.error('PutAuditEvents failed', { error: error as Error });
      return json(500, {
        __type: 'InternalFailure',
        message: 'the request could not be processed; retry it',
      });
    }
  };
}

function fromEnvironment(): IngestDeps {
  const clients = createClients({ region: requiredEnv('AWS_REGION') });
  const allowList = process.env[ENV.RECIPIENT_ALLOW_LIST];
  return {
    stream: new KinesisRecordStream(clients.kinesis, requiredEnv(ENV.STREAM_NAME)),
    accountId: requiredEnv(ENV.ACCOUNT_ID),
    ...(process.env[ENV.RECIPIENT_CHECK_DISABLED] === 'true'
      ? {}
      : {
          recipientRule: {
            allowList: allowList ? (JSON.parse(allowList) as RecipientAllowList) : {},
          },
        }),
    now: Date.now,
    newEventId: randomUUID,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

let deployed: ReturnType<typeof createIngestHandler> | undefined;

/** Entry point in Lambda: dependencies from the environment, built once per container. */
export const handler = (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
  deployed ??= createIngestHandler(fromEnvironment());
  return deployed(event);
};
