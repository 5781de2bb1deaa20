/**
 * Lambda handler on the event history's own Kinesis event-source mapping
 * (ReportBatchItemFailures): indexes management (and Insights) events into the history
 * table. Wiring only: the logic is lambda/core/history.ts. A failed write reports the first
 * record it held, so Lambda retries from there (record items are keyed by their content and
 * written only when absent; group items are keyed by their content, and lookups return an
 * event once however many group items list it).
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { ENV } from '../core/config';
import { indexBatch } from '../core/history';
import type { HistoryStore, MetricsSink } from '../core/ports';
import { createClients } from '../adapters/clients';
import { documentClient } from '../adapters/dynamodb';
import { DynamoHistoryStore } from '../adapters/history';
import { createLogger, createMetrics, metricsSink } from '../adapters/observability';
import { DEPLOYMENT_ENV } from '../core/metrics';
import { requiredEnv } from './env';

const logger = createLogger('indexer');

export interface IndexerDeps {
  readonly store: HistoryStore;
  readonly metrics: MetricsSink;
}

export function createIndexerHandler(deps: IndexerDeps) {
  return async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> => {
    const result = await indexBatch(
      event.Records.map((record) => ({
        sequenceNumber: record.kinesis.sequenceNumber,
        data: Buffer.from(record.kinesis.data, 'base64'),
      })),
      deps.store,
    );
    deps.metrics.count('HistoryIndexed', result.indexed);
    deps.metrics.count('HistoryDuplicates', result.duplicates);
    const skipped = Object.values(result.skipped).reduce((sum, n) => sum + n, 0);
    if (skipped > 0) deps.metrics.count('HistorySkipped', skipped);
    if (result.firstFailure !== undefined) {
      logger.error('indexing failed; the batch is retried from the first failed record', {
        sequenceNumber: result.firstFailure,
        error: result.error as Error,
      });
      return { batchItemFailures: [{ itemIdentifier: result.firstFailure }] };
    }
    logger.info('batch indexed', { records: event.Records.length, ...result });
    return { batchItemFailures: [] };
  };
}

/** The handler's EMF metrics (exported for the EMF-capture test of the alarms). */
export const metrics = createMetrics('indexer', process.env[DEPLOYMENT_ENV]);
let deployed: ReturnType<typeof createIndexerHandler> | undefined;

/** Entry point in Lambda. */
export const handler = async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> => {
  if (!deployed) {
    const clients = createClients({ region: requiredEnv('AWS_REGION') });
    deployed = createIndexerHandler({
      store: new DynamoHistoryStore(
        documentClient(clients.dynamodb),
        requiredEnv(ENV.HISTORY_TABLE),
      ),
      metrics: metricsSink(metrics),
    });
  }
  try {
    return await deployed(event);
  } finally {
    metrics.publishStoredMetrics();
  }
};
