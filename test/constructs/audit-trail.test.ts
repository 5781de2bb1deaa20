import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AuditTrail } from '../../lib';
import { testStack } from './support/app';

describe('AuditTrail', () => {
  let template: Template;
  let trail: AuditTrail;
  let stack: Stack;
  beforeAll(() => {
    stack = testStack();
    trail = new AuditTrail(stack, 'Trail');
    trail.addAlarmAction(new actions.SnsAction(new sns.Topic(stack, 'Alarms')));
    template = Template.fromStack(stack);
  });

  /** The properties of the one alarm whose construct ID under the trail is `id`. */
  function alarmById(id: string): Record<string, unknown> {
    const alarms = template.findResources('AWS::CloudWatch::Alarm');
    const ids = Object.keys(alarms).filter((logicalId) =>
      new RegExp(`^Trail${id}[0-9A-F]{8}$`).test(logicalId),
    );
    expect(ids).toHaveLength(1);
    return alarms[ids[0]!]!.Properties as Record<string, unknown>;
  }

  it('composes every part and exposes each one', () => {
    expect(trail.ingest.api).toBeDefined();
    expect(trail.stream.stream).toBeDefined();
    expect(trail.archive.bucket).toBeDefined();
    expect(trail.packager.failedRecordsBucket).toBeDefined();
    expect(trail.digests).toBeDefined();
    expect(trail.history.table).toBeDefined();
    expect(trail.fanout.eventBus).toBeDefined();
    template.resourceCountIs('AWS::Kinesis::Stream', 1);
    // packager, indexer and publisher each read the stream through their own mapping
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 3);
    // manifest, dedup, history, digest chain
    template.resourceCountIs('AWS::DynamoDB::Table', 4);
  });

  it('serves POST / (LookupEvents, ListPublicKeys) from one query function with IAM auth', () => {
    const methods = template.findResources('AWS::ApiGateway::Method', {
      Properties: {
        HttpMethod: 'POST',
        ResourceId: { 'Fn::GetAtt': [Match.anyValue(), 'RootResourceId'] },
      },
    });
    expect(Object.values(methods)).toHaveLength(1);
    expect(Object.values(methods)[0]!.Properties.AuthorizationType).toBe('AWS_IAM');
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          OPENTRAIL_HISTORY_TABLE: Match.anyValue(),
          OPENTRAIL_DIGEST_PUBLIC_KEYS: Match.anyValue(),
        }),
      },
    });
  });

  it('grants readers POST / only, and producers POST /PutAuditEvents only', () => {
    const stack = testStack('Grants');
    const other = new AuditTrail(stack, 'Trail');
    other.grantQuery(new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() }));
    other.grantPutAuditEvents(
      new iam.Role(stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() }),
    );
    const policies = Template.fromStack(stack).findResources('AWS::IAM::Policy');
    const statementsOf = (role: string) =>
      Object.values(policies)
        .filter((p) => JSON.stringify(p.Properties.Roles).includes(role))
        .flatMap(
          (p) => p.Properties.PolicyDocument.Statement as { Action: string; Resource: unknown }[],
        );
    const reader = statementsOf('Reader');
    const producer = statementsOf('Producer');
    expect(reader).toHaveLength(1);
    expect(producer).toHaveLength(1);
    expect(reader[0]!.Action).toBe('execute-api:Invoke');
    expect(JSON.stringify(reader[0]!.Resource)).toMatch(/\/POST\/"/);
    expect(JSON.stringify(producer[0]!.Resource)).toMatch(/\/POST\/PutAuditEvents"/);
  });

  it('builds no digest signer when no trail has log-file validation on', () => {
    const stack = testStack('NoDigests');
    const plain = new AuditTrail(stack, 'Trail', { packager: { trails: [{ name: 'plain' }] } });
    expect(plain.digests).toBeUndefined();
    Template.fromStack(stack).resourceCountIs('AWS::Scheduler::Schedule', 0);
  });

  it('sends the failed-records bucket access logs to the archive access-log bucket', () => {
    // log bucket, access logs, and one failed-records bucket per stream consumer
    template.resourceCountIs('AWS::S3::Bucket', 5);
    template.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: {
        DestinationBucketName: { Ref: Match.stringLikeRegexp('^TrailLogArchiveAccessLogsBucket') },
        LogFilePrefix: 'failed-records/',
      },
    });
  });

  // Each row names one alarm (by construct ID) and the resource whose metric it must watch:
  // the alarm is looked up by its own logical ID, so a row cannot pass on another alarm.
  it.each<[string, string, string, string, (t: AuditTrail) => string]>([
    [
      'PackagerErrors',
      'AWS/Lambda',
      'Errors',
      'FunctionName',
      (t) => t.packager.handler.function.functionName,
    ],
    [
      'PackagerIteratorAge',
      'AWS/Lambda',
      'IteratorAge',
      'FunctionName',
      (t) => t.packager.handler.function.functionName,
    ],
    [
      'PackagerFailedBatches',
      'AWS/S3',
      'PutRequests',
      'BucketName',
      (t) => t.packager.failedRecordsBucket.bucketName,
    ],
    [
      'IngestServerErrors',
      'AWS/ApiGateway',
      '5XXError',
      'ApiName',
      (t) => t.ingest.api.restApiName,
    ],
    [
      'DigestSignerErrors',
      'AWS/Lambda',
      'Errors',
      'FunctionName',
      (t) => t.digests!.handler.function.functionName,
    ],
  ])('alarm %s watches %s %s of its own resource', (id, namespace, metricName, dimension, own) => {
    const alarm = alarmById(id);
    expect(alarm).toMatchObject({
      Namespace: namespace,
      MetricName: metricName,
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: expect.stringMatching(/^Alarms/) }],
    });
    const dimensions = alarm.Dimensions as { Name: string; Value: unknown }[];
    expect(dimensions.filter((d) => d.Name === dimension)).toEqual([
      { Name: dimension, Value: stack.resolve(own(trail)) },
    ]);
  });

  it.each(['Indexer', 'Publisher'])(
    '%s has errors, iterator-age and failed-batch alarms',
    (name) => {
      const alarms = template.findResources('AWS::CloudWatch::Alarm');
      const ids = Object.keys(alarms).join(' ');
      for (const kind of ['Errors', 'IteratorAge', 'FailedBatches']) {
        expect(ids).toMatch(new RegExp(`Trail${name}${kind}`));
      }
    },
  );

  it('iterator-age threshold defaults to the batching window plus 15 minutes', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Threshold: (300 + 900) * 1000,
    });
  });
});

describe('AuditTrail: record age against stream retention', () => {
  it.each(['packager', 'history', 'fanout'] as const)(
    "refuses a %s maxRecordAge longer than the stream's retention, naming both",
    (part) => {
      // Arrange
      const stack = testStack();

      // Act
      const build = () =>
        new AuditTrail(stack, 'Trail', {
          stream: { retentionPeriod: Duration.hours(24) },
          [part]: { maxRecordAge: Duration.hours(48) },
        });

      // Assert
      expect(build).toThrow(
        "maxRecordAge is 2 days but the stream keeps records only 1 day: records would expire from the stream before they could be given up to the failed-records bucket. Lower maxRecordAge or raise the stream's retentionPeriod.",
      );
    },
  );

  it('accepts every maxRecordAge up to the retention', () => {
    const stack = testStack();
    expect(
      () =>
        new AuditTrail(stack, 'Trail', {
          stream: { retentionPeriod: Duration.hours(48) },
          packager: { maxRecordAge: Duration.hours(48) },
          history: { maxRecordAge: Duration.hours(48) },
          fanout: { maxRecordAge: Duration.hours(48) },
        }),
    ).not.toThrow();
  });
});
