import { Duration, Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { DigestSigner } from './digest-signer';
import type { EventFanout } from './event-fanout';
import type { EventHistory } from './event-history';
import type { EventStream } from './event-stream';
import type { IngestApi } from './ingest-api';
import type { LogPackager } from './log-packager';
import type { OpentrailFunction } from './private/opentrail-function';
import { createAlarmTopic } from './private/security-checks';
import { createDataKey } from './private/secure-bucket';
import type { StreamConsumer } from './private/stream-consumer';
import { secondsOf } from './private/validate';

/** The parts of a deployment {@link Monitoring} watches: an `AuditTrail` has them all. */
export interface MonitoredTrail {
  readonly ingest: IngestApi;
  readonly stream: EventStream;
  readonly packager: LogPackager;
  readonly history: EventHistory;
  readonly fanout: EventFanout;
  /** The `POST /` function. */
  readonly query: OpentrailFunction;
  /** Absent when no trail has log-file validation on. */
  readonly digests?: DigestSigner;
}

/** What `AuditTrail` passes on to its {@link Monitoring} (the `monitoring` prop). */
export interface MonitoringOptions {
  /**
   * Build the dashboard, the alarms and the alarm topic. Off: none of them (and
   * `AuditTrail.alarms` is empty).
   * @default true
   */
  readonly enabled?: boolean;
  /**
   * The SNS topic every alarm notifies (alarm and back to OK). Subscribe to it, or pass your
   * own (e.g. the one your on-call tooling reads).
   * @default - a new topic, KMS-encrypted with a new key, TLS only, that only CloudWatch alarms
   *   of this account may publish to
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Age of the oldest period without a digest (since it ended) above which
   * `DigestSigner-UndigestedPeriodAge` fires. Digests are due each hour, a few minutes after
   * the hour; one failed run makes it about an hour.
   * @default Duration.hours(2)
   */
  readonly undigestedPeriodAgeThreshold?: Duration;
  /**
   * 5xx answers of a route (`POST /PutAuditEvents`, `POST /`) in 5 minutes at which its alarm
   * fires.
   * @default 5
   */
  readonly serverErrorThreshold?: number;
}

export interface MonitoringProps extends MonitoringOptions {
  /** The deployment to watch (an `AuditTrail`). */
  readonly auditTrail: MonitoredTrail;
  /**
   * Iterator age of the packager above which its alarm fires.
   * @default - the packager's batching window plus 15 minutes
   */
  readonly iteratorAgeAlarmThreshold?: Duration;
}

/** One API route, as API Gateway's per-method metrics name it. */
interface Route {
  readonly title: string;
  readonly method: string;
  readonly resource: string;
}

const PUT_AUDIT_EVENTS: Route = {
  title: 'PutAuditEvents',
  method: 'POST',
  resource: '/PutAuditEvents',
};
const QUERY: Route = { title: 'Query (LookupEvents, …)', method: 'POST', resource: '/' };

const ONE_MINUTE = Duration.minutes(1);
const FIVE_MINUTES = Duration.minutes(5);
const WIDGET_WIDTH = 8;
const WIDGET_HEIGHT = 6;
const FULL_WIDTH = 24;

/**
 * The dashboard and the alarms of one opentrail deployment, after cdk-monitoring-constructs:
 * what to measure (the metrics come from the constructs' `metric*` methods) apart from what to
 * build; alarms named `<stack>-<Component>-<Problem>`, each with a description that says what
 * is at risk and what to do (docs/operations.md#runbook has an entry per alarm), all notifying
 * one SNS topic; dashboard sections headed by a text widget.
 *
 * Alarms (construct ID → name suffix), the ones that mean "events are at risk":
 * - `PackagerErrors`, `IndexerErrors`, `PublisherErrors` (`<Consumer>-Errors`): the consumer
 *   failed batches in 3 of the last 5 minutes;
 * - `PackagerIteratorAge`, … (`<Consumer>-IteratorAge`): the consumer is behind the stream;
 * - `PackagerFailedBatches`, … (`<Consumer>-FailedBatches`): a batch went to its on-failure
 *   destination (within 5 minutes with the bucket the consumer created, daily from S3 storage
 *   metrics for a bucket passed in);
 * - `DigestSignerErrors` and `DigestSignerUndigestedPeriodAge` (with log-file validation): a
 *   digest run failed; the oldest undigested period (the maximum over every chain: one metric
 *   per deployment) is older than the threshold, or no run reported for 2 hours;
 * - `IngestServerErrors` and `QueryServerErrors`: `POST /PutAuditEvents` and `POST /` answered
 *   5xx, each route its own alarm.
 *
 * Every alarm has `treatMissingData: NOT_BREACHING` except the undigested-period one, whose
 * silence means the signer is not running. Per-route API metrics need the stage's detailed
 * metrics, which {@link IngestApi} turns on.
 */
export class Monitoring extends Construct {
  /** The deployment's dashboard. */
  public readonly dashboard: cloudwatch.Dashboard;
  /** The topic every alarm notifies. */
  public readonly alarmTopic: sns.ITopic;
  /** The alarms listed in the class comment. */
  public readonly alarms: readonly cloudwatch.Alarm[];

  private readonly prefix: string;
  private readonly api: apigw.RestApi;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const trail = props.auditTrail;
    this.api = trail.ingest.api;
    this.prefix = Stack.of(this).stackName;
    this.alarmTopic =
      props.alarmTopic ??
      createAlarmTopic(
        this,
        'AlarmTopic',
        createDataKey(this, 'AlarmTopicKey', 'opentrail alarm topic encryption'),
        'opentrail alarms',
      );

    const windowSeconds = secondsOf(trail.packager.maxBatchingWindow) ?? 300;
    const packagerAge =
      props.iteratorAgeAlarmThreshold ?? Duration.seconds(windowSeconds + 15 * 60);
    const consumers: readonly [string, StreamConsumer, Duration, string][] = [
      ['Packager', trail.packager.consumer, packagerAge, 'log files are late'],
      ['Indexer', trail.history.consumer, Duration.minutes(15), 'lookups miss recent events'],
      [
        'Publisher',
        trail.fanout.consumer,
        Duration.minutes(15),
        'EventBridge rules and CloudWatch Logs lag',
      ],
    ];
    const serverErrors = props.serverErrorThreshold ?? 5;
    const digests = trail.digests;

    this.alarms = [
      ...consumers.flatMap(([name, consumer, age, consequence]) =>
        this.consumerAlarms(name, consumer, age, consequence),
      ),
      ...(digests
        ? [
            this.alarm(
              'DigestSigner',
              'Errors',
              digests.metricErrors({ period: Duration.hours(1) }),
              {
                alarmDescription:
                  'The digest signer failed this hour: digests are late (the next run writes every missed period, in order). See the digest-signer log group.',
                threshold: 1,
                evaluationPeriods: 1,
              },
            ),
            this.alarm(
              'DigestSigner',
              'UndigestedPeriodAge',
              digests.metricOldestUndigestedPeriodAge(),
              {
                alarmDescription:
                  'A period ended more than the threshold ago without a digest (or the signer reported nothing for 2 hours): log files of that period cannot be validated yet. The signer logs which chains are behind ("digest chains behind").',
                threshold: (props.undigestedPeriodAgeThreshold ?? Duration.hours(2)).toSeconds(),
                evaluationPeriods: 2,
                datapointsToAlarm: 2,
                comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treatMissingData: cloudwatch.TreatMissingData.BREACHING,
              },
            ),
          ]
        : []),
      this.alarm('Ingest', 'ServerErrors', this.routeMetric(PUT_AUDIT_EVENTS, '5XXError'), {
        alarmDescription:
          'PutAuditEvents answered 5xx: producers are retrying or losing events. See the ingest log group and the access logs.',
        threshold: serverErrors,
        evaluationPeriods: 1,
      }),
      this.alarm('Query', 'ServerErrors', this.routeMetric(QUERY, '5XXError'), {
        alarmDescription:
          'POST / (LookupEvents, ListPublicKeys, GetTrailStatus, DescribeTrails) answered 5xx: readers get no answers. See the query log group and the access logs.',
        threshold: serverErrors,
        evaluationPeriods: 1,
      }),
    ];
    this.addAlarmAction(new actions.SnsAction(this.alarmTopic));

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
    });
    this.addWidgets(trail, consumers);
  }

  /** Adds actions (alarm and OK) to every alarm. */
  public addAlarmAction(...alarmActions: cloudwatch.IAlarmAction[]): void {
    for (const alarm of this.alarms) {
      alarm.addAlarmAction(...alarmActions);
      alarm.addOkAction(...alarmActions);
    }
  }

  /**
   * A per-method API Gateway metric of `route` (sum over 5 minutes): `Count`, `4XXError`,
   * `5XXError`, `Latency`.
   */
  private routeMetric(
    route: Route,
    metricName: string,
    props?: cloudwatch.MetricOptions,
  ): cloudwatch.Metric {
    const api = this.api;
    return new cloudwatch.Metric({
      namespace: 'AWS/ApiGateway',
      metricName,
      dimensionsMap: {
        ApiName: api.restApiName,
        Method: route.method,
        Resource: route.resource,
        Stage: api.deploymentStage.stageName,
      },
      statistic: 'Sum',
      period: FIVE_MINUTES,
      ...props,
    });
  }

  /** An alarm named `<stack>-<component>-<problem>`, with construct ID `<component><problem>`. */
  private alarm(
    component: string,
    problem: string,
    metric: cloudwatch.IMetric,
    props: Omit<cloudwatch.CreateAlarmOptions, 'alarmName'>,
  ): cloudwatch.Alarm {
    return new cloudwatch.Alarm(this, `${component}${problem}`, {
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...props,
      metric,
      alarmName: `${this.prefix}-${component}-${problem}`,
    });
  }

  /** Errors, iterator age and given-up batches of a stream consumer. */
  private consumerAlarms(
    name: string,
    consumer: StreamConsumer,
    age: Duration,
    consequence: string,
  ): cloudwatch.Alarm[] {
    const lower = name.toLowerCase();
    return [
      this.alarm(name, 'Errors', consumer.metricErrors({ period: ONE_MINUTE }), {
        alarmDescription: `The ${lower} failed batches in 3 of the last 5 minutes (${consequence}); failed records are retried. See its log group.`,
        threshold: 1,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
      }),
      this.alarm(name, 'IteratorAge', consumer.metricIteratorAge({ period: ONE_MINUTE }), {
        alarmDescription: `The ${lower} is more than ${age.toHumanString()} behind the stream (${consequence}); records near the maximum record age will be given up to the failed-records bucket.`,
        threshold: age.toMilliseconds(),
        evaluationPeriods: 5,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      }),
      this.alarm(name, 'FailedBatches', consumer.metricGivenUpBatches(), {
        alarmDescription: `A ${lower} batch was given up to its failed-records bucket: fix the cause, then run \`opentrail redrive\` on that bucket.`,
        threshold: 1,
        evaluationPeriods: 1,
      }),
    ];
  }

  private addWidgets(
    trail: MonitoredTrail,
    consumers: readonly [string, StreamConsumer, Duration, string][],
  ): void {
    const graph = (
      title: string,
      left: cloudwatch.IMetric[],
      props: Partial<cloudwatch.GraphWidgetProps> = {},
    ) =>
      new cloudwatch.GraphWidget({
        title,
        left,
        width: WIDGET_WIDTH,
        height: WIDGET_HEIGHT,
        leftYAxis: { min: 0 },
        ...props,
      });
    const header = (markdown: string) =>
      new cloudwatch.TextWidget({ markdown, width: FULL_WIDTH, height: 1 });
    const stream = trail.stream;
    const digests = trail.digests;

    this.dashboard.addWidgets(
      header(`# opentrail ${this.prefix}`),
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms',
        alarms: [...this.alarms],
        width: FULL_WIDTH,
        height: 3,
      }),
      header('### Ingest and query'),
    );
    this.dashboard.addWidgets(
      graph('Ingest rate', [
        this.routeMetric(PUT_AUDIT_EVENTS, 'Count', { label: 'PutAuditEvents requests' }),
        stream.stream.metricIncomingRecords({
          statistic: 'Sum',
          period: FIVE_MINUTES,
          label: 'Records into the stream',
        }),
      ]),
      ...[PUT_AUDIT_EVENTS, QUERY].map((route) =>
        graph(`${route.title} 4xx and 5xx`, [
          this.routeMetric(route, '4XXError', { label: '4xx' }),
          this.routeMetric(route, '5XXError', { label: '5xx' }),
        ]),
      ),
    );
    this.dashboard.addWidgets(
      graph('Lookup latency', [
        this.routeMetric(QUERY, 'Latency', { statistic: 'p99', label: 'POST / p99 (ms)' }),
        trail.query.function.metricDuration({ statistic: 'p99', label: 'Query function p99 (ms)' }),
      ]),
      graph('Lookup throttles', [
        trail.query.function.metricThrottles({ label: 'Query function throttles' }),
        trail.history.table.metric('ReadThrottleEvents', {
          statistic: 'Sum',
          label: 'History table read throttles',
        }),
      ]),
      header('### Stream and consumers'),
    );
    this.dashboard.addWidgets(
      graph('Stream iterator age', [stream.metricIteratorAge({ label: 'GetRecords (ms)' })]),
      graph('Stream throttles', [
        stream.metricWriteThrottles({ label: 'Write throttles' }),
        stream.stream.metricReadProvisionedThroughputExceeded({
          statistic: 'Sum',
          label: 'Read throttles',
        }),
      ]),
      graph(
        'Consumer iterator age',
        consumers.map(([name, c]) => c.metricIteratorAge({ label: `${name} (ms)` })),
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Consumer errors',
        consumers.map(([name, c]) => c.metricErrors({ label: name })),
      ),
      graph(
        'Batches given up',
        consumers.map(([name, c]) =>
          c.hasRequestMetrics
            ? c.metricFailedBatches({ label: name })
            : c.metricFailedRecordsObjectsAdded().with({ label: `${name} (daily)` }),
        ),
      ),
      graph(
        'Objects in on-failure destinations',
        consumers.map(([name, c]) => c.metricFailedRecordsObjects({ label: name })),
      ),
      header('### Digests and fan-out'),
    );
    this.dashboard.addWidgets(
      ...(digests
        ? [
            graph('Digest delivery', [
              digests.metricDigestsWritten({ label: 'Digests written' }),
              digests.metricErrors({ period: Duration.hours(1), label: 'Signer errors' }),
            ]),
            graph('Oldest undigested period age', [
              digests.metricOldestUndigestedPeriodAge({ label: 'Seconds since it ended' }),
            ]),
          ]
        : [
            new cloudwatch.TextWidget({
              markdown: 'No trail has log-file validation on: no digests.',
              width: WIDGET_WIDTH * 2,
              height: WIDGET_HEIGHT,
            }),
          ]),
      graph('Fan-out failures', [
        trail.fanout.metricFailedEntries({ label: 'PutEvents entries failed' }),
        trail.fanout.metricErrors({ period: FIVE_MINUTES, label: 'Publisher errors' }),
      ]),
    );
  }
}
