import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ENV, type TrailConfig } from '../../lambda/core/config';
import { EventFanout, type EventFanoutOptions } from '../../lib/event-fanout';
import { EventStream } from '../../lib/event-stream';
import { OpentrailConfigError } from '../../lib/private/errors';
import { OpentrailFunction } from '../../lib/private/opentrail-function';
import { SECURITY_CHECKS } from '../../lib/private/security-checks';
import { maskAssetHashes } from './support/mask-asset-hashes';
import { testApp, testStack } from './support/app';

expect.addSnapshotSerializer(maskAssetHashes);

const TRAILS: TrailConfig[] = [
  { name: 'audit', deliveryNotices: {}, cloudWatchLogs: { retentionDays: 90 } },
  { name: 'quiet' },
];

function fanout(options: EventFanoutOptions = {}, stack: Stack = testStack()) {
  const stream = new EventStream(stack, 'Events');
  const packager = new OpentrailFunction(stack, 'Packager', {
    handlerName: 'packager',
    description: 'stand-in packager',
  });
  const construct = new EventFanout(stack, 'Fanout', { stream: stream.stream, ...options });
  construct.connectPackager(packager);
  return { stack, construct, packager };
}

type Statement = {
  Action: string | string[];
  Resource: unknown;
  Effect: string;
  Condition?: unknown;
};
const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

function roleStatements(template: Template, rolePrefix: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp(`^${rolePrefix}`) }] },
  });
  return Object.values(policies).flatMap(
    (p) => p.Properties.PolicyDocument.Statement as Statement[],
  );
}

