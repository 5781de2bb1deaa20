import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import {
  FAILED_RECORDS_METRICS_ID,
  failedBatchesMetric,
  FailedRecordsDestination,
} from './failed-records-destination';
import type { OpentrailFunction } from './opentrail-function';
import { createAccessLogsBucket, createSecureBucket } from './secure-bucket';
import {
  requireDurationInRange,
  requireIntegerInRange,
  requireRecordAgeWithinRetention,
} from './validate';

/** Construct id of the failed-records bucket {@link StreamConsumer.createFailedRecordsBucket} makes. */
const FAILED_RECORDS_BUCKET_ID = 'FailedRecordsBucket';

/** Kinesis event-source limits Lambda enforces (CreateEventSourceMapping). */
export const STREAM_MAPPING_LIMITS = {
  maxBatchSize: 10_000,
  maxBatchingWindowSeconds: 300,
  maxRetryAttempts: 10_000,
  minRecordAgeSeconds: 60,
  maxRecordAgeSeconds: 7 * 24 * 3600,
  maxParallelizationFactor: 10,
} as const;

/** The mapping settings a user may choose; each falls back to the consumer's default. */
export interface StreamConsumerOptions {
  readonly batchSize?: number;
  readonly maxBatchingWindow?: Duration;
  readonly retryAttempts?: number;
  readonly maxRecordAge?: Duration;
  readonly parallelizationFactor?: number;
}

/** Resolved (and checked) mapping settings. */
export interface StreamConsumerSettings {
  readonly batchSize: number;
  readonly maxBatchingWindow: Duration;
  readonly retryAttempts: number;
  readonly maxRecordAge: Duration;
  readonly parallelizationFactor: number;
}

export interface StreamConsumerProps {
  /** The stream the mapping reads, from TRIM_HORIZON. */
  readonly stream: kinesis.IStream;
  /** The consumer function; the mapping is added to it (so its logical ID is the function's). */
  readonly handler: OpentrailFunction;
  /** Settings from {@link StreamConsumer.settings}. */
  readonly settings: StreamConsumerSettings;
  /**
   * Split a failing batch in two and retry each half, and report batch item failures. Only for
   * consumers whose output does not depend on batch boundaries.
   */
  readonly isolateFailures: boolean;
  /**
   * Where given-up batches go, records included: a bucket passed in, or
   * {@link StreamConsumer.createFailedRecordsBucket}.
   */
  readonly failedRecordsBucket: s3.IBucket;
}

/**
 * One Kinesis consumer — the packager, the indexer or the publisher: its event-source mapping
 * with bounded retries and record age, the S3 on-failure destination with narrow grants (see
 * docs/operations.md for redrive), and the metrics its alarms use (iterator age, errors,
 * throttles, failed batches).
 *
 * Not a construct node of its own, on purpose: what it creates stays under the owning construct
 * with the ids it always had (`FailedRecordsBucket`, `AccessLogsBucket`, and the mapping under
 * the function), so no deployed bucket or event-source mapping is replaced.
 */
export class StreamConsumer {
  /**
   * Resolves `options` against `defaults` and checks every setting against Lambda's limits
   * (and `maxRecordAge` against the stream's retention), naming the setting, its value and the
   * allowed range. Call it before creating anything, so bad input fails synth first.
   */
  public static settings(
    scope: Construct,
    options: StreamConsumerOptions,
    defaults: StreamConsumerSettings,
    streamRetention?: Duration,
  ): StreamConsumerSettings {
    const s: StreamConsumerSettings = {
      batchSize: options.batchSize ?? defaults.batchSize,
      maxBatchingWindow: options.maxBatchingWindow ?? defaults.maxBatchingWindow,
      retryAttempts: options.retryAttempts ?? defaults.retryAttempts,
      maxRecordAge: options.maxRecordAge ?? defaults.maxRecordAge,
      parallelizationFactor: options.parallelizationFactor ?? defaults.parallelizationFactor,
    };
    const limits = STREAM_MAPPING_LIMITS;
    requireIntegerInRange(
      scope,
      'INVALID_BATCH_SIZE',
      'batchSize',
      s.batchSize,
      1,
      limits.maxBatchSize,
      'Lambda reads 1-10000 records per Kinesis batch.',
    );
    requireDurationInRange(
      scope,
      'INVALID_BATCHING_WINDOW',
      'maxBatchingWindow',
      s.maxBatchingWindow,
      0,
      limits.maxBatchingWindowSeconds,
      'Lambda accepts a Kinesis batching window of 0-300 whole seconds; use Duration.seconds(300) or less.',
    );
    requireIntegerInRange(
      scope,
      'INVALID_RETRY_ATTEMPTS',
      'retryAttempts',
      s.retryAttempts,
      0,
      limits.maxRetryAttempts,
      'Retries must be bounded (no -1): a batch that keeps failing goes to the failed-records bucket.',
    );
    requireDurationInRange(
      scope,
      'INVALID_RECORD_AGE',
      'maxRecordAge',
      s.maxRecordAge,
      limits.minRecordAgeSeconds,
      limits.maxRecordAgeSeconds,
      'Lambda accepts 60 seconds to 7 days (no infinite age).',
    );
    requireRecordAgeWithinRetention(scope, s.maxRecordAge, streamRetention);
    requireIntegerInRange(
      scope,
      'INVALID_FUNCTION_SETTINGS',
      'parallelizationFactor',
      s.parallelizationFactor,
      1,
      limits.maxParallelizationFactor,
      'Lambda accepts 1-10 concurrent batches per shard.',
    );
    return s;
  }

