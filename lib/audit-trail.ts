import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { EventStream, type EventStreamProps } from './event-stream';
import { IngestApi, type IngestApiOptions } from './ingest-api';
import { LogArchive, type LogArchiveProps } from './log-archive';
import { LogPackager, type LogPackagerOptions } from './log-packager';
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
   * Iterator age of the packager above which its alarm fires.
   * @default - the batching window plus 15 minutes
   */
  readonly iteratorAgeAlarmThreshold?: Duration;
  /**
   * Actions for every alarm (e.g. an SNS topic action).
   * @default - none (add later with addAlarmAction)
   */
  readonly alarmActions?: readonly cloudwatch.IAlarmAction[];
}

/**
 * opentrail's write path as one construct: producers → {@link IngestApi} → {@link EventStream}
 * → {@link LogPackager} → {@link LogArchive} (CloudTrail-format log files, a delivery manifest
 * and dedup claims). Each part is a public member, configured through the matching prop.
 *
 * The failed-records bucket's access logs go to the archive's access-log bucket.
 *
 * Alarms (all `treatMissingData: NOT_BREACHING`, actions from `alarmActions`/`addAlarmAction`):
 * - PackagerErrors: packager invocation errors ≥ 1 in 3 of 5 minutes (a batch keeps failing);
 * - PackagerIteratorAge: the packager is behind by more than the threshold (15 min plus
 *   batching window);
 * - PackagerFailedBatches: a batch was given up to the failed-records bucket (run
 *   `opentrail redrive`);
 * - IngestServerErrors: PutAuditEvents answered 5xx ≥ 5 times in 5 minutes.
 */
export class AuditTrail extends Construct {
  public readonly stream: EventStream;
  public readonly archive: LogArchive;
  public readonly ingest: IngestApi;
  public readonly packager: LogPackager;
  /** The alarms listed in the class comment, by construct ID. */
  public readonly alarms: readonly cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: AuditTrailProps = {}) {
    super(scope, id);
    this.stream = new EventStream(this, 'EventStream', props.stream);
    this.archive = new LogArchive(this, 'LogArchive', props.archive);
    this.ingest = new IngestApi(this, 'IngestApi', { ...props.api, stream: this.stream.stream });
    this.packager = new LogPackager(this, 'LogPackager', {
      ...props.packager,
      accessLogsBucket: props.packager?.accessLogsBucket ?? this.archive.accessLogsBucket,
      stream: this.stream.stream,
      streamRetention: this.stream.retentionPeriod,
      logBucket: this.archive.bucket,
    });

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

  /** Adds actions to every alarm. */
  public addAlarmAction(...actions: cloudwatch.IAlarmAction[]): void {
    for (const alarm of this.alarms) alarm.addAlarmAction(...actions);
  }

  /** Lets the grantee call `POST /PutAuditEvents`. */
  public grantPutAuditEvents(grantee: iam.IGrantable): iam.Grant {
    return this.ingest.grantPutAuditEvents(grantee);
  }
}