describe('EventFanout', () => {
  let template: Template;
  beforeAll(() => {
    template = Template.fromStack(
      fanout({
        trails: TRAILS,
        eventBusName: 'opentrail',
        archiveRetention: Duration.days(30),
        securityAlarms: {},
      }).stack,
    );
  });

  it('creates a custom bus with the configured name', () => {
    template.hasResourceProperties('AWS::Events::EventBus', { Name: 'opentrail' });
  });

  it('archives the opentrail events of the bus with a retention', () => {
    template.hasResourceProperties('AWS::Events::Archive', {
      SourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^FanoutBus'), 'Arn'] },
      RetentionDays: 30,
      EventPattern: { source: [{ prefix: 'opentrail.' }] },
    });
  });

  it('runs the publisher on its own mapping: bisect, partial failures, bounded retries, S3 on-failure', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: Match.stringLikeRegexp('^FanoutHandlerFunction') },
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^EventsStream'), 'Arn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 86400,
      DestinationConfig: {
        OnFailure: {
          Destination: {
            'Fn::GetAtt': [Match.stringLikeRegexp('^FanoutFailedRecordsBucket'), 'Arn'],
          },
        },
      },
    });
  });

  it('tells the publisher the bus, the read-only setting and the log groups of its trails', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [ENV.EVENT_BUS_NAME]: { Ref: Match.stringLikeRegexp('^FanoutBus') },
          [ENV.PUBLISH_READ_ONLY]: 'true',
          [ENV.TRAILS]: JSON.stringify([{ name: 'audit' }]),
          [ENV.LOG_GROUPS]: Match.anyValue(),
        }),
      },
    });
  });

  it('lets the publisher PutEvents on this bus only', () => {
    const statements = roleStatements(template, 'FanoutHandlerRole');
    const putEvents = statements.filter((s) => actionsOf(s).includes('events:PutEvents'));
    expect(putEvents).toHaveLength(1);
    expect(putEvents[0]!.Resource).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/^FanoutBus/), 'Arn'],
    });
    expect(statements.flatMap(actionsOf).filter((a) => a.startsWith('events:'))).toEqual([
      'events:PutEvents',
    ]);
  });

  it('lets the publisher write only to its trails’ log groups', () => {
    const statements = roleStatements(template, 'FanoutHandlerRole').filter((s) =>
      actionsOf(s).some((a) => a.startsWith('logs:') && a !== 'logs:CreateLogStream'),
    );
    const resources = statements.map((s) => JSON.stringify(s.Resource));
    expect(resources.some((r) => r.includes('FanoutLogGroupaudit'))).toBe(true);
    expect(
      statements
        .flatMap(actionsOf)
        .every((a) => ['logs:PutLogEvents', 'logs:CreateLogStream'].includes(a)),
    ).toBe(true);
  });

  it('creates a log group per trail with CloudWatch Logs: retention, KMS key, retained', () => {
    template.resourceCountIs('AWS::Logs::LogGroup', 3); // audit + the two functions' own groups
    template.hasResource('AWS::Logs::LogGroup', {
      Properties: {
        RetentionInDays: 90,
        KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^FanoutKey'), 'Arn'] },
      },
      DeletionPolicy: 'Retain',
    });
  });

  it('opens the key to CloudWatch Logs for this account’s log groups only', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'logs.us-east-1.amazonaws.com' },
            Condition: {
              ArnLike: {
                'kms:EncryptionContext:aws:logs:arn':
                  'arn:aws:logs:us-east-1:123456789012:log-group:*',
              },
            },
          }),
        ]),
      },
    });
  });

  it('creates a KMS-encrypted delivery-notice topic for the trail that asks for one', () => {
    template.resourceCountIs('AWS::SNS::Topic', 2); // audit notices + security alarms
    template.hasResourceProperties('AWS::SNS::Topic', {
      DisplayName: 'opentrail audit log-file deliveries',
      KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^FanoutKey'), 'Arn'] },
    });
  });

  it('topic policy: TLS only, and nobody but the packager may publish notices', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: Match.stringLikeRegexp('^FanoutNoticeTopicaudit') }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sns:Publish',
            Principal: { AWS: '*' },
            Condition: {
              ArnNotEquals: {
                'aws:PrincipalArn': {
                  'Fn::GetAtt': [Match.stringLikeRegexp('^PackagerRole'), 'Arn'],
                },
              },
            },
          }),
        ]),
      },
    });
  });

  it('gives the packager the topics by trail and sns:Publish on them', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [ENV.SNS_TOPICS]: Match.anyValue() }) },
      Description: 'stand-in packager',
    });
    const publish = roleStatements(template, 'PackagerRole').filter((s) =>
      actionsOf(s).includes('sns:Publish'),
    );
    expect(publish.map((s) => s.Resource)).toEqual([
      { Ref: expect.stringMatching(/^FanoutNoticeTopicaudit/) },
    ]);
  });

  it('adds a metric filter and an alarm to SNS for each classic security check', () => {
    template.resourceCountIs('AWS::Logs::MetricFilter', SECURITY_CHECKS.length);
    template.resourceCountIs('AWS::CloudWatch::Alarm', SECURITY_CHECKS.length);
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: Match.stringLikeRegexp('^FanoutLogGroupaudit') },
      FilterPattern: Match.stringLikeRegexp('\\$\\.userIdentity\\.type = "Root"'),
      MetricTransformations: [
        { MetricNamespace: 'opentrail/Security', MetricName: 'RootAccountUsage', MetricValue: '1' },
      ],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'UnauthorizedApiCalls',
      Namespace: 'opentrail/Security',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^FanoutAlarmTopic') }],
    });
  });

  it('lets CloudWatch alarms of this account publish to the alarm topic', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: Match.stringLikeRegexp('^FanoutAlarmTopic') }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Condition: Match.objectLike({ StringEquals: { 'aws:SourceAccount': '123456789012' } }),
          }),
        ]),
      },
    });
  });

  it('matches the snapshot', () => {
    expect(template.toJSON()).toMatchSnapshot();
  });
});