  /**
   * A failed-records bucket with id `FailedRecordsBucket` in `scope`: SSE-KMS with `key`, TLS
   * only, versioned, public access blocked, retained, access logs to `accessLogsBucket` (or a
   * new `AccessLogsBucket` in `scope`) under `accessLogsPrefix`, and the request-metrics filter
   * {@link metricFailedBatches} reads.
   */
  public static createFailedRecordsBucket(
    scope: Construct,
    props: {
      readonly encryptionKey: kms.IKey;
      readonly accessLogsBucket?: s3.IBucket;
      readonly accessLogsPrefix: string;
    },
  ): s3.Bucket {
    return createSecureBucket(scope, FAILED_RECORDS_BUCKET_ID, {
      encryptionKey: props.encryptionKey,
      accessLogs: {
        bucket: props.accessLogsBucket ?? createAccessLogsBucket(scope, 'AccessLogsBucket'),
        prefix: props.accessLogsPrefix,
      },
      // Request metrics, so that "a batch was given up" is an alarm within minutes rather
      // than a daily storage metric.
      metrics: [{ id: FAILED_RECORDS_METRICS_ID }],
    });
  }

  /** The Kinesis event source (its mapping id and ARN). */
  public readonly eventSource: sources.KinesisEventSource;
  /** Batches given up after retries or age, records included; `opentrail redrive` reads it. */
  public readonly failedRecordsBucket: s3.IBucket;
  /** The consumer function. */
  public readonly handler: OpentrailFunction;
  /**
   * Whether the failed-records bucket has the request-metrics filter that
   * {@link metricFailedBatches} reads: true for the bucket {@link createFailedRecordsBucket}
   * made in the owning construct, false for a bucket passed in (its owner configures it).
   */
  public readonly hasRequestMetrics: boolean;

  constructor(scope: Construct, props: StreamConsumerProps) {
    this.handler = props.handler;
    this.failedRecordsBucket = props.failedRecordsBucket;
    const bucketNode = props.failedRecordsBucket.node;
    this.hasRequestMetrics =
      bucketNode.scope === scope && bucketNode.id === FAILED_RECORDS_BUCKET_ID;
    const s = props.settings;
    this.eventSource = new sources.KinesisEventSource(props.stream, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: s.batchSize,
      maxBatchingWindow: s.maxBatchingWindow,
      bisectBatchOnError: props.isolateFailures,
      reportBatchItemFailures: props.isolateFailures,
      retryAttempts: s.retryAttempts,
      maxRecordAge: s.maxRecordAge,
      parallelizationFactor: s.parallelizationFactor,
      onFailure: new FailedRecordsDestination(this.failedRecordsBucket),
    });
    this.handler.function.addEventSource(this.eventSource);
  }

  /** Age of the newest record of the last batch read, per function (maximum, milliseconds). */
  public metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metric('IteratorAge', { statistic: 'Maximum', ...props });
  }

  /** Invocations that failed (sum). */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metricErrors(props);
  }

  /** Throttled invocations (sum). */
  public metricThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metricThrottles(props);
  }

  /**
   * Objects written to the failed-records bucket (S3 request metric `PutRequests`, sum): each
   * is a batch given up after its retries or age. Only a bucket this consumer created has the
   * request-metrics filter; for a bucket passed in, add `{ id: 'FailedRecords' }` metrics to it.
   */
  public metricFailedBatches(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return failedBatchesMetric(this.failedRecordsBucket, props);
  }

  /**
   * Objects in the failed-records bucket (S3 storage metric `NumberOfObjects`, all storage
   * classes, maximum, daily): S3 emits it for every bucket, one passed in too. Redriven batches
   * stay in the bucket under `redriven/`, so it only grows; see
   * {@link metricFailedRecordsObjectsAdded}.
   */
  public metricFailedRecordsObjects(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/S3',
      metricName: 'NumberOfObjects',
      dimensionsMap: {
        BucketName: this.failedRecordsBucket.bucketName,
        StorageType: 'AllStorageTypes',
      },
      statistic: 'Maximum',
      period: Duration.days(1),
      ...props,
    });
  }

  /**
   * Objects added to the failed-records bucket since the day before (`DIFF` of
   * {@link metricFailedRecordsObjects}): a batch given up adds one, a redrive moves it under
   * `redriven/` (no change), so more than 0 means a batch was given up that day.
   */
  public metricFailedRecordsObjectsAdded(): cloudwatch.MathExpression {
    return new cloudwatch.MathExpression({
      expression: 'DIFF(objects)',
      usingMetrics: { objects: this.metricFailedRecordsObjects() },
      label: 'Objects added to the failed-records bucket',
      period: Duration.days(1),
    });
  }

  /**
   * What "a batch was given up" is watched by: the request metric {@link metricFailedBatches}
   * (within 5 minutes) when the bucket has its filter, else
   * {@link metricFailedRecordsObjectsAdded} (daily): an alarm never watches a metric nobody emits.
   */
  public metricGivenUpBatches(): cloudwatch.IMetric {
    return this.hasRequestMetrics
      ? this.metricFailedBatches()
      : this.metricFailedRecordsObjectsAdded();
  }
}

/** Defaults shared by the three consumers: 10 retries, 24 h record age, one batch per shard. */
export const CONSUMER_DEFAULTS = {
  retryAttempts: 10,
  maxRecordAge: Duration.hours(24),
  parallelizationFactor: 1,
} as const;
