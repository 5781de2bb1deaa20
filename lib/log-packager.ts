import { Annotations, Duration, RemovalPolicy, Tokenization } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
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
import { OpentrailFunction } from './private/opentrail-function';
import { createDataKey, useBucketPolicyForAccessLogs } from './private/secure-bucket';
import {
  CONSUMER_DEFAULTS,
  STREAM_MAPPING_LIMITS,
  StreamConsumer,
  type StreamConsumerSettings,
} from './private/stream-consumer';
import { requireDurationInRange, requireIntegerInRange, secondsOf } from './private/validate';

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
 * Grants, and nothing else: read the stream; `s3:PutObject`/`s3:GetObject` on the log-file
 * prefixes of its trails only (`[PREFIX/]AWSLogs/…/CloudTrail/…` and `…/CloudTrail-Insight/…`;
 * put is `If-None-Match: *`, read verifies what a retry finds) and `s3:ListBucket` (so a missing
 * object answers 404, not 403); `BatchGetItem`/`GetItem`/`PutItem`/`UpdateItem` on the manifest and
 * `BatchGetItem`/`PutItem` on the dedup table (with their key); put objects in the
 * failed-records bucket (done by the mapping, with the function's role). The log bucket's
 * policy denies it the digest prefixes (docs/security.md#write-once); for a bucket it cannot
 * add that to (imported), a synth-time warning gives the statement to add.
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
  /** Its stream consumer: the mapping, the on-failure destination and their metrics. */
  public readonly consumer: StreamConsumer;
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
    const settings = StreamConsumer.settings(
      this,
      props,
      {
        // One batch per shard at a time (parallelizationFactor 1, not an option here): batches
        // of a shard are packaged in stream order.
        ...CONSUMER_DEFAULTS,
        batchSize: 1000,
        maxBatchingWindow: Duration.seconds(STREAM_MAPPING_LIMITS.maxBatchingWindowSeconds),
      },
      props.streamRetention,
    );
    this.maxBatchingWindow = settings.maxBatchingWindow;
    const dedupWindow = props.dedupWindow ?? Duration.seconds(DEFAULT_DEDUP_WINDOW_SECONDS);
    this.validate({ maxTrails, settings, dedupWindow });

    this.encryptionKey =
      props.encryptionKey ??
      createDataKey(this, 'Key', 'opentrail packager tables and failed records');
    this.manifestTable = props.manifestTable ?? this.createManifestTable(this.encryptionKey);
    this.dedupTable = props.dedupTable ?? this.createDedupTable(this.encryptionKey);
    this.failedRecordsBucket = StreamConsumer.createFailedRecordsBucket(this, {
      encryptionKey: this.encryptionKey,
      accessLogsBucket: props.accessLogsBucket,
      accessLogsPrefix: 'failed-records/',
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

    this.grantLogFiles(props.logBucket);
    grantTable(this.handler, this.manifestTable, [
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    grantTable(this.handler, this.dedupTable, ['dynamodb:BatchGetItem', 'dynamodb:PutItem']);

    this.consumer = new StreamConsumer(this, {
      stream: props.stream,
      handler: this.handler,
      settings,
      // Determinism over isolation: a failed batch is retried WHOLE, with the same records in
      // the same order, so it resolves to the same object keys with the same bytes and the
      // manifest/dedup rows it may already have written stay valid. Bisecting would split it
      // into new batches (new keys, new files for records already delivered), and partial
      // batch responses would move the checkpoint to a point the written files do not end at.
      // A batch that keeps failing goes, records included, to the failed-records bucket.
      isolateFailures: false,
      failedRecordsBucket: this.failedRecordsBucket,
    });
    this.eventSource = this.consumer.eventSource;

    this.acknowledgeGrantWildcards(props.logBucket);
  }

  /** Object patterns of the log files of its trails (`…/CloudTrail/…`, `…/CloudTrail-Insight/…`). */
  public logFileObjectPatterns(): string[] {
    return logRootsOf(this.trails).flatMap((root) => [
      `${root}*/CloudTrail/*`,
      `${root}*/CloudTrail-Insight/*`,
    ]);
  }

  /**
   * Put/get on the log-file prefixes only, and the bucket policy statement that denies it
   * every digest prefix (an identity policy can be widened by mistake; the bucket's deny
   * stays). An imported bucket takes no policy from us: a warning gives the statements.
   */
  private grantLogFiles(logBucket: s3.IBucket): void {
    const role = this.handler.role;
    const logObjects = this.logFileObjectPatterns().map((p) => logBucket.arnForObjects(p));
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject', 's3:GetObject'],
        resources: logObjects,
      }),
    );
    // Without ListBucket, GetObject on a missing key answers 403 instead of 404, and a batch
    // retried after a crash between the manifest row and the object could not tell.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [logBucket.bucketArn] }),
    );
    logBucket.encryptionKey?.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey');

    const digestObjects = logRootsOf(this.trails).map((root) =>
      logBucket.arnForObjects(`${root}*/CloudTrail-Digest/*`),
    );
    const denyDigests = new iam.PolicyStatement({
      sid: 'PackagerWritesNoDigests',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:PutObject'],
      resources: digestObjects,
      conditions: { ArnEquals: { 'aws:PrincipalArn': role.roleArn } },
    });
    if (!logBucket.addToResourcePolicy(denyDigests).statementAdded) {
      Annotations.of(this).addWarningV2(
        'opentrail:logBucketPolicyNotManaged',
        `The log bucket ${logBucket.node.path} was not created in this app, so opentrail cannot add or verify its policy. Nothing S3-side then stops an overwrite (a PutObject without If-None-Match), a write by the packager to the digest prefix, a version delete or a lifecycle/policy change. Add these statements to its bucket policy (see docs/security.md#a-bucket-you-bring): deny s3:PutObject on <bucket>/* when "Null": {"s3:if-none-match": "true"}; deny the packager role s3:PutObject on ${digestObjects.length} digest prefix(es) [${logRootsOf(
          this.trails,
        )
          .map((r) => `${r}*/CloudTrail-Digest/*`)
          .join(
            ', ',
          )}]; deny s3:DeleteObjectVersion and s3:BypassGovernanceRetention to all but a break-glass role; deny s3:PutBucketPolicy, s3:DeleteBucketPolicy, s3:PutLifecycleConfiguration, s3:PutBucketVersioning to all but the deploy role. Object Lock (GOVERNANCE) on the bucket cannot be checked either.`,
      );
    }
  }

  /** Age of the newest record of the last batch read, per function (maximum, milliseconds). */
  public metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.consumer.metricIteratorAge(props);
  }

  /** Invocations that failed (sum); each failure retries the whole batch. */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.consumer.metricErrors(props);
  }

  /** Throttled invocations (sum). */
  public metricThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.consumer.metricThrottles(props);
  }

  /**
   * Objects written to the failed-records bucket (S3 request metric, sum): each is a batch
   * given up after its retries or age. Anything above 0 needs `opentrail redrive`.
   */
  public metricFailedBatches(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.consumer.metricFailedBatches(props);
  }

  private validate(v: {
    maxTrails: number;
    settings: StreamConsumerSettings;
    dedupWindow: Duration;
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
    const ageSeconds = secondsOf(v.settings.maxRecordAge);
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
        `dedupWindow (${v.dedupWindow.toHumanString()}) is shorter than maxRecordAge (${v.settings.maxRecordAge.toHumanString()}): a producer's resend of an event delayed longer than the window is not recognised as a repeat.`,
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
      { actions: ['s3:Abort*', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'] },
      'CDK L2 grants on the failed-records bucket (FailedRecordsDestination: grantPut) use AWS action families, scoped in their statement to that bucket and its key: Abort* for multipart uploads of a failed batch, KMS data-key families for SSE-KMS. None is a service-wide or global wildcard.',
    );
    acknowledgeIamWildcards(
      this.handler.role,
      {
        resources: [
          ...this.logFileObjectPatterns().map((p) => logBucket.arnForObjects(p)),
          this.failedRecordsBucket.arnForObjects('*'),
        ],
      },
      "Log files under each trail's log-file prefixes (account, region and time are in the key, so no fixed key list exists; digests are outside these patterns and denied by the bucket policy), and the failed-records bucket, whose keys Lambda chooses per failed batch.",
    );
  }
}

/** `[PREFIX/]AWSLogs/` of each trail, each once. */
function logRootsOf(trails: readonly TrailConfig[]): string[] {
  return [...new Set(trails.map((t) => `${t.prefix ? `${t.prefix}/` : ''}AWSLogs/`))];
}

/**
 * Exactly `actions` on the table itself (no indexes: the packager queries none), and the data
 * actions the table's key needs for them.
 */
function grantTable(
  fn: OpentrailFunction,
  table: dynamodb.ITable,
  actions: readonly string[],
): void {
  iam.Grant.addToPrincipal({ grantee: fn, actions: [...actions], resourceArns: [table.tableArn] });
  table.encryptionKey?.grant(
    fn,
    'kms:Decrypt',
    'kms:Encrypt',
    'kms:GenerateDataKey',
    'kms:DescribeKey',
  );
}
