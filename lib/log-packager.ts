import { Annotations, Duration, RemovalPolicy, Tokenization } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import {
  DEFAULT_DEDUP_WINDOW_SECONDS,
  DEFAULT_MAX_TRAILS,
  DEFAULT_TRAIL,
  ENV,
  type TrailConfig,
} from '../lambda/core/config';
import { validateTrailConfigs } from '../lambda/core/selectors';
import { DEDUP_TABLE, MANIFEST_TABLE } from '../lambda/core/tables';
import { OpentrailConfigError } from './private/errors';
import { acknowledgeIamWildcards } from './private/nag';
import {
  FAILED_RECORDS_METRICS_ID,
  failedBatchesMetric,
  FailedRecordsDestination,
} from './private/failed-records-destination';
import { OpentrailFunction } from './private/opentrail-function';
import {
  createAccessLogsBucket,
  createDataKey,
  createSecureBucket,
  useBucketPolicyForAccessLogs,
} from './private/secure-bucket';
import {
  requireDurationInRange,
  requireIntegerInRange,
  requireRecordAgeWithinRetention,
  secondsOf,
} from './private/validate';

/** Kinesis event-source limits Lambda enforces (CreateEventSourceMapping). */
const MAX_BATCH_SIZE = 10_000;
const MAX_BATCHING_WINDOW_SECONDS = 300;
const MAX_RETRY_ATTEMPTS = 10_000;
const MIN_RECORD_AGE_SECONDS = 60;
const MAX_RECORD_AGE_SECONDS = 7 * 24 * 3600;

/** Id of the S3 request-metrics filter on the failed-records bucket. */

/** Everything about the packager that a user chooses; {@link LogPackagerProps} adds the wiring. */
export interface LogPackagerOptions {
  /**
   * The trails: each gets its own copy of the events its selectors accept. Checked at synth
   * (names, prefixes, selectors, count); an invalid one fails synth naming the trail, the
   * selector and the rule.
   * @default [DEFAULT_TRAIL] - one trail, "opentrail", keeping every event
   */
  readonly trails?: readonly TrailConfig[];
  /**
   * How many trails may be defined.
   * @default DEFAULT_MAX_TRAILS (5)
   */
  readonly maxTrails?: number;
  /**
   * How long an eventID is remembered to drop identical repeats.
   * @default Duration.seconds(DEFAULT_DEDUP_WINDOW_SECONDS) (24 hours)
   */
  readonly dedupWindow?: Duration;
  /**
   * Most records per invocation (1-10000). Larger batches make fewer, larger log files.
   * @default 1000
   */
  readonly batchSize?: number;
  /**
   * How long Lambda gathers records before invoking (0-300 s, whole seconds): the delivery
   * delay traded for fewer log files.
   * @default Duration.seconds(300)
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * Retries of a failed batch before it goes to the failed-records bucket (0-10000; never
   * infinite, so a poison batch cannot stall its shard until the records expire).
   * @default 10
   */
  readonly retryAttempts?: number;
  /**
   * Records older than this go to the failed-records bucket instead of being retried again
   * (60 s to 7 days, at most the stream's retention).
   * @default Duration.hours(24)
   */
  readonly maxRecordAge?: Duration;
  /**
   * Key for the two tables and the failed-records bucket.
   * @default - a new customer managed key, rotated yearly, retained
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Delivery manifest table (see lambda/core/tables.ts: partition key `pk`, GSI `byStream` on
   * `stream`/`deliveredAt`). Bring your own only with exactly that layout.
   * @default - a new table: on-demand, PITR, SSE-KMS, deletion protection, retained
   */
  readonly manifestTable?: dynamodb.ITable;
  /**
   * Dedup table (partition key `pk`, TTL attribute `expiresAt`).
   * @default - a new table: on-demand, PITR, SSE-KMS, TTL, deletion protection, retained
   */
  readonly dedupTable?: dynamodb.ITable;
  /**
   * Where the failed-records bucket's server access logs go (an SSE-S3 bucket).
   * @default - a new access-log bucket
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * Function memory in MB.
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * Function timeout.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * Retention of the function's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Active X-Ray tracing.
   * @default false
   */
  readonly tracing?: boolean;
}

