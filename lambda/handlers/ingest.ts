/**
 * Lambda handler behind `POST /PutAuditEvents` (API Gateway REST, Lambda proxy). Wiring only:
 * the logic is lambda/core/ingest.ts.
 *
 * The caller comes from the request context that API Gateway's IAM authorizer fills (principal
 * ARN, account, organization, source IP, request id, receive time) and is stamped into every
 * stored record (docs/formats.md#provenance). A request without a verified principal is
 * refused with 403: the route must sit behind AWS_IAM auth. Every answered request is logged
 * as `{requestId, eventIDs, failed}` (structured JSON, Powertools).
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { ENV, type ProducerRule, type RecipientAllowList } from '../core/config';
import { DEFAULT_MAX_EVENT_AGE_SECONDS } from '../core/contracts';
import { putAuditEvents, RequestError, type Caller, type IngestDeps } from '../core/ingest';
import { producerRulesProblem, rulesOfRecipientAllowList } from '../core/provenance';
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

const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;

/**
 * The caller as API Gateway's IAM authorizer saw it, or the name of the request-context field
 * that is missing (no verified principal: the route is not behind AWS_IAM auth).
 */
export function callerOf(event: APIGatewayProxyEvent, nowMs: number): Caller | string {
  const context = (event.requestContext ?? {}) as unknown as Record<string, unknown>;
  const identity = (context.identity ?? {}) as Record<string, unknown>;
  const principalArn = text(identity.userArn);
  if (principalArn === undefined) return 'requestContext.identity.userArn';
  const accountId = text(identity.accountId);
  if (accountId === undefined) return 'requestContext.identity.accountId';
  const principalOrgId = text(identity.principalOrgId);
  const receivedAtMs = context.requestTimeEpoch;
  return {
    principalArn,
    accountId,
    ...(principalOrgId !== undefined ? { principalOrgId } : {}),
    sourceIp: text(identity.sourceIp) ?? '',
    requestId: text(context.requestId) ?? '',
    receivedAtMs: typeof receivedAtMs === 'number' ? receivedAtMs : nowMs,
  };
}

/** What the handler logs through (Powertools' Logger in Lambda). */
export interface IngestLogger {
  info(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

/** Builds the handler from its ports (the embedded runtime and tests pass their own). */
export function createIngestHandler(deps: IngestDeps, log: IngestLogger = logger) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const caller = callerOf(event, deps.now());
    if (typeof caller === 'string') {
      log.error('PutAuditEvents without a verified caller', { missing: caller });
      return json(403, {
        __type: 'AccessDeniedException',
        message: `${caller}: absent, so the caller cannot be stamped into the records; PutAuditEvents must be called through AWS_IAM (SigV4) auth`,
      });
    }
    const body =
      event.body == null
        ? ''
        : event.isBase64Encoded
          ? Buffer.from(event.body, 'base64').toString('utf8')
          : event.body;
    try {
      const result = await putAuditEvents(body, caller, deps);
      log.info('PutAuditEvents', {
        requestId: caller.requestId,
        eventIDs: result.successful.map((entry) => entry.eventID),
        failed: result.failed.length,
      });
      return json(200, result);
    } catch (error) {
      if (error instanceof RequestError)
        return json(400, { __type: error.code, message: error.message });
      log.error('PutAuditEvents failed', { requestId: caller.requestId, error: error });
      return json(500, {
        __type: 'InternalFailure',
        message: 'the request could not be processed; retry it',
      });
    }
  };
}

/** `maxEventAge` in ms from its environment variable: absent, the default; "0", no limit. */
export function maxEventAgeMsOf(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return DEFAULT_MAX_EVENT_AGE_SECONDS * 1000;
  if (!/^\d+$/.test(value)) {
    throw new Error(`${ENV.MAX_EVENT_AGE_SECONDS}: "${value}" must be a whole number of seconds`);
  }
  const seconds = Number(value);
  return seconds === 0 ? undefined : seconds * 1000;
}

/** The producer rules of OPENTRAIL_PRODUCER_RULES; throws naming the variable and the rule. */
export function producerRulesOf(value: string | undefined): ProducerRule[] {
  if (value === undefined || value === '') return [];
  let rules: unknown;
  try {
    rules = JSON.parse(value);
  } catch (error) {
    throw new Error(`${ENV.PRODUCER_RULES}: not JSON (${(error as Error).message})`);
  }
  const problem = producerRulesProblem(rules);
  if (problem !== undefined) throw new Error(`${ENV.PRODUCER_RULES}: ${problem}`);
  return rules as ProducerRule[];
}

function fromEnvironment(): IngestDeps {
  const clients = createClients({ region: requiredEnv('AWS_REGION') });
  const allowList = process.env[ENV.RECIPIENT_ALLOW_LIST];
  const maxEventAgeMs = maxEventAgeMsOf(process.env[ENV.MAX_EVENT_AGE_SECONDS]);
  return {
    stream: new KinesisRecordStream(clients.kinesis, requiredEnv(ENV.STREAM_NAME)),
    accountId: requiredEnv(ENV.ACCOUNT_ID),
    checkRecipients: process.env[ENV.RECIPIENT_CHECK_DISABLED] !== 'true',
    producerRules: [
      ...producerRulesOf(process.env[ENV.PRODUCER_RULES]),
      // The legacy allow-list: callers that may write for any account.
      ...(allowList ? rulesOfRecipientAllowList(JSON.parse(allowList) as RecipientAllowList) : []),
    ],
    ...(maxEventAgeMs !== undefined ? { maxEventAgeMs } : {}),
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
