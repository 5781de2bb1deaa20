import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ENV } from '../lambda/core/config';
import { HISTORY_TABLE } from '../lambda/core/tables';
import {
  FAILED_RECORDS_METRICS_ID,
  failedBatchesMetric,
  FailedRecordsDestination,
} from './private/failed-records-destination';
import { acknowledgeIamWildcards } from './private/nag';
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
} from './private/validate';

/** Id of the S3 request-metrics filter on the failed-records bucket. */

/** Everything about event history that a user chooses; {@link EventHistoryProps} adds the wiring. */
export interface EventHistoryOptions {
  /**
   * Most records per indexer invocation (1-10000).
   * @default 500
   */
  readonly batchSize?: number;
  /**
   * How long Lambda gathers records before invoking the indexer: the lookup delay (0-300 s).
   * @default Duration.seconds(0) - events are visible within seconds
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * Retries of a failed batch (bisected on each failure) before its records go to the
   * failed-records bucket (0-10000, never infinite).
   * @default 10
   */
  readonly retryAttempts?: number;
  /**
   * Records older than this are given up to the failed-records bucket (60 s to 7 days).
   * @default Duration.hours(24)
   */
  readonly maxRecordAge?: Duration;
  /**
   * Key of the table and the failed-records bucket.
   * @default - a new customer managed key, rotated yearly, retained
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Where the failed-records bucket's server access logs go.
   * @default - a new access-log bucket
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * Retention of the indexer's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Active X-Ray tracing on the indexer.
   * @default false
   */
  readonly tracing?: boolean;
}

export interface EventHistoryProps extends EventHistoryOptions {
  /** The event stream the indexer reads (its own event-source mapping). */
  readonly stream: kinesis.IStream;
  /**
   * The stream's retention, to check `maxRecordAge` against.
   * @default - not checked
   */
  readonly streamRetention?: Duration;
}

/**
 * Event history (docs/formats.md#lookupevents): the last 90 days of management events (and Insights events),
 * searchable with CloudTrail's LookupEvents.
 *
 * - A DynamoDB table (lambda/core/tables.ts, HISTORY_TABLE): on-demand, PITR, SSE-KMS with a
 *   customer managed key, TTL attribute `x`, deletion protection, RETAIN. One record item per
 *   event plus one small index item per lookup key, spread over 8 write shards; a lookup reads
 *   about one page, whatever the history's size.
 * - The indexer: a Lambda function on its own Kinesis event-source mapping (TRIM_HORIZON, no
 *   batching window, ReportBatchItemFailures, bisect on error, 10 retries, 24 h record age,
 *   given-up batches — records included — to a failed-records bucket).
 * - A KMS HMAC key (HMAC_256, GENERATE_VERIFY_MAC) that authenticates page tokens: the query
 *   function may GenerateMac/VerifyMac with it; no secret is ever in an environment variable.
 *
 * LookupEvents itself runs in the `POST /` query function: {@link attachLookupEvents} gives it
 * the environment and grants (read the table, use the MAC key). Readers are granted `POST /`
 * on the API (IngestApi.grantQuery), producers `POST /PutAuditEvents`: IAM keeps them apart.
 */
export class EventHistory extends Construct {
  /** The history table. */
  public readonly table: dynamodb.Table;
  /** The page-token key (HMAC_256). */
  public readonly tokenKey: kms.Key;
  /** The indexer function. */
  public readonly indexer: OpentrailFunction;
  /** The indexer's event source. */
  public readonly eventSource: sources.KinesisEventSource;
  /** Batches given up after retries, records included (`opentrail redrive` reads it). */
  public readonly failedRecordsBucket: s3.Bucket;
  /** Key of the table and the failed-records bucket. */
  public readonly encryptionKey: kms.IKey;

