import { Annotations, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { ENV, type TrailConfig } from '../lambda/core/config';
import type { EventPattern } from '../lambda/core/fanout';
import { OpentrailConfigError } from './private/errors';
import { toCdkPattern } from './private/event-pattern';
import { acknowledgeIamWildcards } from './private/nag';
import { emfMetric } from './private/emf-metric';
import { OpentrailFunction } from './private/opentrail-function';
import { createAlarmTopic, createSecurityAlarms } from './private/security-checks';
import { createDataKey, useBucketPolicyForAccessLogs } from './private/secure-bucket';
import { CONSUMER_DEFAULTS, StreamConsumer } from './private/stream-consumer';
import {
  createNoticeTopics,
  createTrailLogGroups,
  requireLogGroupRetentions,
} from './private/trail-delivery';
import { secondsOf } from './private/validate';

import type { EventFanoutProps, SecurityAlarmsOptions } from './event-fanout-options';

export type {
  EventFanoutOptions,
  EventFanoutProps,
  SecurityAlarmsOptions,
} from './event-fanout-options';

/**
 * Fan-out and delivery (docs/formats.md#eventbridge-envelopes, docs/formats.md#delivery-notices): the EventBridge bus with the publisher that feeds
 * it, per-trail SNS delivery-notice topics and CloudWatch Logs groups, and optional CIS-style
 * alarms.
 *
 * Publisher: a Lambda function on its own Kinesis event-source mapping (TRIM_HORIZON, 100
 * records, no batching window, bisect on error, ReportBatchItemFailures, 10 retries, 24 h
 * record age, failed batches — records included — to an S3 bucket). Each record is sent with
 * PutEvents as `opentrail.<service>` / "AWS API Call via CloudTrail" (etc.); entries
 * EventBridge reports failed are retried, what still fails is reported as a batch item
 * failure. Trails with `cloudWatchLogs` get one log event per record in
 * `ACCOUNT_CloudTrail_REGION` of their group.
 *
 * Security defaults: topics and log groups KMS-encrypted with a customer managed key; topics
 * TLS only, and only the packager may publish delivery notices (see {@link connectPackager});
 * the publisher may `events:PutEvents` on this bus only and write to its trails' log groups
 * only; the bus's policy denies `opentrail.*` sources to every other principal; the failed-records bucket is SSE-KMS, TLS only, versioned, blocked and retained.
 *
 * Rules: {@link addRule} (or {@link EventFanout.ruleOnBus} in another stack) takes
 * CloudTrail-style patterns (`"source": ["aws.s3"]`) and matches the opentrail sources.
 */
export class EventFanout extends Construct {
  /**
   * A rule on an opentrail bus from a CloudTrail-style pattern: `aws.<service>` sources become
   * `opentrail.<service>`; detail-types and detail are CloudTrail's. For stacks that import the
   * bus (e.g. `events.EventBus.fromEventBusName`).
   */
  public static ruleOnBus(
    scope: Construct,
    id: string,
    eventBus: events.IEventBus,
    cloudTrailPattern: EventPattern,
    targets: events.IRuleTarget[] = [],
    props: { readonly description?: string; readonly enabled?: boolean } = {},
  ): events.Rule {
    return new events.Rule(scope, id, {
      eventBus,
      eventPattern: toCdkPattern(scope, cloudTrailPattern),
      targets,
      ...props,
    });
  }

  /** The bus the publisher sends to. */
  public readonly eventBus: events.IEventBus;
  /** The archive, when `archiveRetention` is set. */
  public readonly archive?: events.Archive;
  /** The publisher function. */
  public readonly handler: OpentrailFunction;
  /** Its Kinesis event source. */
  public readonly eventSource: sources.KinesisEventSource;
  /** The publisher's stream consumer: the mapping, the on-failure destination and their metrics. */
  public readonly consumer: StreamConsumer;
  /** Batches given up after retries or age, records included. */
  public readonly failedRecordsBucket: s3.IBucket;
  /** Key of what it created. */
  public readonly encryptionKey: kms.IKey;
  /** Delivery-notice topics by trail name. */
  public readonly noticeTopics: Readonly<Record<string, sns.ITopic>>;
  /** CloudWatch Logs groups by trail name. */
  public readonly logGroups: Readonly<Record<string, logs.LogGroup>>;
  /** The security alarms by check id (empty without `securityAlarms`). */
  public readonly securityAlarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** Where the security alarms go, when configured. */
  public readonly alarmTopic?: sns.ITopic;

  private readonly trails: readonly TrailConfig[];

  constructor(scope: Construct, id: string, props: EventFanoutProps) {
    super(scope, id);
    useBucketPolicyForAccessLogs(this);
    this.trails = props.trails ?? [];
    this.validate(props);
    const settings = StreamConsumer.settings(
      this,
      props,
      { ...CONSUMER_DEFAULTS, batchSize: 100, maxBatchingWindow: Duration.seconds(0) },
      props.streamRetention,
    );

    this.encryptionKey =
      props.encryptionKey ??
      createDataKey(this, 'Key', 'opentrail fan-out: topics, log groups, failed records');

    this.eventBus =
      props.eventBus ??
      new events.EventBus(this, 'Bus', {
        eventBusName: props.eventBusName,
        kmsKey: this.encryptionKey,
      });
    if (props.archiveRetention) {
      this.archive = new events.Archive(this, 'Archive', {
        sourceEventBus: this.eventBus,
        description: 'opentrail events, for replay',
        eventPattern: { source: events.Match.prefix('opentrail.') },
        retention: props.archiveRetention,
      });
    }

    this.noticeTopics = createNoticeTopics(this, this.trails, this.encryptionKey);
    this.logGroups = createTrailLogGroups(this, this.trails, this.encryptionKey);

    const cwlTrails = this.trails.filter((t) => this.logGroups[t.name]);
    this.handler = new OpentrailFunction(this, 'Handler', {
      handlerName: 'publisher',
      description: 'opentrail publisher: Kinesis records to EventBridge and CloudWatch Logs',
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.minutes(2),
      logRetention: props.logRetention,
      tracing: props.tracing,
      environment: {
        [ENV.EVENT_BUS_NAME]: this.eventBus.eventBusName,
        [ENV.PUBLISH_READ_ONLY]: String(props.includeReadOnlyEvents ?? true),
        ...(cwlTrails.length > 0
          ? {
              // Selectors only: the publisher needs nothing else of a trail.
              [ENV.TRAILS]: JSON.stringify(
                cwlTrails.map((t) => ({
                  name: t.name,
                  ...(t.eventSelectors ? { eventSelectors: t.eventSelectors } : {}),
                  ...(t.advancedEventSelectors
                    ? { advancedEventSelectors: t.advancedEventSelectors }
                    : {}),
                })),
              ),
              [ENV.LOG_GROUPS]: Stack.of(this).toJsonString(
                Object.fromEntries(
                  cwlTrails.map((t) => [t.name, this.logGroups[t.name]!.logGroupName]),
                ),
              ),
            }
          : {}),
      },
    });
    this.eventBus.grantPutEventsTo(this.handler);
    this.restrictOpentrailSources();
    // logs:CreateLogStream and logs:PutLogEvents on its trails' groups (and their streams) only.
    for (const group of Object.values(this.logGroups)) group.grantWrite(this.handler);

    this.failedRecordsBucket =
      props.failedRecordsBucket ??
      StreamConsumer.createFailedRecordsBucket(this, {
        encryptionKey: this.encryptionKey,
        accessLogsBucket: props.accessLogsBucket,
        accessLogsPrefix: 'publisher-failed-records/',
      });
    this.consumer = new StreamConsumer(this, {
      stream: props.stream,
      handler: this.handler,
      settings,
      // Unlike the packager, the publisher's output does not depend on batch boundaries
      // (one entry per record, ids from eventIDs), so splitting a failing batch and
      // checkpointing at the first undelivered record are both safe.
      isolateFailures: true,
      failedRecordsBucket: this.failedRecordsBucket,
    });
    this.eventSource = this.consumer.eventSource;

    const alarms = props.securityAlarms
      ? this.createSecurityAlarms(props.securityAlarms)
      : undefined;
    this.securityAlarms = alarms?.alarms ?? {};
    this.alarmTopic = alarms?.topic;

    this.acknowledgeGrantWildcards();
  }

  /**
   * A rule on this bus from a CloudTrail-style pattern, e.g.
   * `{"source":["aws.s3"],"detail-type":["AWS API Call via CloudTrail"],"detail":{"eventName":["DeleteBucket"]}}`
   * matches opentrail's `opentrail.s3` events.
   */
  public addRule(
    id: string,
    cloudTrailPattern: EventPattern,
    targets: events.IRuleTarget[] = [],
    props: { readonly description?: string; readonly enabled?: boolean } = {},
  ): events.Rule {
    return EventFanout.ruleOnBus(this, id, this.eventBus, cloudTrailPattern, targets, props);
  }

  /**
   * Lets the packager send delivery notices: sets its OPENTRAIL_SNS_TOPICS (trail → topic) and
   * grants it `sns:Publish` (and the topics' key) on exactly those topics; each created
   * topic's policy allows that role and nobody else to publish.
   */
  public connectPackager(packager: OpentrailFunction): void {
    const names = Object.keys(this.noticeTopics);
    if (names.length === 0) return;
    packager.addEnvironment(
      ENV.SNS_TOPICS,
      Stack.of(this).toJsonString(
        Object.fromEntries(names.map((name) => [name, this.noticeTopics[name]!.topicArn])),
      ),
    );
    acknowledgeIamWildcards(
      packager.role,
      { actions: ['kms:GenerateDataKey*'] },
      "topic.grantPublish on a KMS-encrypted delivery-notice topic grants the KMS data-key family on that topic's key only.",
    );
    for (const topic of Object.values(this.noticeTopics)) {
      topic.grantPublish(packager);
      topic.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'OnlyThePackagerPublishes',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['sns:Publish'],
          resources: [topic.topicArn],
          conditions: { ArnNotEquals: { 'aws:PrincipalArn': packager.role.roleArn } },
        }),
      );
    }
  }

  /** Age of the newest record of the last batch read (maximum, milliseconds). */
  public metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.consumer.metricIteratorAge(props);
  }

  /** Invocations that failed (sum). */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.consumer.metricErrors(props);
  }

  /** Invocations throttled (sum). */
  public metricThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.consumer.metricThrottles(props);
  }

  /** Records not published for exceeding 256 KB (sum), as CloudTrail skips them. */
  public metricOversizeEventsSkipped(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.publisherMetric('OversizeEventsSkipped', props);
  }

  /** PutEvents entries that failed after their retries (sum); their records are retried. */
  public metricFailedEntries(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.publisherMetric('PutEventsEntriesFailed', props);
  }

  /** Objects written to the failed-records bucket (S3 request metric, sum), when it created it. */
  public metricFailedBatches(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.consumer.metricFailedBatches(props);
  }

  private publisherMetric(name: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return emfMetric(this, 'publisher', name, props);
  }

  private createSecurityAlarms(options: SecurityAlarmsOptions): {
    alarms: Record<string, cloudwatch.Alarm>;
    topic: sns.ITopic;
  } {
    const trailName =
      options.trailName ?? this.trails.find((t) => t.cloudWatchLogs)?.name ?? '(none)';
    const group = this.logGroups[trailName];
    if (!group) {
      throw new OpentrailConfigError(
        this,
        'INVALID_TRAILS',
        `securityAlarms watch a trail's CloudWatch Logs group, but trail "${trailName}" has none. Give that trail cloudWatchLogs: {} (or name another one in securityAlarms.trailName).`,
      );
    }
    const topic = options.topic ?? createAlarmTopic(this, 'AlarmTopic', this.encryptionKey);
    const alarms = createSecurityAlarms(this, {
      logGroup: group,
      trailName,
      topic,
      metricNamespace: options.metricNamespace ?? 'opentrail/Security',
    });
    return { alarms, topic };
  }

  private validate(props: EventFanoutProps): void {
    if (props.eventBus && props.eventBusName !== undefined) {
      throw new OpentrailConfigError(
        this,
        'INVALID_APP_CONFIG',
        `eventBusName "${props.eventBusName}" names a bus to create, but eventBus brings one; drop one of them.`,
      );
    }
    if (props.archiveRetention) {
      const seconds = secondsOf(props.archiveRetention);
      if (seconds !== undefined && (seconds < 86_400 || seconds % 86_400 !== 0)) {
        throw new OpentrailConfigError(
          this,
          'INVALID_RETENTION',
          `archiveRetention is ${props.archiveRetention.toHumanString()}; EventBridge archives keep events whole days, e.g. Duration.days(30).`,
        );
      }
    }
    requireLogGroupRetentions(this, props.trails ?? []);
  }

  /**
   * The bus's resource policy denies `events:PutEvents` of an `opentrail.*` source to all but
   * the publisher's role, so no other principal of the account can publish an event that
   * rules take for an audited call. A bus passed in takes no policy from us: a warning.
   */
  private restrictOpentrailSources(): void {
    const statement = new iam.PolicyStatement({
      sid: 'OnlyThePublisherSendsOpentrailSources',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['events:PutEvents'],
      resources: [this.eventBus.eventBusArn],
      conditions: {
        // events:source is multivalued (one PutEvents carries many entries): deny a request if
        // any of its entries has an opentrail.* source.
        'ForAnyValue:StringLike': { 'events:source': 'opentrail.*' },
        ArnNotEquals: { 'aws:PrincipalArn': this.handler.role.roleArn },
      },
    });
    const bus = this.eventBus;
    if (!(bus instanceof events.EventBus) || !bus.addToResourcePolicy(statement).statementAdded) {
      Annotations.of(this).addWarningV2(
        'opentrail:eventBusPolicyNotManaged',
        `The event bus ${this.eventBus.node.path} was passed in, so opentrail cannot add its resource policy: any principal allowed events:PutEvents on it can send opentrail.* events. Add: {"Sid":"OnlyThePublisherSendsOpentrailSources","Effect":"Deny","Principal":"*","Action":"events:PutEvents","Resource":"<bus ARN>","Condition":{"ForAnyValue:StringLike":{"events:source":"opentrail.*"},"ArnNotEquals":{"aws:PrincipalArn":"<publisher role ARN>"}}} (see docs/security.md#no-side-doors).`,
      );
    }
  }

  /**
   * L2 grants use action families and object/log-stream ARNs ending in `*`; each
   * acknowledgment names the one bucket, key or group it is about.
   */
  private acknowledgeGrantWildcards(): void {
    acknowledgeIamWildcards(
      this.handler.role,
      { actions: ['s3:Abort*', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'] },
      'CDK L2 grants use AWS action families, each scoped to one resource: Abort* on the failed-records bucket (Lambda writes failed batches there), KMS data-key families for its SSE-KMS key.',
    );
    acknowledgeIamWildcards(
      this.handler.role,
      { resources: [this.failedRecordsBucket.arnForObjects('*')] },
      'Objects of the failed-records bucket: keys are chosen by Lambda per failed batch.',
    );
  }
}
