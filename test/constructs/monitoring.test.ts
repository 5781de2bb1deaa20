import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { OpentrailStack, type OpentrailStackProps } from '../../lib';
import { importsStack, testApp } from './support/app';
import {
  alarmMetrics,
  alarmsOf,
  dashboardWidgets,
  widgetMetrics,
  type DashboardWidget,
} from './support/monitoring';

const STACK = 'Opentrail';

function synth(props: OpentrailStackProps = {}): { stack: OpentrailStack; template: Template } {
  const stack = new OpentrailStack(testApp(), STACK, props);
  return { stack, template: Template.fromStack(stack) };
}

/** The logical ID `ref` resolves to, for `{ Ref: id }`. */
function refOf(stack: Stack, value: unknown): unknown {
  return stack.resolve(value);
}

describe('Monitoring: alarms of the default stack', () => {
  const { stack, template } = synth();
  const alarms = alarmsOf(template, STACK);
  const t = stack.auditTrail;
  const topicRef = refOf(stack, t.monitoring!.alarmTopic.topicArn);

  it('has exactly the alarms of the runbook, each named <stack>-<Component>-<Problem>', () => {
    expect([...alarms.keys()].sort()).toEqual(
      [
        'DigestSigner-Errors',
        'DigestSigner-UndigestedPeriodAge',
        'Indexer-Errors',
        'Indexer-FailedBatches',
        'Indexer-IteratorAge',
        'Ingest-ServerErrors',
        'Packager-Errors',
        'Packager-FailedBatches',
        'Packager-IteratorAge',
        'Publisher-Errors',
        'Publisher-FailedBatches',
        'Publisher-IteratorAge',
        'Query-ServerErrors',
      ].sort(),
    );
    expect(t.alarms).toHaveLength(13);
  });

  // Each row: the alarm, the metric it must watch, and the dimension naming its own resource.
  it.each<[string, string, string, string, () => unknown, number, string]>([
    [
      'Packager-Errors',
      'AWS/Lambda',
      'Errors',
      'FunctionName',
      () => t.packager.handler.function.functionName,
      1,
      'notBreaching',
    ],
    [
      'Packager-IteratorAge',
      'AWS/Lambda',
      'IteratorAge',
      'FunctionName',
      () => t.packager.handler.function.functionName,
      (300 + 900) * 1000,
      'notBreaching',
    ],
    [
      'Packager-FailedBatches',
      'AWS/S3',
      'PutRequests',
      'BucketName',
      () => t.packager.failedRecordsBucket.bucketName,
      1,
      'notBreaching',
    ],
    [
      'Indexer-Errors',
      'AWS/Lambda',
      'Errors',
      'FunctionName',
      () => t.history.indexer.function.functionName,
      1,
      'notBreaching',
    ],
    [
      'Indexer-IteratorAge',
      'AWS/Lambda',
      'IteratorAge',
      'FunctionName',
      () => t.history.indexer.function.functionName,
      900_000,
      'notBreaching',
    ],
    [
      'Indexer-FailedBatches',
      'AWS/S3',
      'PutRequests',
      'BucketName',
      () => t.history.failedRecordsBucket.bucketName,
      1,
      'notBreaching',
    ],
    [
      'Publisher-Errors',
      'AWS/Lambda',
      'Errors',
      'FunctionName',
      () => t.fanout.handler.function.functionName,
      1,
      'notBreaching',
    ],
    [
      'Publisher-IteratorAge',
      'AWS/Lambda',
      'IteratorAge',
      'FunctionName',
      () => t.fanout.handler.function.functionName,
      900_000,
      'notBreaching',
    ],
    [
      'Publisher-FailedBatches',
      'AWS/S3',
      'PutRequests',
      'BucketName',
      () => t.fanout.failedRecordsBucket.bucketName,
      1,
      'notBreaching',
    ],
    [
      'DigestSigner-Errors',
      'AWS/Lambda',
      'Errors',
      'FunctionName',
      () => t.digests!.handler.function.functionName,
      1,
      'notBreaching',
    ],
    [
      'DigestSigner-UndigestedPeriodAge',
      'opentrail',
      'OldestUndigestedPeriodAgeSeconds',
      'deployment',
      () => STACK,
      7200,
      'breaching',
    ],
    [
      'Ingest-ServerErrors',
      'AWS/ApiGateway',
      '5XXError',
      'Resource',
      () => '/PutAuditEvents',
      5,
      'notBreaching',
    ],
    ['Query-ServerErrors', 'AWS/ApiGateway', '5XXError', 'Resource', () => '/', 5, 'notBreaching'],
  ])(
    '%s watches %s %s of its own resource',
    (name, namespace, metricName, dimension, own, threshold, missing) => {
      const alarm = alarms.get(name)!.props;
      expect(alarm).toMatchObject({
        Namespace: namespace,
        MetricName: metricName,
        Threshold: threshold,
        TreatMissingData: missing,
        AlarmDescription: expect.stringMatching(/.{40}/),
      });
      const [metric] = alarmMetrics(alarm);
      expect(metric!.dimensions[dimension]).toEqual(stack.resolve(own()));
    },
  );

  it('per-route API alarms name the API and stage, so each route has its own', () => {
    for (const name of ['Ingest-ServerErrors', 'Query-ServerErrors']) {
      const [metric] = alarmMetrics(alarms.get(name)!.props);
      expect(metric!.dimensions).toEqual({
        ApiName: stack.resolve(t.ingest.api.restApiName),
        Method: 'POST',
        Resource: name.startsWith('Ingest') ? '/PutAuditEvents' : '/',
        Stage: stack.resolve(t.ingest.api.deploymentStage.stageName),
      });
    }
  });

  it('turns on per-method metrics on the stage (what the per-route alarms read)', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([
        Match.objectLike({ HttpMethod: '*', ResourcePath: '/*', MetricsEnabled: true }),
      ]),
    });
  });

  it('sends every alarm and its recovery to the one alarm topic', () => {
    for (const { name, props } of alarms.values()) {
      expect({ name, actions: props.AlarmActions }).toEqual({ name, actions: [topicRef] });
      expect({ name, actions: props.OKActions }).toEqual({ name, actions: [topicRef] });
    }
  });

  it('encrypts the alarm topic with its own KMS key and refuses publishing without TLS', () => {
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.hasResourceProperties('AWS::SNS::Topic', {
      DisplayName: 'opentrail alarms',
      KmsMasterKeyId: Match.anyValue(),
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('outputs the alarm topic and the dashboard for operators and `opentrail status`', () => {
    template.hasOutput('AlarmTopicArn', { Value: topicRef });
    template.hasOutput('DashboardName', { Value: Match.anyValue() });
  });

  it('passes the stack name to every function as the EMF deployment dimension', () => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (f) => (f as { Properties: { Handler?: string } }).Properties.Handler === 'index.handler',
    );
    expect(functions.length).toBeGreaterThanOrEqual(6);
    for (const f of functions) {
      expect(
        (f as { Properties: { Environment: { Variables: Record<string, string> } } }).Properties
          .Environment.Variables.OPENTRAIL_DEPLOYMENT,
      ).toBe(STACK);
    }
  });
});

