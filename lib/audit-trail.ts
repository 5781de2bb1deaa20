import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { DigestSigner, type DigestSignerOptions } from './digest-signer';
import { EventFanout, type EventFanoutOptions } from './event-fanout';
import { EventHistory, type EventHistoryOptions } from './event-history';
import { Insights, type InsightsOptions } from './insights';
import { EventStream, type EventStreamProps } from './event-stream';
import { IngestApi, type IngestApiOptions } from './ingest-api';
import { LogArchive, type LogArchiveProps } from './log-archive';
import { LogPackager, type LogPackagerOptions } from './log-packager';
import { encryptLogGroupsUnder } from './private/log-group-encryption';
import { OpentrailFunction } from './private/opentrail-function';
import { protectKeysUnder, resolveProtection, type ProtectionOptions } from './private/protection';
import { createDataKey } from './private/secure-bucket';
import { secondsOf } from './private/validate';

export interface AuditTrailProps {
  /**
   * The ingest API: throttling, producer accounts/organizations, recipient allow-list, stage.
   * @default - IngestApi's defaults (IAM auth, 100 rps / burst 200, no other accounts)
   */
  readonly api?: IngestApiOptions;
  /**
   * The event stream: key, capacity mode, retention.
   * @default - EventStream's defaults (on-demand, 24 h, new KMS key)
   */
  readonly stream?: EventStreamProps;
  /**
   * The log bucket: key, lifecycle, Object Lock.
   * @default - LogArchive's defaults (SSE-KMS, versioned, no lifecycle, no Object Lock)
   */
  readonly archive?: LogArchiveProps;
  /**
   * The packager: trails, dedup window, batching, retries, tables.
   * @default - LogPackager's defaults (the default trail, 1000 records / 300 s, 10 retries)
   */
  readonly packager?: LogPackagerOptions;
  /**
   * The digest signer (log-file integrity), built when a trail has `logFileValidation: true`:
   * schedule minute, signing key, previous keys.
   * @default - DigestSigner's defaults (new RSA_2048 key, hourly at 5 past)
   */
  readonly digests?: DigestSignerOptions;
  /**
   * The 90-day event history behind LookupEvents: batching, retries, keys.
   * @default - EventHistory's defaults
   */
  readonly history?: EventHistoryOptions;
  /**
   * EventBridge fan-out, SNS delivery notices and CloudWatch Logs delivery.
   * @default - EventFanout's defaults (a new bus, read-only events included, no archive)
   */
  readonly fanout?: EventFanoutOptions;
  /**
   * Insights (docs/design.md#insights): present turns them on — counting in the packager, a
   * detector every minute, Insights records through the stream to every consumer.
   * @default - off
   */
  readonly insights?: InsightsOptions;
  /**
   * Iterator age of the packager above which its alarm fires.
   * @default - the batching window plus 15 minutes
   */
  readonly iteratorAgeAlarmThreshold?: Duration;
  /**
   * Actions for every alarm (e.g. an SNS topic action).
   * @default - none (add later with addAlarmAction)
   */
  readonly alarmActions?: readonly cloudwatch.IAlarmAction[];
  /**
   * The break-glass and deploy principals, exempt from the log bucket's and every created
   * key's delete and configuration denies (docs/security.md).
   * @default - no break-glass principal; the bootstrap CloudFormation execution role deploys
   */
  readonly protection?: ProtectionOptions;
}

/**
 * opentrail as one construct: producers → {@link IngestApi} → {@link EventStream} →
 * {@link LogPackager} → {@link LogArchive} (CloudTrail-format log files, a delivery manifest
 * and dedup claims), signed by the {@link DigestSigner}, indexed by {@link EventHistory}
 * (LookupEvents) and fanned out by {@link EventFanout} (EventBridge, SNS notices, CloudWatch
 * Logs). Each part is a public member, configured through the matching prop.
 *
 * The failed-records bucket's access logs go to the archive's access-log bucket.
 *
 * Alarms (all `treatMissingData: NOT_BREACHING`, actions from `alarmActions`/`addAlarmAction`):
 * - PackagerErrors: packager invocation errors ≥ 1 in 3 of 5 minutes (a batch keeps failing);
 * - PackagerIteratorAge: the packager is behind by more than the threshold (15 min plus
 *   batching window);
 * - PackagerFailedBatches: a batch was given up to the failed-records bucket (run
 *   `opentrail redrive`);
 * - IngestServerErrors: PutAuditEvents answered 5xx ≥ 5 times in 5 minutes;
 * - IndexerErrors / IndexerIteratorAge / IndexerFailedBatches and the same three for the
 *   Publisher: the event-history indexer and the EventBridge publisher, each on its own
 *   event-source mapping;
 * - DigestSignerErrors: the hourly digest run failed (only with log-file validation on).
 *
 * The read side (`POST /`: LookupEvents, ListPublicKeys, GetTrailStatus, DescribeTrails) is one
 * query function; readers need
 * {@link grantQuery}, producers {@link grantPutAuditEvents}: IAM keeps them apart.
 */