export interface LogPackagerProps extends LogPackagerOptions {
  /** The stream to read. */
  readonly stream: kinesis.IStream;
  /**
   * The stream's retention, to check `maxRecordAge` against.
   * @default - not checked
   */
  readonly streamRetention?: Duration;
  /** The bucket log files are written to (its key, if any, is granted too). */
  readonly logBucket: s3.IBucket;
}

/**
 * The packager: a Lambda function on a Kinesis event-source mapping that turns batches of
 * records into CloudTrail log files (docs/formats.md#log-files), one per (trail, account, region), with a
 * delivery-manifest row per file and dedup claims per eventID.
 *
 * Mapping defaults: TRIM_HORIZON, batch 1000 records / 300 s, one batch per shard at a time,
 * 10 retries of a failed batch, records older than 24 h given up, bisect and partial batch
 * failures OFF (see the comment at the mapping), given-up batches written — records included
 * — to a dedicated failed-records bucket (SSE-KMS, TLS-only, versioned, blocked, retained).
 *
 * Grants, and nothing else: read the stream; put and read objects in the log bucket (put is
 * `If-None-Match: *`, read verifies what a retry finds); read/write items of both tables; put
 * objects in the failed-records bucket (done by the mapping, with the function's role).
 *
 * Environment: OPENTRAIL_TRAILS (JSON TrailConfig[]), OPENTRAIL_LOG_BUCKET,
 * OPENTRAIL_MANIFEST_TABLE, OPENTRAIL_DEDUP_TABLE, OPENTRAIL_DEDUP_WINDOW_SECONDS; the whole
 * environment is checked against Lambda's 4 KB limit at synth.
 */
export class LogPackager extends Construct {
  /** The packager function and its role and log group. */
  public readonly handler: OpentrailFunction;
  /** The Kinesis event source (its mapping id and ARN). */
  public readonly eventSource: sources.KinesisEventSource;
  /** The delivery manifest. */
  public readonly manifestTable: dynamodb.ITable;
  /** Dedup claims. */
  public readonly dedupTable: dynamodb.ITable;
  /** Batches given up after retries or age, records included; `opentrail redrive` reads it. */
  public readonly failedRecordsBucket: s3.Bucket;
  /** Key of the tables and the failed-records bucket it created. */
  public readonly encryptionKey: kms.IKey;
  /** The trails it packages for. */
  public readonly trails: readonly TrailConfig[];
  /** Its batching window (for alarm thresholds). */
  public readonly maxBatchingWindow: Duration;