describe('Monitoring: options', () => {
  it('builds no dashboard, alarm or topic when turned off', () => {
    const { stack, template } = synth({ monitoring: { enabled: false } });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    template.resourceCountIs('AWS::SNS::Topic', 0);
    expect(stack.auditTrail.monitoring).toBeUndefined();
    expect(stack.auditTrail.alarms).toEqual([]);
  });

  it('notifies a topic passed in, and creates none', () => {
    const app = testApp();
    const topics = importsStack(app);
    const onCall = sns.Topic.fromTopicArn(
      topics,
      'OnCall',
      'arn:aws:sns:us-east-1:123456789012:on-call',
    );
    const trail = new OpentrailStack(app, STACK, { monitoring: { alarmTopic: onCall } });
    const template = Template.fromStack(trail);
    template.resourceCountIs('AWS::SNS::Topic', 0);
    for (const { props } of alarmsOf(template, STACK).values()) {
      expect(props.AlarmActions).toEqual(['arn:aws:sns:us-east-1:123456789012:on-call']);
    }
  });

  it('adds alarmActions and addAlarmAction targets beside the topic', () => {
    const app = testApp();
    const stack = new OpentrailStack(app, STACK, {
      alarmActions: [
        new actions.SnsAction(
          sns.Topic.fromTopicArn(
            importsStack(app),
            'T',
            'arn:aws:sns:us-east-1:123456789012:extra',
          ),
        ),
      ],
    });
    const template = Template.fromStack(stack);
    const alarm = alarmsOf(template, STACK).get('Packager-Errors')!.props;
    expect(alarm.AlarmActions).toHaveLength(2);
    expect(alarm.AlarmActions).toContain('arn:aws:sns:us-east-1:123456789012:extra');
  });

  it('takes the thresholds it is given', () => {
    const { template } = synth({
      iteratorAgeAlarmThreshold: Duration.minutes(30),
      monitoring: { undigestedPeriodAgeThreshold: Duration.hours(5), serverErrorThreshold: 1 },
    });
    const alarms = alarmsOf(template, STACK);
    expect(alarms.get('Packager-IteratorAge')!.props.Threshold).toBe(1_800_000);
    expect(alarms.get('DigestSigner-UndigestedPeriodAge')!.props.Threshold).toBe(18_000);
    expect(alarms.get('Ingest-ServerErrors')!.props.Threshold).toBe(1);
    expect(alarms.get('Query-ServerErrors')!.props.Threshold).toBe(1);
  });

  it('has no digest alarms when no trail signs digests', () => {
    const { template } = synth({
      packager: { trails: [{ name: 'plain', logFileValidation: false }] },
    });
    const names = [...alarmsOf(template, STACK).keys()];
    expect(names.filter((n) => n.startsWith('DigestSigner'))).toEqual([]);
    expect(names).toHaveLength(11);
    const titles = dashboardWidgets(template).map(
      (w) => w.properties.markdown ?? w.properties.title,
    );
    expect(titles).toContain('No trail has log-file validation on: no digests.');
  });

  it('watches a passed-in on-failure bucket by its daily object count, not a filter it lacks', () => {
    const app = testApp();
    const other = importsStack(app);
    const bucket = s3.Bucket.fromBucketName(other, 'Failed', 'my-failed-records');
    const stack = new OpentrailStack(app, STACK, { fanout: { failedRecordsBucket: bucket } });
    const template = Template.fromStack(stack);
    const alarm = alarmsOf(template, STACK).get('Publisher-FailedBatches')!.props;
    expect(alarm.MetricName).toBeUndefined();
    expect(alarm.Metrics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Expression: 'DIFF(objects)', ReturnData: true }),
        expect.objectContaining({
          Id: 'objects',
          ReturnData: false,
          MetricStat: expect.objectContaining({
            Metric: {
              Namespace: 'AWS/S3',
              MetricName: 'NumberOfObjects',
              Dimensions: expect.arrayContaining([
                { Name: 'BucketName', Value: 'my-failed-records' },
                { Name: 'StorageType', Value: 'AllStorageTypes' },
              ]),
            },
            Period: 86400,
          }),
        }),
      ]),
    );
    // The buckets the stack created keep their 5-minute request metric.
    expect(alarmsOf(template, STACK).get('Packager-FailedBatches')!.props.MetricName).toBe(
      'PutRequests',
    );
  });
});

