/**
 * Insights in the embedded runtime (`opentrail local --insights`): the Insights table, and the
 * same scheduled detector as the Lambda on a timer (every minute by default), putting its
 * records into the local stream. The packager counts into the table when Insights are on
 * (local/components/packager.ts). Off by default: counting costs a write per busy key per batch.
 *
 * Operation it adds behind `POST /`: `Opentrail.RunInsights` (local only) runs the detector now
 * and answers `{"Judged":[minutes…],"Records":[…]}`.
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
import { KinesisRecordStream } from '../../lambda/adapters/kinesis';
import { createInsightsHandler } from '../../lambda/handlers/insights';
import type { RuntimeComponent, RuntimeContext } from '../runtime-context';

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
    const offsetMs = insights.clockOffsetMs ?? 0;
    const run = createInsightsHandler({
      counts: new DynamoInsightCountStore(context.documents, LOCAL_INSIGHTS_TABLE),
      state: new DynamoInsightStateStore(context.documents, LOCAL_INSIGHTS_TABLE),
      stream: new KinesisRecordStream(context.clients.kinesis, context.names.stream),
      insightTypes: deploymentInsightTypes(context),
      now: () => Date.now() + offsetMs,
      metrics: context.metrics,
    });
    // One run at a time, whether from the timer or the operation.
    let running: Promise<unknown> = Promise.resolve();
    const serial = () => {
      const next = running.catch(() => undefined).then(run);
      running = next;
      return next;
    };
    context.every('insights', insights.intervalMs ?? INSIGHTS_INTERVAL_MS, async () => {
      await serial();
    });
    context.operation(RUN_INSIGHTS_TARGET, async () => {
      const result = await serial();
      return { Judged: result.judged, Records: result.records };
    });
  },
};
