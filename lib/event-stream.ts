import { Duration, Lazy, RemovalPolicy } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { OpentrailConfigError } from './private/errors';
import { acknowledgeNag } from './private/nag';
import { createDataKey } from './private/secure-bucket';
import { requireDurationInRange, requireIntegerInRange } from './private/validate';

export interface EventStreamProps {
  /**
   * Key that encrypts the stream (SSE-KMS).
   * @default - a new customer managed key, rotated yearly, retained
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Capacity mode.
   * @default kinesis.StreamMode.ON_DEMAND
   */
  readonly streamMode?: kinesis.StreamMode;
  /**
   * Number of shards; only with `StreamMode.PROVISIONED`.
   * @default 1 (provisioned mode)
   */
  readonly shardCount?: number;
  /**
   * How long records stay readable: 24 hours to 365 days, whole hours. A packager retry
   * window (`maxRecordAge`) may not exceed it.
   * @default Duration.hours(24)
   */
  readonly retentionPeriod?: Duration;
}

/**
 * The Kinesis data stream between ingest and the consumers (packager; later indexer and
 * publisher).
 *
 * Security defaults: SSE-KMS with a customer managed key (rotation on, retained), stream
 * retained with the stack's deletion. On-demand capacity by default. Once a writer is named
 * ({@link allowWriter}: the ingest role, and the Insights role if it writes here), the
 * stream's resource policy denies `kinesis:PutRecord(s)` to every other principal, whatever
 * their identity policies say (docs/security.md#no-side-doors).
 *
 * What it carries: one record per accepted event, data = the normalised record's JSON
 * (UTF-8), partition key = the record's `eventID`. The ingest handler chooses that key so
 * that no producer account or event source can concentrate traffic on one shard; the price is
 * that events of one account are spread over shards and consumers must not assume order
 * across records (they sort by `eventTime` where order matters).
 */
export class EventStream extends Construct {
  /** The stream. */
  public readonly stream: kinesis.Stream;
  /** The key that encrypts it. */
  public readonly encryptionKey: kms.IKey;
  /** How long records stay readable. */
  public readonly retentionPeriod: Duration;

  private readonly writers: string[] = [];

  constructor(scope: Construct, id: string, props: EventStreamProps = {}) {
    super(scope, id);
    const streamMode = props.streamMode ?? kinesis.StreamMode.ON_DEMAND;
    this.retentionPeriod = props.retentionPeriod ?? Duration.hours(24);
    requireDurationInRange(
      this,
      'INVALID_RETENTION',
      'retentionPeriod',
      this.retentionPeriod,
      24 * 3600,
      8760 * 3600,
      'Kinesis keeps records 24 hours to 365 days, e.g. Duration.hours(24) or Duration.days(7).',
    );
    if (!this.retentionPeriod.isUnresolved() && this.retentionPeriod.toSeconds() % 3600 !== 0) {
      throw new OpentrailConfigError(
        this,
        'INVALID_RETENTION',
        `retentionPeriod is ${this.retentionPeriod.toHumanString()}; Kinesis counts retention in whole hours, e.g. Duration.hours(48).`,
      );
    }
    if (streamMode === kinesis.StreamMode.ON_DEMAND && props.shardCount !== undefined) {
      throw new OpentrailConfigError(
        this,
        'INVALID_STREAM_CAPACITY',
        `shardCount is ${props.shardCount} but the stream is on-demand; set streamMode: StreamMode.PROVISIONED to choose shards, or drop shardCount.`,
      );
    }
    if (props.shardCount !== undefined) {
      requireIntegerInRange(
        this,
        'INVALID_STREAM_CAPACITY',
        'shardCount',
        props.shardCount,
        1,
        10000,
        'Use at least 1 shard.',
      );
    }

    this.encryptionKey =
      props.encryptionKey ?? createDataKey(this, 'Key', 'opentrail event stream (Kinesis SSE)');
    this.stream = new kinesis.Stream(this, 'Stream', {
      streamMode,
      ...(streamMode === kinesis.StreamMode.PROVISIONED
        ? { shardCount: props.shardCount ?? 1 }
        : {}),
      retentionPeriod: this.retentionPeriod,
      encryption: kinesis.StreamEncryption.KMS,
      encryptionKey: this.encryptionKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledgeNag(
      this.stream,
      'AwsSolutions-KDS3',
      'A customer managed key is required: its key policy, rotation and retention are ours to control, and audit data must not depend on the account-wide aws/kinesis key.',
    );
  }

  /** Stream name (what the ingest handler puts records to). */
  public get streamName(): string {
    return this.stream.streamName;
  }

  /** Stream ARN. */
  public get streamArn(): string {
    return this.stream.streamArn;
  }

  /** Lets the grantee put records (and use the key to encrypt them). */
  public grantWrite(grantee: iam.IGrantable): iam.Grant {
    return this.stream.grantWrite(grantee);
  }

  /**
   * Names a role that may put records: the stream's resource policy denies `kinesis:PutRecord`
   * and `kinesis:PutRecords` to every principal not named here (the first call adds the
   * policy). Its identity policy must still allow them ({@link grantWrite}).
   */
  public allowWriter(role: iam.IRole): void {
    if (this.writers.length === 0) {
      this.stream.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'OnlyNamedWritersPut',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['kinesis:PutRecord', 'kinesis:PutRecords'],
          resources: [this.stream.streamArn],
          conditions: {
            ArnNotEquals: { 'aws:PrincipalArn': Lazy.list({ produce: () => [...this.writers] }) },
          },
        }),
      );
    }
    if (!this.writers.includes(role.roleArn)) this.writers.push(role.roleArn);
  }

  /** Lets the grantee read records (and use the key to decrypt them). */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.stream.grantRead(grantee);
  }

  /** Age of the oldest record read, across consumers (maximum, milliseconds). */
  public metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stream.metricGetRecordsIteratorAgeMilliseconds({ statistic: 'Maximum', ...props });
  }

  /** Records refused for exceeding the stream's write throughput (sum). */
  public metricWriteThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stream.metricWriteProvisionedThroughputExceeded({ statistic: 'Sum', ...props });
  }
}
