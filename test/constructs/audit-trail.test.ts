import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
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
    template = Template.fromStack(stack);
  });

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

  it('hands its alarms to Monitoring, which test/constructs/monitoring.test.ts covers', () => {
    expect(trail.monitoring).toBeDefined();
    expect(trail.alarms).toBe(trail.monitoring!.alarms);
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
