/**
 * Lambda handler behind `POST /` (API Gateway REST, Lambda proxy): the AWS JSON 1.1 protocol,
 * dispatched on `X-Amz-Target`, so stock CloudTrail clients work against it. Wiring only: each
 * operation lives in lambda/core and is registered in OPERATION_FACTORIES.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { ApiError } from '../core/api-error';
import {
  CLOUDTRAIL_SHORT_TARGET_PREFIX,
  CLOUDTRAIL_TARGET_PREFIX,
  DESCRIBE_TRAILS_TARGET,
  GET_TRAIL_STATUS_TARGET,
  LIST_PUBLIC_KEYS_TARGET,
  LOOKUP_EVENTS_TARGET,
} from '../core/contracts';
import { createLogger } from '../adapters/observability';
import {
  describeTrailsFromEnvironment,
  getTrailStatusFromEnvironment,
  listPublicKeysFromEnvironment,
  lookupEventsFromEnvironment,
} from './query-operations';

const logger = createLogger('query');

/** One operation: the parsed JSON request in, the JSON response out; throws ApiError. */
export type Operation = (request: Record<string, unknown>) => Promise<unknown>;

/**
 * Operations the deployed handler serves, each built from the Lambda environment; a factory
 * returns undefined when its configuration is absent (the operation is then unknown).
 */
export const OPERATION_FACTORIES: readonly (readonly [
  target: string,
  build: () => Operation | undefined,
])[] = [
  [LIST_PUBLIC_KEYS_TARGET, listPublicKeysFromEnvironment],
  [LOOKUP_EVENTS_TARGET, lookupEventsFromEnvironment],
  [GET_TRAIL_STATUS_TARGET, getTrailStatusFromEnvironment],
  [DESCRIBE_TRAILS_TARGET, describeTrailsFromEnvironment],
];

const THROTTLING_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
]);

function respond(statusCode: number, body: unknown): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'Content-Type': 'application/x-amz-json-1.1' },
    body: JSON.stringify(body),
  };
}

function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const entry = Object.entries(event.headers ?? {}).find(([key]) => key.toLowerCase() === name);
  return entry?.[1] ?? undefined;
}

/** Builds the handler from its operations (the embedded runtime and tests pass their own). */
export function createQueryHandler(operations: ReadonlyMap<string, Operation>) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const target = header(event, 'x-amz-target');
    // The AWS CLI sends the full target; the AWS SDK for JavaScript v3 sends
    // `CloudTrail_20131101.<Operation>`: both name the same operation.
    const operation =
      target === undefined
        ? undefined
        : (operations.get(target) ??
          operations.get(
            `${CLOUDTRAIL_TARGET_PREFIX}${target.startsWith(CLOUDTRAIL_SHORT_TARGET_PREFIX) ? target.slice(CLOUDTRAIL_SHORT_TARGET_PREFIX.length) : target}`,
          ));
    if (!operation) {
      const known = [...operations.keys()].map((t) => t.slice(t.lastIndexOf('.') + 1)).join(', ');
      return respond(400, {
        __type: 'UnknownOperationException',
        message: `X-Amz-Target: ${target ?? '(missing)'} is not an operation of this API; known: ${known || 'none'}`,
      });
    }
    const text =
      event.body == null
        ? ''
        : event.isBase64Encoded
          ? Buffer.from(event.body, 'base64').toString('utf8')
          : event.body;
    let request: unknown;
    try {
      request = text.trim() === '' ? {} : JSON.parse(text);
    } catch {
      return respond(400, {
        __type: 'SerializationException',
        message: 'body: must be a JSON object',
      });
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request)) {
      return respond(400, {
        __type: 'SerializationException',
        message: 'body: must be a JSON object',
      });
    }
    try {
      return respond(200, await operation(request as Record<string, unknown>));
    } catch (error) {
      if (error instanceof ApiError) {
        return respond(error.statusCode, { __type: error.code, message: error.message });
      }
      // DynamoDB or KMS over their rate, for any operation: the client backs off (docs/formats.md#lookupevents).
      if (THROTTLING_ERRORS.has((error as Error).name)) {
        return respond(400, {
          __type: 'ThrottlingException',
          message: 'Rate exceeded; retry with backoff',
        });
      }
      logger.error('operation failed', { target, error: error as Error });
      return respond(500, {
        __type: 'InternalFailure',
        message: 'the request could not be processed; retry it',
      });
    }
  };
}

let deployed: ReturnType<typeof createQueryHandler> | undefined;

/** Entry point in Lambda: the configured operations, built once per container. */
export const handler = (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
  deployed ??= createQueryHandler(
    new Map(
      OPERATION_FACTORIES.flatMap(([target, build]) => {
        const operation = build();
        return operation ? [[target, operation] as const] : [];
      }),
    ),
  );
  return deployed(event);
};