  constructor(scope: Construct, id: string, props: LogPackagerProps) {
    super(scope, id);
    useBucketPolicyForAccessLogs(this);

    this.trails = props.trails ?? [DEFAULT_TRAIL];
    const maxTrails = props.maxTrails ?? DEFAULT_MAX_TRAILS;
    const batchSize = props.batchSize ?? 1000;
    this.maxBatchingWindow =
      props.maxBatchingWindow ?? Duration.seconds(MAX_BATCHING_WINDOW_SECONDS);
    const retryAttempts = props.retryAttempts ?? 10;
    const maxRecordAge = props.maxRecordAge ?? Duration.hours(24);
    const dedupWindow = props.dedupWindow ?? Duration.seconds(DEFAULT_DEDUP_WINDOW_SECONDS);
    this.validate({
      maxTrails,
      batchSize,
      retryAttempts,
      maxRecordAge,
      dedupWindow,
      streamRetention: props.streamRetention,
    });

    this.encryptionKey =
      props.encryptionKey ??
      createDataKey(this, 'Key', 'opentrail packager tables and failed records');
    this.manifestTable = props.manifestTable ?? this.createManifestTable(this.encryptionKey);
    this.dedupTable = props.dedupTable ?? this.createDedupTable(this.encryptionKey);
    this.failedRecordsBucket = createSecureBucket(this, 'FailedRecordsBucket', {
      encryptionKey: this.encryptionKey,
      accessLogs: {
        bucket: props.accessLogsBucket ?? createAccessLogsBucket(this, 'AccessLogsBucket'),
        prefix: 'failed-records/',
      },
      // Request metrics, so that "a batch was given up" is an alarm within minutes rather
      // than a daily storage metric.
      metrics: [{ id: FAILED_RECORDS_METRICS_ID }],
    });

    this.handler = new OpentrailFunction(this, 'Handler', {
      handlerName: 'packager',
      description: 'opentrail packager: Kinesis batches to CloudTrail log files',
      memorySize: props.memorySize ?? 1024,
      timeout: props.timeout ?? Duration.minutes(5),
      logRetention: props.logRetention,
      tracing: props.tracing,
      environment: {
        [ENV.TRAILS]: JSON.stringify(this.trails),
        [ENV.LOG_BUCKET]: props.logBucket.bucketName,
        [ENV.MANIFEST_TABLE]: this.manifestTable.tableName,
        [ENV.DEDUP_TABLE]: this.dedupTable.tableName,
        [ENV.DEDUP_WINDOW_SECONDS]: Tokenization.stringifyNumber(dedupWindow.toSeconds()),
      },
    });

    props.logBucket.grantPut(this.handler);
    props.logBucket.grantRead(this.handler);
    this.manifestTable.grantReadWriteData(this.handler);
    this.dedupTable.grantReadWriteData(this.handler);

    this.eventSource = new sources.KinesisEventSource(props.stream, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize,
      maxBatchingWindow: this.maxBatchingWindow,
      // Determinism over isolation: a failed batch is retried WHOLE, with the same records in
      // the same order, so it resolves to the same object keys with the same bytes and the
      // manifest/dedup rows it may already have written stay valid. Bisecting would split it
      // into new batches (new keys, new files for records already delivered), and partial
      // batch responses would move the checkpoint to a point the written files do not end at.
      // A batch that keeps failing goes, records included, to the failed-records bucket.
      bisectBatchOnError: false,
      reportBatchItemFailures: false,
      retryAttempts,
      maxRecordAge,
      // One batch per shard at a time: batches of a shard are packaged in stream order.
      parallelizationFactor: 1,
      onFailure: new FailedRecordsDestination(this.failedRecordsBucket),
    });
    this.handler.function.addEventSource(this.eventSource);