describe('the rule helper', () => {
  const CLOUDTRAIL_PATTERN = {
    source: ['aws.s3'],
    'detail-type': ['AWS API Call via CloudTrail'],
    detail: { eventName: ['DeleteBucket'] },
  };

  it('turns a CloudTrail-style pattern into a rule on the opentrail bus with the opentrail. source', () => {
    const { stack, construct } = fanout();
    const queue = new sqs.Queue(stack, 'Queue', { enforceSSL: true });
    construct.addRule('DeleteBucket', CLOUDTRAIL_PATTERN, [new targets.SqsQueue(queue)]);
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: Match.stringLikeRegexp('^FanoutBus') },
      EventPattern: {
        source: ['opentrail.s3'],
        'detail-type': ['AWS API Call via CloudTrail'],
        detail: { eventName: ['DeleteBucket'] },
      },
      Targets: [
        Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Queue'), 'Arn'] } }),
      ],
    });
  });

  it('works in another stack on an imported bus', () => {
    const stack = testStack('Consumer');
    const bus = events.EventBus.fromEventBusName(stack, 'Bus', 'opentrail');
    EventFanout.ruleOnBus(stack, 'Rule', bus, CLOUDTRAIL_PATTERN);
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', {
      EventBusName: 'opentrail',
      EventPattern: Match.objectLike({ source: ['opentrail.s3'] }),
    });
  });

  it('refuses a pattern with an unknown top-level key, naming it', () => {
    const { construct } = fanout();
    expect(() => construct.addRule('Bad', { sources: ['aws.s3'] })).toThrow(
      /top-level key "sources"/,
    );
  });
});

describe('EventFanout options', () => {
  it('publishes to a bus passed in and creates none', () => {
    const stack = testStack();
    const bus = events.EventBus.fromEventBusName(stack, 'Existing', 'shared-bus');
    const template = Template.fromStack(fanout({ eventBus: bus }, stack).stack);
    template.resourceCountIs('AWS::Events::EventBus', 0);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [ENV.EVENT_BUS_NAME]: 'shared-bus' }) },
    });
  });

  it('creates no archive, topic, log group or alarm by default', () => {
    const template = Template.fromStack(fanout().stack);
    template.resourceCountIs('AWS::Events::Archive', 0);
    template.resourceCountIs('AWS::SNS::Topic', 0);
    template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [ENV.TRAILS]: Match.absent() }) },
    });
  });

  it('leaves read-only events off when asked', () => {
    Template.fromStack(fanout({ includeReadOnlyEvents: false }).stack).hasResourceProperties(
      'AWS::Lambda::Function',
      {
        Environment: { Variables: Match.objectLike({ [ENV.PUBLISH_READ_ONLY]: 'false' }) },
      },
    );
  });

  it('uses a topic the trail brings, creating none', () => {
    const template = Template.fromStack(
      fanout({
        trails: [
          {
            name: 'audit',
            deliveryNotices: { topicArn: 'arn:aws:sns:us-east-1:123456789012:mine' },
          },
        ],
      }).stack,
    );
    template.resourceCountIs('AWS::SNS::Topic', 0);
    const publish = roleStatements(template, 'PackagerRole').filter((s) =>
      actionsOf(s).includes('sns:Publish'),
    );
    expect(publish.map((s) => s.Resource)).toEqual(['arn:aws:sns:us-east-1:123456789012:mine']);
  });

  it.each([
    [{ trails: [{ name: 'audit', cloudWatchLogs: { retentionDays: 42 } }] }, /retentionDays is 42/],
    [{ archiveRetention: Duration.hours(5) }, /archiveRetention is 5 hours/],
    [{ retryAttempts: -1 }, /retryAttempts is -1/],
    [{ securityAlarms: {} }, /has none/],
    [{ eventBusName: 'x', eventBus: {} as events.IEventBus }, /drop one of them/],
  ] as [EventFanoutOptions, RegExp][])('refuses %j', (options, message) => {
    expect(() => fanout(options)).toThrow(OpentrailConfigError);
    expect(() => fanout(options)).toThrow(message);
  });
});

describe('cdk-nag AwsSolutions on EventFanout', () => {
  it('finds nothing unacknowledged with every option on', () => {
    const app = testApp();
    const stack = new Stack(app, 'Nag', { env: { account: '123456789012', region: 'us-east-1' } });
    const { construct } = fanout(
      { trails: TRAILS, archiveRetention: Duration.days(7), securityAlarms: {}, tracing: true },
      stack,
    );
    construct.addRule('DeleteBucket', { source: ['aws.s3'] });
    const result = new AwsSolutionsChecks(app).validateScope(stack);
    expect(
      result.violations.flatMap((v) =>
        v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath ?? '?'}`),
      ),
    ).toEqual([]);
  });
});
