import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import { EventStream, type EventStreamProps, OpentrailConfigError } from '../../lib';
import { testStack } from './support/app';

function streamTemplate(props?: EventStreamProps): Template {
  const stack = testStack();
  new EventStream(stack, 'Events', props);
  return Template.fromStack(stack);
}

describe('EventStream with defaults', () => {
  let template: Template;
  beforeAll(() => {
    const stack = testStack();
    const events = new EventStream(stack, 'Events');
    events.grantRead(new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() }));
    template = Template.fromStack(stack);
  });

  it('is encrypted with a customer managed key that rotates and is retained', () => {
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamEncryption: {
        EncryptionType: 'KMS',
        KeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^EventsKey'), 'Arn'] },
      },
    });
    template.hasResource('AWS::KMS::Key', {
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('is on-demand with 24 hours of retention, and retained', () => {
    template.hasResource('AWS::Kinesis::Stream', {
      Properties: {
        StreamModeDetails: { StreamMode: 'ON_DEMAND' },
        RetentionPeriodHours: 24,
        ShardCount: Match.absent(),
      },
      DeletionPolicy: 'Retain',
    });
  });

  it('grantRead covers the stream and decrypting with its key', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(['kinesis:GetRecords', 'kinesis:GetShardIterator']),
          }),
          Match.objectLike({
            Action: 'kms:Decrypt',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^EventsKey'), 'Arn'] },
          }),
        ]),
      },
    });
  });
});

describe('EventStream options', () => {
  it('can be provisioned with a shard count and longer retention', () => {
    const template = streamTemplate({
      streamMode: kinesis.StreamMode.PROVISIONED,
      shardCount: 4,
      retentionPeriod: Duration.days(7),
    });
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
      ShardCount: 4,
      RetentionPeriodHours: 168,
    });
  });

  it('refuses a shard count on an on-demand stream', () => {
    expect(() => streamTemplate({ shardCount: 2 })).toThrow(
      /shardCount is 2 but the stream is on-demand/,
    );
  });

  it('refuses retention under 24 hours, naming the value', () => {
    expect(() => streamTemplate({ retentionPeriod: Duration.hours(12) })).toThrow(
      OpentrailConfigError,
    );
    expect(() => streamTemplate({ retentionPeriod: Duration.hours(12) })).toThrow(
      /retentionPeriod is 12 hours/,
    );
  });
});