    this.acknowledgeGrantWildcards(props.logBucket);
  }

  /** Age of the newest record of the last batch read, per function (maximum, milliseconds). */
  public metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metric('IteratorAge', { statistic: 'Maximum', ...props });
  }

  /** Invocations that failed (sum); each failure retries the whole batch. */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metricErrors(props);
  }

  /** Throttled invocations (sum). */
  public metricThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metricThrottles(props);
  }

  /**
   * Objects written to the failed-records bucket (S3 request metric, sum): each is a batch
   * given up after its retries or age. Anything above 0 needs `opentrail redrive`.
   */
  public metricFailedBatches(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return failedBatchesMetric(this.failedRecordsBucket, props);
  }

  private validate(v: {
    maxTrails: number;
    batchSize: number;
    retryAttempts: number;
    maxRecordAge: Duration;
    dedupWindow: Duration;
    streamRetention?: Duration;
  }): void {
    requireIntegerInRange(
      this,
      'INVALID_TRAILS',
      'maxTrails',
      v.maxTrails,
      1,
      1000,
      'Use a positive number.',
    );
    const trailErrors = validateTrailConfigs(this.trails, v.maxTrails);
    if (trailErrors.length > 0) {
      throw new OpentrailConfigError(
        this,
        'INVALID_TRAILS',
        `the trail configuration is invalid:\n${trailErrors.map((e) => `  - ${e}`).join('\n')}\n`,
      );
    }
    requireIntegerInRange(
      this,
      'INVALID_BATCH_SIZE',
      'batchSize',
      v.batchSize,
      1,
      MAX_BATCH_SIZE,
      'Lambda reads 1-10000 records per Kinesis batch.',
    );
    requireDurationInRange(
      this,
      'INVALID_BATCHING_WINDOW',
      'maxBatchingWindow',
      this.maxBatchingWindow,
      0,
      MAX_BATCHING_WINDOW_SECONDS,
      'Lambda accepts a Kinesis batching window of 0-300 whole seconds; use Duration.seconds(300) or less.',
    );
    requireIntegerInRange(
      this,
      'INVALID_RETRY_ATTEMPTS',
      'retryAttempts',
      v.retryAttempts,
      0,
      MAX_RETRY_ATTEMPTS,
      'Retries must be bounded (no -1): a batch that keeps failing goes to the failed-records bucket.',
    );
    requireDurationInRange(
      this,
      'INVALID_RECORD_AGE',
      'maxRecordAge',
      v.maxRecordAge,
      MIN_RECORD_AGE_SECONDS,
      MAX_RECORD_AGE_SECONDS,
      'Lambda accepts 60 seconds to 7 days (no infinite age).',
    );
    requireRecordAgeWithinRetention(this, v.maxRecordAge, v.streamRetention);
    const ageSeconds = secondsOf(v.maxRecordAge);
    requireDurationInRange(
      this,
      'INVALID_DEDUP_WINDOW',
      'dedupWindow',
      v.dedupWindow,
      1,
      365 * 86400,
      'Use whole seconds, e.g. Duration.hours(24).',
    );
    const dedupSeconds = secondsOf(v.dedupWindow);
    if (dedupSeconds !== undefined && ageSeconds !== undefined && dedupSeconds < ageSeconds) {
      Annotations.of(this).addWarningV2(
        'opentrail:dedupWindowShorterThanRecordAge',
        `dedupWindow (${v.dedupWindow.toHumanString()}) is shorter than maxRecordAge (${v.maxRecordAge.toHumanString()}): a producer's resend of an event delayed longer than the window is not recognised as a repeat.`,
      );
    }
  }

  private createManifestTable(key: kms.IKey): dynamodb.Table {
    const table = new dynamodb.Table(this, 'ManifestTable', {
      partitionKey: { name: MANIFEST_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    table.addGlobalSecondaryIndex({
      indexName: MANIFEST_TABLE.indexName,
      partitionKey: { name: MANIFEST_TABLE.indexPartitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: MANIFEST_TABLE.indexSortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    return table;
  }

  private createDedupTable(key: kms.IKey): dynamodb.Table {
    return new dynamodb.Table(this, 'DedupTable', {
      partitionKey: { name: DEDUP_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: DEDUP_TABLE.ttlAttribute,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /**
   * The L2 grants above use AWS's action families (`s3:GetObject*`, `kms:GenerateDataKey*`…)
   * and object/index ARNs ending in `/*`; each acknowledgment names the one bucket or table
   * it is about, so a new wildcard anywhere else still fails the nag check.
   */
  private acknowledgeGrantWildcards(logBucket: s3.IBucket): void {
    acknowledgeIamWildcards(
      this.handler.role,
      {
        actions: [
          's3:GetObject*',
          's3:GetBucket*',
          's3:List*',
          's3:Abort*',
          'kms:GenerateDataKey*',
          'kms:ReEncrypt*',
        ],
      },
      'CDK L2 grants (bucket.grantPut/grantRead, table.grantReadWriteData, key grants) use AWS action families, each scoped in its statement to one bucket, table or key: S3 read families on the log bucket (a retried batch reads back what it wrote), Abort* for its own multipart uploads, KMS data-key families for SSE-KMS. None is a service-wide or global wildcard.',
    );
    acknowledgeIamWildcards(
      this.handler.role,
      { resources: [logBucket.arnForObjects('*'), this.failedRecordsBucket.arnForObjects('*')] },
      'Objects of the log bucket and of the failed-records bucket: log-file and failed-batch keys are computed per batch, so no fixed key list exists.',
    );
    if (this.manifestTable instanceof dynamodb.Table) {
      acknowledgeIamWildcards(
        this.handler.role,
        { resources: [`${this.manifestTable.tableArn}/index/*`] },
        "The delivery manifest's indexes (byStream), granted with the table by grantReadWriteData.",
      );
    }
  }
}
