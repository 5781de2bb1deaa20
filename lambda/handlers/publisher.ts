/**
 * Lambda handler on the publisher's Kinesis event-source mapping (ReportBatchItemFailures):
 * every record to the event bus and, per trail, to CloudWatch Logs. Wiring only: the logic is
 * lambda/core/publisher.ts. A partial failure is reported at the first record not fully
 * delivered; Lambda retries from there and finally writes the records to the on-failure bucket.
 */
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { ENV, type TrailConfig } from '../core/config';
import { publishBatch, type PublisherDeps, type PublisherRecord } from '../core/publisher';
import { CloudWatchLogEventSink } from '../adapters/cloudwatch-logs';
import { EventBridgeBus } from '../adapters/eventbridge';
import { createLogger, createMetrics, metricsSink } from '../adapters/observability';
import { DEPLOYMENT_ENV } from '../core/metrics';
import { requiredEnv } from './env';

const logger = createLogger('publisher');

/** The stream records of a Lambda Kinesis event. */
export function toPublisherRecords(event: KinesisStreamEvent): PublisherRecord[] {
  return event.Records.map((record) => ({
    sequenceNumber: record.kinesis.sequenceNumber,
    data: Buffer.from(record.kinesis.data, 'base64'),
    arrivalMs: Math.round(record.kinesis.approximateArrivalTimestamp * 1000),
  }));
}

export function createPublisherHandler(deps: PublisherDeps) {
  return async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> => {
    const records = toPublisherRecords(event);
    const result = await publishBatch(records, deps);
    const fields = {
      records: records.length,
      published: result.published,
      skippedOversize: result.skippedOversize,
      skippedReadOnly: result.skippedReadOnly,
      unparseable: result.unparseable,
      retriedEntries: result.retriedEntries,
      logEvents: result.logEvents,
    };
    if (result.failedSequenceNumber) {
      logger.warn('batch partly published; retrying from the first failed record', {
        ...fields,
        failedSequenceNumber: result.failedSequenceNumber,
      });
      return { batchItemFailures: [{ itemIdentifier: result.failedSequenceNumber }] };
    }
    logger.info('batch published', fields);
    return { batchItemFailures: [] };
  };
}

let deployed: ((event: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse>) | undefined;
/** The handler's EMF metrics (exported for the EMF-capture test of the alarms). */
export const metrics = createMetrics('publisher', process.env[DEPLOYMENT_ENV]);

function fromEnvironment(): PublisherDeps {
  const region = requiredEnv('AWS_REGION');
  const trails = JSON.parse(process.env[ENV.TRAILS] ?? '[]') as TrailConfig[];
  const groups = JSON.parse(process.env[ENV.LOG_GROUPS] ?? '{}') as Record<string, string>;
  const logGroups = trails
    .filter((trail) => groups[trail.name])
    .map((trail) => ({ trail, logGroupName: groups[trail.name]! }));
  return {
    bus: new EventBridgeBus(new EventBridgeClient({ region }), requiredEnv(ENV.EVENT_BUS_NAME)),
    metrics: metricsSink(metrics),
    includeReadOnly: process.env[ENV.PUBLISH_READ_ONLY] !== 'false',
    ...(logGroups.length > 0
      ? { logGroups, logs: new CloudWatchLogEventSink(new CloudWatchLogsClient({ region })) }
      : {}),
    now: Date.now,
  };
}

/** Entry point in Lambda. */
export const handler = async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> => {
  deployed ??= createPublisherHandler(fromEnvironment());
  try {
    return await deployed(event);
  } finally {
    metrics.publishStoredMetrics();
  }
};
