/**
 * Insights in the embedded runtime (`opentrail local --insights`): the Insights table, and the
 * same scheduled detector as the Lambda on a timer (every minute by default), putting its
 * records into the local stream. The packager counts into the table when Insights are on
 * (local/components/packager.ts). Off by default: counting costs a write per busy key per batch.
 *
 * Operation it adds behind `POST /`: `Opentrail.RunInsights` (local only) runs the detector now
 * and answers `{"Judged":[epoch minutes…],"Records":[…]}`. `{"AsOf": epochSeconds}` runs it as
 * if the clock said so (demos and tests: judge a minute without waiting 5 minutes); the minutes
 * judged never go back, so a later run with the real clock judges nothing twice.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { INSIGHT_TYPES, type InsightType } from '../../lambda/core/insights-counts';
import { INSIGHTS_TABLE } from '../../lambda/core/insights-live';
import {
  DynamoInsightCountStore,
  DynamoInsightStateStore,
} from '../../lambda/adapters/insights-dynamodb';
import { DynamoHistoryStore } from '../../lambda/adapters/history';
import { LookupInsightHistorySource } from '../../lambda/core/insights-history';
import { HmacMac } from '../../lambda/adapters/mac';
import { randomBytes } from 'node:crypto';
import { KinesisRecordStream } from '../../lambda/adapters/kinesis';
import { ApiError } from '../../lambda/core/api-error';
import { createInsightsHandler } from '../../lambda/handlers/insights';
import type { RuntimeComponent, RuntimeContext } from '../runtime-context';
import { LOCAL_HISTORY_TABLE } from './history';

/** The Insights table of the embedded runtime. */
export const LOCAL_INSIGHTS_TABLE = 'opentrail-insights';

/** `X-Amz-Target` of the local operation that runs the detector now. */
export const RUN_INSIGHTS_TARGET = 'Opentrail.RunInsights';

/** The scheduled detector's period, as EventBridge Scheduler's rate(1 minute). */
export const INSIGHTS_INTERVAL_MS = 60_000;

export async function ensureInsightsTable(dynamodb: DynamoDBClient): Promise<void> {
  await dynamodb
    .send(
      new CreateTableCommand({
        TableName: LOCAL_INSIGHTS_TABLE,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: INSIGHTS_TABLE.partitionKey, AttributeType: 'S' },
          { AttributeName: INSIGHTS_TABLE.sortKey, AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: INSIGHTS_TABLE.partitionKey, KeyType: 'HASH' },
          { AttributeName: INSIGHTS_TABLE.sortKey, KeyType: 'RANGE' },
        ],
      }),
    )
    .catch((error: unknown) => {
      if ((error as Error).name !== 'ResourceInUseException') throw error;
    });
  for (let i = 0; i < 200; i++) {
    const table = await dynamodb.send(
      new DescribeTableCommand({ TableName: LOCAL_INSIGHTS_TABLE }),
    );
    if (table.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`table ${LOCAL_INSIGHTS_TABLE} did not become active`);
}

/** The Insight types the deployment detects: the union of its trails' selectors. */
export function deploymentInsightTypes(context: RuntimeContext): InsightType[] {
  const types = new Set<InsightType>();
  for (const trail of context.trails)
    for (const type of trail.insightSelectors?.map((s) => s.InsightType) ?? INSIGHT_TYPES)
      types.add(type);
  return INSIGHT_TYPES.filter((type) => types.has(type));
}

/** The detector on a timer, when `--insights` is on. */
export const insightsComponent: RuntimeComponent = {
  name: 'insights',
  start: async (context) => {
    const insights = context.options.insights;
    if (!insights) return;
    await ensureInsightsTable(context.clients.dynamodb);
    let asOfMs: number | undefined;
    const now = (): number => asOfMs ?? Date.now();
    // Warm-up from the event history when the history component runs.
    const history =
      context.options.components === undefined ||
      context.options.components.some((c) => c.name === 'history');
    const run = createInsightsHandler({
      counts: new DynamoInsightCountStore(context.documents, LOCAL_INSIGHTS_TABLE),
      state: new DynamoInsightStateStore(context.documents, LOCAL_INSIGHTS_TABLE),
      stream: new KinesisRecordStream(context.clients.kinesis, context.names.stream),
      insightTypes: deploymentInsightTypes(context),
      now,
      metrics: context.metrics,
      ...(history
        ? {
            history: new LookupInsightHistorySource(
              new DynamoHistoryStore(context.documents, LOCAL_HISTORY_TABLE),
              // Page tokens of this process's own reads only.
              new HmacMac(randomBytes(32)),
              now,
            ),
          }
        : {}),
    });
    // One run at a time, whether from the timer or the operation.
    let running: Promise<unknown> = Promise.resolve();
    const serial = (at?: number) => {
      const next = running
        .catch(() => undefined)
        .then(async () => {
          asOfMs = at;
          try {
            return await run();
          } finally {
            asOfMs = undefined;
          }
        });
      running = next;
      return next;
    };
    context.every('insights', insights.intervalMs ?? INSIGHTS_INTERVAL_MS, async () => {
      await serial();
    });
    context.operation(RUN_INSIGHTS_TARGET, async (request) => {
      const asOf = request.AsOf;
      if (asOf !== undefined && (typeof asOf !== 'number' || !Number.isFinite(asOf)))
        throw new ApiError(
          'InvalidParameterValueException',
          `AsOf: must be a number of epoch seconds, got ${JSON.stringify(asOf)}`,
        );
      const result = await serial(asOf === undefined ? undefined : asOf * 1000);
      return { Judged: result.judged, Records: result.records };
    });
  },
};
