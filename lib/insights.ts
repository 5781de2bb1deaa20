import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import { ENV, type TrailConfig } from '../lambda/core/config';
import { INSIGHT_TYPES, type InsightType } from '../lambda/core/insights-counts';
import { INSIGHTS_TABLE } from '../lambda/core/insights-live';
import type { EventHistory } from './event-history';
import { OpentrailConfigError } from './private/errors';
import { acknowledgeIamWildcards } from './private/nag';
import { OpentrailFunction } from './private/opentrail-function';
import { createDataKey } from './private/secure-bucket';

/** Everything about Insights that a user chooses; {@link InsightsProps} adds the wiring. */
export interface InsightsOptions {
  /**
   * The Insight types detected, as CloudTrail's insight selectors. Each trail receives the
   * types its `insightSelectors` name (all of these when it has none).
   * @default - the types the trails' insightSelectors name; both when no trail has any
   */
  readonly insightTypes?: readonly InsightType[];
  /**
   * Key of the Insights table.
   * @default - a new customer managed key, rotated yearly, retained
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Retention of the detector's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Active X-Ray tracing on the detector.
   * @default false
   */
  readonly tracing?: boolean;
}

export interface InsightsProps extends InsightsOptions {
  /** The event stream the detector puts its Insights records into. */
  readonly stream: kinesis.IStream;
  /** The packager function, which counts write calls and errors into the Insights table. */
  readonly packager: OpentrailFunction;
  /** The deployment's trails (for the default insight types). */
  readonly trails: readonly TrailConfig[];
  /**
   * The event history the baseline is seeded from when Insights are first enabled (warm-up).
   * @default - no seed: the detector judges once 24 hours of counts exist
   */
  readonly history?: EventHistory;
}

/**
 * Insights (docs/design.md#insights): unusual API call rates and error rates, raised as
 * CloudTrail Insights events through the event stream, so the packager files them under
 * `CloudTrail-Insight`, digests cover them, the fan-out publishes them and event history
 * indexes them.
 *
 * - The Insights table: counters per (series, minute), the detector's state per series and
 *   its cursor. On-demand, PITR, SSE-KMS with a customer managed key, TTL attribute `x`,
 *   deletion protection, RETAIN. The packager may UpdateItem/GetItem it (counting) and nothing
 *   else.
 * - The detector: a Lambda function invoked every minute by an EventBridge Scheduler schedule
 *   (rate 1 minute, no retries: the next minute's run catches up). It may Query/GetItem/
 *   PutItem/BatchWriteItem the Insights table, read the history table (warm-up), and
 *   `kinesis:PutRecords` on the stream — nothing else. Its role is {@link role}, for a stream
 *   resource policy.
 */
export class Insights extends Construct {
  /** Counters, detector state and cursor. */
  public readonly table: dynamodb.Table;
  /** The scheduled detector. */
  public readonly detector: OpentrailFunction;
  /** The detector's role: the one principal besides ingest that writes to the stream. */
  public readonly role: iam.IRole;
  /** The every-minute schedule. */
  public readonly schedule: scheduler.Schedule;
  /** Key of the table. */
  public readonly encryptionKey: kms.IKey;
  /** The Insight types detected. */
  public readonly insightTypes: readonly InsightType[];

  constructor(scope: Construct, id: string, props: InsightsProps) {
    super(scope, id);
    this.insightTypes = props.insightTypes ?? typesOfTrails(props.trails);
    for (const type of this.insightTypes)
      if (!INSIGHT_TYPES.includes(type))
        throw new OpentrailConfigError(
          this,
          'INVALID_INSIGHT_TYPES',
          `insightTypes: "${String(type)}" is not an Insight type; use ${INSIGHT_TYPES.join(' or ')}`,
        );

    this.encryptionKey = props.encryptionKey ?? createDataKey(this, 'Key', 'opentrail Insights');
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: INSIGHTS_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: INSIGHTS_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: INSIGHTS_TABLE.ttlAttribute,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.detector = new OpentrailFunction(this, 'Detector', {
      handlerName: 'insights',
      description:
        'opentrail Insights: judges each minute at M + 5, Insights records to the stream',
      memorySize: 1024,
      timeout: Duration.minutes(5),
      logRetention: props.logRetention,
      tracing: props.tracing,
      environment: {
        [ENV.INSIGHTS_TABLE]: this.table.tableName,
        [ENV.INSIGHT_TYPES]: JSON.stringify(this.insightTypes),
        [ENV.STREAM_NAME]: props.stream.streamName,
        ...(props.history ? { [ENV.HISTORY_TABLE]: props.history.table.tableName } : {}),
      },
    });
    this.role = this.detector.role;
    this.table.grant(
      this.detector,
      'dynamodb:Query',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:BatchWriteItem',
    );
    this.encryptionKey.grant(
      this.detector,
      'kms:Encrypt',
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'kms:DescribeKey',
    );
    // PutRecords only: the detector never reads the stream.
    props.stream.grant(this.detector, 'kinesis:PutRecords');
    props.stream.encryptionKey?.grant(this.detector, 'kms:GenerateDataKey');
    if (props.history) {
      props.history.table.grant(this.detector, 'dynamodb:Query', 'dynamodb:BatchGetItem');
      props.history.encryptionKey.grant(this.detector, 'kms:Decrypt', 'kms:DescribeKey');
    }

    // Counting: the packager adds to counters (UpdateItem) and reads one back on a retry.
    props.packager.addEnvironment(ENV.INSIGHTS_TABLE, this.table.tableName);
    this.table.grant(props.packager, 'dynamodb:UpdateItem', 'dynamodb:GetItem');
    this.encryptionKey.grant(
      props.packager,
      'kms:Encrypt',
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'kms:DescribeKey',
    );

    // Its own role (not the stack-wide one LambdaInvoke would make), so its one finding is
    // acknowledged here and nowhere else.
    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: 'Lets EventBridge Scheduler invoke the opentrail Insights detector',
    });
    acknowledgeIamWildcards(
      scheduleRole,
      { resources: [`${this.detector.function.functionArn}:*`] },
      'lambda:InvokeFunction on the detector function and its versions/aliases (the scheduler target grant); one function only.',
    );
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'opentrail Insights: judge the minutes due',
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
      // No retries: a missed run is caught up by the next, a minute later.
      target: new targets.LambdaInvoke(this.detector.function, {
        role: scheduleRole,
        retryAttempts: 0,
        maxEventAge: Duration.minutes(1),
      }),
    });
  }

  /** Detector invocations that failed (sum). */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.detector.function.metricErrors(props);
  }
}

/** The Insight types the trails ask for: a trail without insightSelectors asks for all. */
function typesOfTrails(trails: readonly TrailConfig[]): InsightType[] {
  const wanted = new Set<InsightType>();
  for (const trail of trails)
    for (const type of trail.insightSelectors?.map((s) => s.InsightType) ?? INSIGHT_TYPES)
      wanted.add(type);
  return INSIGHT_TYPES.filter((type) => wanted.has(type));
}