export class AuditTrail extends Construct {
  public readonly stream: EventStream;
  public readonly archive: LogArchive;
  public readonly ingest: IngestApi;
  public readonly packager: LogPackager;
  /** The digest signer; absent when no trail has log-file validation on. */
  public readonly digests?: DigestSigner;
  public readonly history: EventHistory;
  public readonly fanout: EventFanout;
  /** Insights, when `insights` is given. */
  public readonly insights?: Insights;
  /** The `POST /` function: LookupEvents and ListPublicKeys (AWS JSON 1.1 on X-Amz-Target). */
  public readonly query: OpentrailFunction;
  /** The alarms listed in the class comment, by construct ID. */
  public readonly alarms: readonly cloudwatch.Alarm[];
  /** The key of every log group created without one (functions, API access logs). */
  public readonly logGroupKey: kms.IKey;

  constructor(scope: Construct, id: string, props: AuditTrailProps = {}) {
    super(scope, id);
    this.stream = new EventStream(this, 'EventStream', props.stream);
    this.archive = new LogArchive(this, 'LogArchive', {
      ...props.archive,
      protection: props.archive?.protection ?? props.protection,
    });
    this.ingest = new IngestApi(this, 'IngestApi', { ...props.api, stream: this.stream.stream });
    this.stream.allowWriter(this.ingest.handler.role);
    this.packager = new LogPackager(this, 'LogPackager', {
      ...props.packager,
      accessLogsBucket: props.packager?.accessLogsBucket ?? this.archive.accessLogsBucket,
      stream: this.stream.stream,
      streamRetention: this.stream.retentionPeriod,
      logBucket: this.archive.bucket,
    });
    this.archive.allowDecrypt(this.packager.handler);
    const trails = this.packager.trails;

    // The read side: one function behind POST /, dispatching on X-Amz-Target.
    this.query = new OpentrailFunction(this, 'Query', {
      handlerName: 'query',
      description: 'opentrail query: LookupEvents and ListPublicKeys on POST /',
      tracing: props.api?.tracing,
    });
    this.ingest.addQueryRoute(this.query);

    this.history = new EventHistory(this, 'EventHistory', {
      accessLogsBucket: this.archive.accessLogsBucket,
      ...props.history,
      stream: this.stream.stream,
      streamRetention: this.stream.retentionPeriod,
    });
    this.history.attachLookupEvents(this.query);

    if (trails.some((trail) => trail.logFileValidation === true)) {
      this.digests = new DigestSigner(this, 'DigestSigner', {
        ...props.digests,
        trails,
        logBucket: this.archive.bucket,
        manifestTable: this.packager.manifestTable,
      });
      this.digests.attachPackager(this.packager.handler);
      this.archive.allowDecrypt(this.digests.handler);
      this.digests.attachListPublicKeys(this.query);
      this.digests.attachTrailStatus(this.query);
    }

    this.fanout = new EventFanout(this, 'EventFanout', {
      accessLogsBucket: this.archive.accessLogsBucket,
      ...props.fanout,
      trails,
      stream: this.stream.stream,
      streamRetention: this.stream.retentionPeriod,
    });
    this.fanout.connectPackager(this.packager.handler);

    // Every key created here denies deletion and reconfiguration but to the break-glass and
    // deploy principals; every log group without a key gets one (docs/security.md).
    this.logGroupKey = createDataKey(this, 'LogGroupKey', 'opentrail log groups (CloudWatch Logs)');
    encryptLogGroupsUnder(this, this.logGroupKey);
    protectKeysUnder(this, resolveProtection(this, props.protection));
    if (props.insights) {
      this.insights = new Insights(this, 'Insights', {
        ...props.insights,
        stream: this.stream.stream,
        packager: this.packager.handler,
        trails,
        history: this.history,
      });
      // The stream's policy admits only named writers (docs/security.md#no-side-doors).
      this.stream.allowWriter(this.insights.role);
    }

    const windowSeconds = secondsOf(this.packager.maxBatchingWindow) ?? 300;
    const iteratorAgeThreshold =
      props.iteratorAgeAlarmThreshold ?? Duration.seconds(windowSeconds + 15 * 60);
    const fiveMinutes = Duration.minutes(5);
    const oneMinute = Duration.minutes(1);
    this.alarms = [
      this.packager.metricErrors({ period: oneMinute }).createAlarm(this, 'PackagerErrors', {
        alarmDescription:
          'The packager failed batches in 3 of the last 5 minutes; each failed batch is retried whole. See the packager log group.',
        threshold: 1,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      this.packager
        .metricIteratorAge({ period: oneMinute })
        .createAlarm(this, 'PackagerIteratorAge', {
          alarmDescription:
            'The packager is falling behind the stream; records near maxRecordAge will be given up to the failed-records bucket.',
          threshold: iteratorAgeThreshold.toMilliseconds(),
          evaluationPeriods: 5,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      this.packager
        .metricFailedBatches({ period: fiveMinutes })
        .createAlarm(this, 'PackagerFailedBatches', {
          alarmDescription:
            'A packager batch was given up and written to the failed-records bucket: fix the cause, then run `opentrail redrive`.',
          threshold: 1,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      ...this.consumerAlarms('Indexer', this.history, 'lookups miss recent events'),
      ...this.consumerAlarms('Publisher', this.fanout, 'EventBridge rules and CloudWatch Logs lag'),
      ...(this.digests
        ? [
            this.digests
              .metricErrors({ period: Duration.hours(1) })
              .createAlarm(this, 'DigestSignerErrors', {
                alarmDescription:
                  'The digest signer failed this hour: digests are late (the next run writes every missed period, in order). See the digest-signer log group.',
                threshold: 1,
                evaluationPeriods: 1,
                comparisonOperator:
                  cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
              }),
          ]
        : []),
      this.ingest
        .metricServerErrors({ period: fiveMinutes })
        .createAlarm(this, 'IngestServerErrors', {
          alarmDescription:
            'PutAuditEvents answered 5xx: producers are retrying or losing events. See the ingest log group and the access logs.',
          threshold: 5,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
    ];
    this.addAlarmAction(...(props.alarmActions ?? []));
  }

  /** Errors, iterator age and given-up batches of a stream consumer. */
  private consumerAlarms(
    name: string,
    consumer: {
      metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
      metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
      metricFailedBatches(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
    },
    consequence: string,
  ): cloudwatch.Alarm[] {
    const common = {
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    };
    return [
      consumer.metricErrors({ period: Duration.minutes(1) }).createAlarm(this, `${name}Errors`, {
        ...common,
        alarmDescription: `The ${name.toLowerCase()} failed batches in 3 of the last 5 minutes (${consequence}); failed records are retried. See its log group.`,
        threshold: 1,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
      }),
      consumer
        .metricIteratorAge({ period: Duration.minutes(1) })
        .createAlarm(this, `${name}IteratorAge`, {
          ...common,
          alarmDescription: `The ${name.toLowerCase()} is more than 15 minutes behind the stream: ${consequence}.`,
          threshold: Duration.minutes(15).toMilliseconds(),
          evaluationPeriods: 5,
        }),
      consumer
        .metricFailedBatches({ period: Duration.minutes(5) })
        .createAlarm(this, `${name}FailedBatches`, {
          ...common,
          alarmDescription: `A ${name.toLowerCase()} batch was given up to its failed-records bucket: fix the cause, then run \`opentrail redrive\` on that bucket.`,
          threshold: 1,
          evaluationPeriods: 1,
        }),
    ];
  }

  /** Lets the grantee call `POST /` (LookupEvents, ListPublicKeys) and nothing else. */
  public grantQuery(grantee: iam.IGrantable): iam.Grant {
    return this.ingest.grantQuery(grantee);
  }

  /** Adds actions to every alarm. */
  public addAlarmAction(...actions: cloudwatch.IAlarmAction[]): void {
    for (const alarm of this.alarms) alarm.addAlarmAction(...actions);
  }

  /** Lets the grantee call `POST /PutAuditEvents`. */
  public grantPutAuditEvents(grantee: iam.IGrantable): iam.Grant {
    return this.ingest.grantPutAuditEvents(grantee);
  }
}