describe('Monitoring: dashboard', () => {
  const { stack, template } = synth();
  const widgets = dashboardWidgets(template);
  const byTitle = new Map<string, DashboardWidget>(
    widgets.flatMap((w) => (w.properties.title ? [[w.properties.title, w] as const] : [])),
  );
  const ref = (value: unknown) => {
    const resolved = stack.resolve(value) as { Ref?: string } | string;
    return typeof resolved === 'string' ? resolved : `{{${resolved.Ref}}}`;
  };
  const t = stack.auditTrail;
  const fns = () => ({
    Packager: ref(t.packager.handler.function.functionName),
    Indexer: ref(t.history.indexer.function.functionName),
    Publisher: ref(t.fanout.handler.function.functionName),
  });

  it('is one dashboard for the deployment, headed by its name', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    expect(widgets[0]!.properties.markdown).toBe(`# opentrail ${STACK}`);
  });

  it('shows the state of every alarm', () => {
    const status = byTitle.get('Alarms')!;
    expect(status.type).toBe('alarm');
    expect(status.properties.alarms).toHaveLength(13);
  });

  // Each row: a widget and the metrics (namespace, name, one identifying dimension) it plots.
  it.each<[string, () => [string, string, string, string][]]>([
    [
      'Ingest rate',
      () => [
        ['AWS/ApiGateway', 'Count', 'Resource', '/PutAuditEvents'],
        ['AWS/Kinesis', 'IncomingRecords', 'StreamName', ref(t.stream.streamName)],
      ],
    ],
    [
      'PutAuditEvents 4xx and 5xx',
      () => [
        ['AWS/ApiGateway', '4XXError', 'Resource', '/PutAuditEvents'],
        ['AWS/ApiGateway', '5XXError', 'Resource', '/PutAuditEvents'],
      ],
    ],
    [
      'Query (LookupEvents, …) 4xx and 5xx',
      () => [
        ['AWS/ApiGateway', '4XXError', 'Resource', '/'],
        ['AWS/ApiGateway', '5XXError', 'Resource', '/'],
      ],
    ],
    [
      'Lookup latency',
      () => [
        ['AWS/ApiGateway', 'Latency', 'Resource', '/'],
        ['AWS/Lambda', 'Duration', 'FunctionName', ref(t.query.function.functionName)],
      ],
    ],
    [
      'Lookup throttles',
      () => [
        ['AWS/Lambda', 'Throttles', 'FunctionName', ref(t.query.function.functionName)],
        ['AWS/DynamoDB', 'ReadThrottleEvents', 'TableName', ref(t.history.table.tableName)],
      ],
    ],
    [
      'Stream iterator age',
      () => [
        [
          'AWS/Kinesis',
          'GetRecords.IteratorAgeMilliseconds',
          'StreamName',
          ref(t.stream.streamName),
        ],
      ],
    ],
    [
      'Stream throttles',
      () => [
        [
          'AWS/Kinesis',
          'WriteProvisionedThroughputExceeded',
          'StreamName',
          ref(t.stream.streamName),
        ],
        [
          'AWS/Kinesis',
          'ReadProvisionedThroughputExceeded',
          'StreamName',
          ref(t.stream.streamName),
        ],
      ],
    ],
    [
      'Consumer iterator age',
      () => Object.values(fns()).map((f) => ['AWS/Lambda', 'IteratorAge', 'FunctionName', f]),
    ],
    [
      'Consumer errors',
      () => Object.values(fns()).map((f) => ['AWS/Lambda', 'Errors', 'FunctionName', f]),
    ],
    [
      'Batches given up',
      () => [
        ['AWS/S3', 'PutRequests', 'BucketName', ref(t.packager.failedRecordsBucket.bucketName)],
        ['AWS/S3', 'PutRequests', 'BucketName', ref(t.history.failedRecordsBucket.bucketName)],
        ['AWS/S3', 'PutRequests', 'BucketName', ref(t.fanout.failedRecordsBucket.bucketName)],
      ],
    ],
    [
      'Objects in on-failure destinations',
      () => [
        ['AWS/S3', 'NumberOfObjects', 'BucketName', ref(t.packager.failedRecordsBucket.bucketName)],
        ['AWS/S3', 'NumberOfObjects', 'BucketName', ref(t.history.failedRecordsBucket.bucketName)],
        ['AWS/S3', 'NumberOfObjects', 'BucketName', ref(t.fanout.failedRecordsBucket.bucketName)],
      ],
    ],
    [
      'Digest delivery',
      () => [
        ['opentrail', 'DigestsWritten', 'deployment', STACK],
        ['AWS/Lambda', 'Errors', 'FunctionName', ref(t.digests!.handler.function.functionName)],
      ],
    ],
    [
      'Oldest undigested period age',
      () => [['opentrail', 'OldestUndigestedPeriodAgeSeconds', 'deployment', STACK]],
    ],
    [
      'Fan-out failures',
      () => [
        ['opentrail', 'PutEventsEntriesFailed', 'deployment', STACK],
        ['AWS/Lambda', 'Errors', 'FunctionName', ref(t.fanout.handler.function.functionName)],
      ],
    ],
  ])('widget "%s" plots its metrics', (title, expected) => {
    const widget = byTitle.get(title);
    expect(widget).toBeDefined();
    const rows = expected();
    const plotted = widgetMetrics(widget!).map((m, i) => {
      const dimension = rows[i]?.[2] ?? '';
      return [m.namespace, m.metricName, dimension, m.dimensions[dimension]];
    });
    expect(plotted).toEqual(rows);
  });

  it('has no widget the table above leaves out', () => {
    const graphs = widgets.filter((w) => w.type === 'metric').map((w) => w.properties.title);
    expect(graphs).toHaveLength(14);
  });
});
