import type { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { DigestSigner } from './digest-signer';
import type { DigestSignerOptions } from './digest-signer-options';
import { EventFanout, type EventFanoutOptions } from './event-fanout';
import { EventHistory, type EventHistoryOptions } from './event-history';
import { Insights, type InsightsOptions } from './insights';
import { EventStream, type EventStreamProps } from './event-stream';
import { IngestApi } from './ingest-api';
import type { IngestApiOptions } from './ingest-api-options';
import { LogArchive, type LogArchiveProps } from './log-archive';
import { LogPackager, type LogPackagerOptions } from './log-packager';
import { encryptLogGroupsUnder } from './private/log-group-encryption';
import { protectKeysUnder, resolveProtection, type ProtectionOptions } from './private/protection';
import { createDataKey } from './private/secure-bucket';
import { Monitoring, type MonitoringOptions } from './monitoring';
import { OpentrailFunction } from './private/opentrail-function';

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
   * Actions for every alarm besides the alarm topic (e.g. an SNS topic action).
   * @default - none (add later with addAlarmAction)
   */
  readonly alarmActions?: readonly cloudwatch.IAlarmAction[];
  /**
   * The break-glass and deploy principals, exempt from the log bucket's and every created
   * key's delete and configuration denies (docs/security.md).
   * @default - no break-glass principal; the bootstrap CloudFormation execution role deploys
   */
  readonly protection?: ProtectionOptions;
  /**
   * The dashboard, the alarms and the SNS topic they notify: on, or off (`enabled: false`),
   * or with your own topic.
   * @default - Monitoring's defaults (on, a new encrypted topic)
   */
  readonly monitoring?: MonitoringOptions;
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
 * Monitoring ({@link Monitoring}, on unless `monitoring: { enabled: false }`): a dashboard, and
 * alarms on what puts events at risk, all notifying one SNS topic; docs/operations.md#runbook
 * says what to do for each.
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
  /** The dashboard, alarms and alarm topic; absent with `monitoring: { enabled: false }`. */
  public readonly monitoring?: Monitoring;
  /** The alarms {@link Monitoring} lists (none when monitoring is off). */
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

    if (props.monitoring?.enabled !== false) {
      this.monitoring = new Monitoring(this, 'Monitoring', {
        ...props.monitoring,
        auditTrail: this,
        iteratorAgeAlarmThreshold: props.iteratorAgeAlarmThreshold,
      });
    }
    this.alarms = this.monitoring?.alarms ?? [];
    this.addAlarmAction(...(props.alarmActions ?? []));
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
