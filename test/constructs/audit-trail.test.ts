import { Match, Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AuditTrail } from '../../lib';
import { testStack } from './support/app';

describe('AuditTrail', () => {
  let template: Template;
  let trail: AuditTrail;
  beforeAll(() => {
    const stack = testStack();
    trail = new AuditTrail(stack, 'Trail');
    trail.addAlarmAction(new actions.SnsAction(new sns.Topic(stack, 'Alarms')));
    template = Template.fromStack(stack);
  });

  it('composes the write path and exposes each part', () => {
    expect(trail.ingest.api).toBeDefined();
    expect(trail.stream.stream).toBeDefined();
    expect(trail.archive.bucket).toBeDefined();
    expect(trail.packager.failedRecordsBucket).toBeDefined();
    template.resourceCountIs('AWS::Kinesis::Stream', 1);
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    template.resourceCountIs('AWS::DynamoDB::Table', 2);
  });

  it('sends the failed-records bucket access logs to the archive access-log bucket', () => {
    template.resourceCountIs('AWS::S3::Bucket', 3);
    template.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: {
        DestinationBucketName: { Ref: Match.stringLikeRegexp('^TrailLogArchiveAccessLogsBucket') },
        LogFilePrefix: 'failed-records/',
      },
    });
  });

  it.each([
    ['PackagerErrors', 'AWS/Lambda', 'Errors', 'FunctionName'],
    ['PackagerIteratorAge', 'AWS/Lambda', 'IteratorAge', 'FunctionName'],
    ['PackagerFailedBatches', 'AWS/S3', 'PutRequests', 'BucketName'],
    ['IngestServerErrors', 'AWS/ApiGateway', '5XXError', 'ApiName'],
  ])('alarm %s watches %s %s of its own resource', (_id, namespace, metricName, dimension) => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: namespace,
      MetricName: metricName,
      Dimensions: Match.arrayWith([Match.objectLike({ Name: dimension })]),
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^Alarms') }],
    });
  });

  it('iterator-age threshold defaults to the batching window plus 15 minutes', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Threshold: (300 + 900) * 1000,
    });
  });
});
