/**
 * Lambda handler on the Kinesis event-source mapping that writes log files. Wiring only: the
 * logic is lambda/core/packager.ts. It reports no partial failures: any error fails the batch,
 * which Lambda retries whole (same records), so the output stays deterministic.
 */
import { SNSClient } from '@aws-sdk/client-sns';
import type { KinesisStreamEvent } from 'aws-lambda';
import { ENV, type TrailConfig } from '../core/config';
import { packageBatch } from '../core/packager';
import type { PackagerDeps, StreamBatch } from '../core/packager-types';
import { createClients } from '../adapters/clients';
import { documentClient, DynamoDedupStore, DynamoManifestStore } from '../adapters/dynamodb';
import { createLogger, createMetrics, metricsSink } from '../adapters/observability';
import { DEPLOYMENT_ENV } from '../core/metrics';
import { DynamoDigestChainStore } from '../adapters/dynamodb-digests';
import { DynamoInsightCountStore } from '../adapters/insights-dynamodb';
import { S3ObjectStore } from '../adapters/s3';
import { SnsDeliveryNotifier } from '../adapters/sns';
import { requiredEnv } from './env';

const logger = createLogger('packager');

/** The batch as the core sees it. All records of one invocation come from one shard. */
export function toStreamBatch(event: KinesisStreamEvent): StreamBatch {
  const first = event.Records[0];
  return {
    shardId: first ? first.eventID.slice(0, first.eventID.indexOf(':')) : '',
    records: event.Records.map((record) => ({
      sequenceNumber: record.kinesis.sequenceNumber,
      partitionKey: record.kinesis.partitionKey,
      data: Buffer.from(record.kinesis.data, 'base64'),
      arrivalMs: Math.round(record.kinesis.approximateArrivalTimestamp * 1000),
    })),
  };
}

export function createPackagerHandler(deps: PackagerDeps) {
  return async (event: KinesisStreamEvent): Promise<void> => {
    const batch = toStreamBatch(event);
    const result = await packageBatch(batch, deps);
    logger.info('batch packaged', {
      shardId: batch.shardId,
      records: batch.records.length,
      files: result.files.length,
      duplicates: result.duplicates,
      conflicts: result.conflicts,
    });
  };
}

let deployed: ((event: KinesisStreamEvent) => Promise<void>) | undefined;
/** The handler's EMF metrics (exported for the EMF-capture test of the alarms). */
export const metrics = createMetrics('packager', process.env[DEPLOYMENT_ENV]);

function fromEnvironment(): PackagerDeps {
  const clients = createClients({ region: requiredEnv('AWS_REGION') });
  const documents = documentClient(clients.dynamodb);
  const snsTopics = process.env[ENV.SNS_TOPICS];
  return {
    trails: JSON.parse(requiredEnv(ENV.TRAILS)) as TrailConfig[],
    bucket: requiredEnv(ENV.LOG_BUCKET),
    objects: new S3ObjectStore(clients.s3),
    manifest: new DynamoManifestStore(documents, requiredEnv(ENV.MANIFEST_TABLE)),
    dedup: new DynamoDedupStore(documents, requiredEnv(ENV.DEDUP_TABLE)),
    metrics: metricsSink(metrics),
    dedupWindowMs: Number(requiredEnv(ENV.DEDUP_WINDOW_SECONDS)) * 1000,
    now: Date.now,
    // SNS delivery notices, for the trails that have a topic (docs/formats.md#delivery-notices).
    ...(snsTopics
      ? {
          notifier: new SnsDeliveryNotifier(
            new SNSClient({ region: requiredEnv('AWS_REGION') }),
            JSON.parse(snsTopics) as Record<string, string>,
          ),
        }
      : {}),
    // The digest signer's stream registry, when log-file validation is deployed.
    ...(process.env[ENV.CHAIN_TABLE]
      ? { streams: new DynamoDigestChainStore(documents, requiredEnv(ENV.CHAIN_TABLE)) }
      : {}),
    // Insights counters, when the deployment runs Insights (docs/design.md#insights).
    ...(process.env[ENV.INSIGHTS_TABLE]
      ? {
          insightCounts: new DynamoInsightCountStore(documents, requiredEnv(ENV.INSIGHTS_TABLE)),
        }
      : {}),
  };
}

/** Entry point in Lambda. */
export const handler = async (event: KinesisStreamEvent): Promise<void> => {
  deployed ??= createPackagerHandler(fromEnvironment());
  try {
    await deployed(event);
  } finally {
    metrics.publishStoredMetrics();
  }
};