  constructor(scope: Construct, id: string, props: EventHistoryProps) {
    super(scope, id);
    useBucketPolicyForAccessLogs(this);
    const batchSize = props.batchSize ?? 500;
    const window = props.maxBatchingWindow ?? Duration.seconds(0);
    const retryAttempts = props.retryAttempts ?? 10;
    const maxRecordAge = props.maxRecordAge ?? Duration.hours(24);
    requireIntegerInRange(
      this,
      'INVALID_BATCH_SIZE',
      'batchSize',
      batchSize,
      1,
      10_000,
      'Lambda reads 1-10000 records per Kinesis batch.',
    );
    requireDurationInRange(
      this,
      'INVALID_BATCHING_WINDOW',
      'maxBatchingWindow',
      window,
      0,
      300,
      'Lambda accepts 0-300 whole seconds.',
    );
    requireIntegerInRange(
      this,
      'INVALID_RETRY_ATTEMPTS',
      'retryAttempts',
      retryAttempts,
      0,
      10_000,
      'Retries must be bounded (no -1).',
    );
    requireDurationInRange(
      this,
      'INVALID_RECORD_AGE',
      'maxRecordAge',
      maxRecordAge,
      60,
      7 * 86400,
      'Lambda accepts 60 seconds to 7 days.',
    );
    requireRecordAgeWithinRetention(this, maxRecordAge, props.streamRetention);

    this.encryptionKey =
      props.encryptionKey ?? createDataKey(this, 'Key', 'opentrail event history');
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: HISTORY_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: HISTORY_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: HISTORY_TABLE.ttlAttribute,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.tokenKey = new kms.Key(this, 'TokenKey', {
      description: 'opentrail LookupEvents page tokens (HMAC)',
      keySpec: kms.KeySpec.HMAC_256,
      keyUsage: kms.KeyUsage.GENERATE_VERIFY_MAC,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.failedRecordsBucket = createSecureBucket(this, 'FailedRecordsBucket', {
      encryptionKey: this.encryptionKey,
      accessLogs: {
        bucket: props.accessLogsBucket ?? createAccessLogsBucket(this, 'AccessLogsBucket'),
        prefix: 'history-failed-records/',
      },
      metrics: [{ id: FAILED_RECORDS_METRICS_ID }],
    });

    this.indexer = new OpentrailFunction(this, 'Indexer', {
      handlerName: 'indexer',
      description: 'opentrail indexer: management events to the 90-day event history',
      memorySize: 512,
      timeout: Duration.minutes(2),
      logRetention: props.logRetention,
      tracing: props.tracing,
      environment: { [ENV.HISTORY_TABLE]: this.table.tableName },
    });
    // Puts only: the indexer never reads or deletes history.
    this.table.grant(this.indexer, 'dynamodb:PutItem', 'dynamodb:BatchWriteItem');
    this.encryptionKey.grant(
      this.indexer,
      'kms:Encrypt',
      'kms:GenerateDataKey',
      'kms:Decrypt',
      'kms:DescribeKey',
    );

    this.eventSource = new sources.KinesisEventSource(props.stream, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize,
      maxBatchingWindow: window,
      // Items are keyed by the event, so any retried or bisected part rewrites the same items:
      // isolation of a poison record costs nothing in correctness here (unlike the packager).
      bisectBatchOnError: true,
      reportBatchItemFailures: true,
      retryAttempts,
      maxRecordAge,
      parallelizationFactor: 1,
      onFailure: new FailedRecordsDestination(this.failedRecordsBucket),
    });
    this.indexer.function.addEventSource(this.eventSource);

    acknowledgeIamWildcards(
      this.indexer.role,
      { actions: ['kms:GenerateDataKey*', 'kms:ReEncrypt*', 's3:Abort*'] },
      "L2 grants' action families, each on one resource: the stream's key (GetRecords on an SSE-KMS stream), the history key, and the failed-records bucket (multipart uploads of a failed batch).",
    );
    acknowledgeIamWildcards(
      this.indexer.role,
      { resources: [this.failedRecordsBucket.arnForObjects('*')] },
      'Objects of the failed-records bucket: keys are made per failed batch by Lambda.',
    );
  }

  /**
   * Serves LookupEvents from `queryFunction` (the `POST /` query handler): its environment
   * gets the table name and the MAC key's ARN, its role Query/GetItem/BatchGetItem on the
   * table and GenerateMac/VerifyMac on the key, and nothing else.
   */
  public attachLookupEvents(queryFunction: OpentrailFunction): void {
    queryFunction.addEnvironment(ENV.HISTORY_TABLE, this.table.tableName);
    queryFunction.addEnvironment(ENV.HISTORY_TOKEN_KEY_ID, this.tokenKey.keyArn);
    this.grantLookup(queryFunction);
  }

  /** What LookupEvents needs: read the table (and decrypt it), MACs with the token key. */
  public grantLookup(grantee: iam.IGrantable): void {
    this.table.grant(grantee, 'dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:BatchGetItem');
    this.encryptionKey.grant(grantee, 'kms:Decrypt', 'kms:DescribeKey');
    this.tokenKey.grant(grantee, 'kms:GenerateMac', 'kms:VerifyMac');
  }

  /** Age of the newest record of the last batch read (maximum, ms): how far behind lookups are. */
  public metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.indexer.function.metric('IteratorAge', { statistic: 'Maximum', ...props });
  }

  /** Indexer invocations that failed (sum). */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.indexer.function.metricErrors(props);
  }

  /**
   * Objects written to the failed-records bucket (S3 request metric, sum): each is a batch the
   * indexer gave up; `opentrail redrive` replays it into the indexer (indexing is idempotent).
   */
  public metricFailedBatches(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return failedBatchesMetric(this.failedRecordsBucket, props);
  }

  /** Write requests the table throttled (sum). */
  public metricWriteThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.table.metric('WriteThrottleEvents', { statistic: 'Sum', ...props });
  }
}
