import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { KinesisRecordStream } from '../../lambda/adapters/kinesis';
import { producerRulesProblem } from '../../lambda/core/provenance';
import { createIngestHandler } from '../../lambda/handlers/ingest';
import type { RuntimeComponent } from '../runtime-context';

/**
 * The principal every request to the embedded runtime is stamped with
 * (docs/formats.md#provenance): whoever holds the endpoints.json credentials of this run, as one
 * fixed IAM user of the runtime's account. The embedded API does not verify signatures, so
 * the stamp says "a local client", never which one.
 */
export function localPrincipalArn(accountId: string): string {
  return `arn:aws:iam::${accountId}:user/opentrail-local`;
}

/**
 * The request as API Gateway's IAM authorizer would pass it: the local principal and account
 * in `requestContext.identity`; the socket's IP, the request id and the receive time are
 * already there (local/http-api.ts).
 */
function asLocalCaller(event: APIGatewayProxyEvent, accountId: string): APIGatewayProxyEvent {
  const arn = localPrincipalArn(accountId);
  return {
    ...event,
    requestContext: {
      ...event.requestContext,
      identity: {
        ...event.requestContext.identity,
        accountId,
        caller: arn,
        user: arn,
        userArn: arn,
      },
    },
  };
}

/**
 * `POST /PutAuditEvents` → the ingest handler → kinesalite. Every record carries the local
 * caller's stamp; the InvalidRecipient rule and `maxEventAge` are off (one local principal
 * writes for any account and replays archives of any age); the runtime's `producerRules`
 * apply.
 */
export const ingestComponent: RuntimeComponent = {
  name: 'ingest',
  start: (context) => {
    const rules = context.options.producerRules;
    const problem = rules === undefined ? undefined : producerRulesProblem(rules);
    if (problem !== undefined) return Promise.reject(new Error(`runtime option ${problem}`));
    const ingest = createIngestHandler({
      stream: new KinesisRecordStream(context.clients.kinesis, context.names.stream),
      accountId: context.accountId,
      checkRecipients: false,
      ...(rules ? { producerRules: rules } : {}),
      now: Date.now,
      newEventId: randomUUID,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    });
    context.route('POST /PutAuditEvents', async (event) => {
      const response = await ingest(asLocalCaller(event, context.accountId));
      if (response.statusCode === 200) {
        // The status line's "events in": entries Kinesis acknowledged.
        const accepted = (JSON.parse(response.body) as { successful?: unknown[] }).successful;
        context.metrics.count('EventsAccepted', accepted?.length ?? 0);
      }
      return response;
    });
    return Promise.resolve();
  },
};
