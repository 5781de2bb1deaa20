/**
 * Lambda handler on the Insights schedule (EventBridge Scheduler, every minute): judges the
 * minutes due and puts the Insights records raised into the stream, like any record, so the
 * packager, digests, the publisher and the history index take them from there. Wiring only:
 * the logic is lambda/core/insights-live.ts (docs/design.md#insights).
 */
import { DEPLOYMENT_ENV } from '../core/metrics';
import { ENV } from '../core/config';
import type { InsightType } from '../core/insights-counts';
import {
  runScheduledDetector,
  type ScheduledDetectorDeps,
  type ScheduledRunResult,
} from '../core/insights-live';
import { createClients } from '../adapters/clients';
import { documentClient } from '../adapters/dynamodb';
import { DynamoInsightCountStore, DynamoInsightStateStore } from '../adapters/insights-dynamodb';
import { DynamoHistoryStore } from '../adapters/history';
import { LookupInsightHistorySource } from '../core/insights-history';
import { HmacMac } from '../adapters/mac';
import { randomBytes } from 'node:crypto';
import { KinesisRecordStream } from '../adapters/kinesis';
import { createLogger, createMetrics, metricsSink } from '../adapters/observability';
import type { MetricsSink } from '../core/ports';
import { requiredEnv } from './env';

const logger = createLogger('insights');

export interface InsightsHandlerDeps extends ScheduledDetectorDeps {
  readonly metrics: MetricsSink;
}

export function createInsightsHandler(deps: InsightsHandlerDeps) {
  return async (): Promise<ScheduledRunResult> => {
    const result = await runScheduledDetector(deps);
    deps.metrics.count('InsightsMinutesJudged', result.judged.length);
    deps.metrics.count('InsightsRecordsRaised', result.records.length);
    logger.info('insights run', {
      judged: result.judged.length,
      from: result.judged[0],
      records: result.records.length,
      series: result.seriesRead,
      ...(result.seeded ? { seededCounts: result.seeded.counts } : {}),
    });
    return result;
  };
}

const metrics = createMetrics('insights', process.env[DEPLOYMENT_ENV]);
let deployed: ReturnType<typeof createInsightsHandler> | undefined;

/** Entry point in Lambda (the schedule's payload is ignored: the clock decides). */
export const handler = async (): Promise<void> => {
  if (!deployed) {
    const clients = createClients({ region: requiredEnv('AWS_REGION') });
    const documents = documentClient(clients.dynamodb);
    const table = requiredEnv(ENV.INSIGHTS_TABLE);
    const historyTable = process.env[ENV.HISTORY_TABLE];
    deployed = createInsightsHandler({
      counts: new DynamoInsightCountStore(documents, table),
      state: new DynamoInsightStateStore(documents, table),
      stream: new KinesisRecordStream(clients.kinesis, requiredEnv(ENV.STREAM_NAME)),
      insightTypes: JSON.parse(requiredEnv(ENV.INSIGHT_TYPES)) as InsightType[],
      now: Date.now,
      metrics: metricsSink(metrics),
      // Warm-up from the event history, when the deployment has one.
      ...(historyTable
        ? {
            history: new LookupInsightHistorySource(
              new DynamoHistoryStore(documents, historyTable),
              // Page tokens of this process's own reads only.
              new HmacMac(randomBytes(32)),
              Date.now,
            ),
          }
        : {}),
    });
  }
  try {
    await deployed();
  } finally {
    metrics.publishStoredMetrics();
  }
};
