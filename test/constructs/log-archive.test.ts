import { Duration } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { LogArchive, type LogArchiveProps } from '../../lib';
import { testStack } from './support/app';

function archive(props?: LogArchiveProps) {
  const stack = testStack();
  const logArchive = new LogArchive(stack, 'Archive', props);
  return { stack, logArchive, template: Template.fromStack(stack) };
}

/** The bucket policy statement that denies every request not made over TLS. */
const DENY_INSECURE_TRANSPORT = Match.objectLike({
  Effect: 'Deny',
  Action: 's3:*',
  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
});

describe('LogArchive with defaults', () => {
  let template: Template;
  let logArchive: LogArchive;
  beforeAll(() => ({ template, logArchive } = archive()));

  it('bucket enforces TLS and SSE-KMS with a bucket key', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ArchiveKey'), 'Arn'] },
            },
          },
        ],
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: Match.stringLikeRegexp('^ArchiveBucket') },
      PolicyDocument: { Statement: Match.arrayWith([DENY_INSECURE_TRANSPORT]) },
    });
  });

  it('bucket is versioned, blocks public access, and is retained with its key', () => {
    template.hasResource('AWS::S3::Bucket', {
      Properties: {
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        LoggingConfiguration: {
          DestinationBucketName: { Ref: Match.stringLikeRegexp('^ArchiveAccessLogsBucket') },
          LogFilePrefix: 'log-archive/',
        },
      },
      DeletionPolicy: 'Retain',
    });
    template.hasResource('AWS::KMS::Key', {
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
    });
  });

  it('access-log bucket uses SSE-S3 and is TLS-only, versioned, blocked and retained', () => {
    template.hasResource('AWS::S3::Bucket', {
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
          ],
        },
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: Match.objectLike({ BlockPublicPolicy: true }),
      },
      DeletionPolicy: 'Retain',
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: Match.stringLikeRegexp('^ArchiveAccessLogsBucket') },
      PolicyDocument: {
        Statement: Match.arrayWith([
          DENY_INSECURE_TRANSPORT,
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'logging.s3.amazonaws.com' },
            Action: 's3:PutObject',
          }),
        ]),
      },
    });
    expect(logArchive.accessLogsBucket).toBeDefined();
  });

  it("has no lifecycle rules unless asked, and no Object Lock without the new-project flag (this repository's cdk.json)", () => {
    const buckets = Object.entries(template.findResources('AWS::S3::Bucket'));
    for (const [, bucket] of buckets) {
      expect(bucket.Properties.LifecycleConfiguration).toBeUndefined();
      expect(bucket.Properties.ObjectLockEnabled).toBeUndefined();
    }
  });
});

describe('LogArchive options', () => {
  it('turns on lifecycle transitions and expiry when asked', () => {
    const { template } = archive({
      transitionToInfrequentAccessAfter: Duration.days(30),
      transitionToGlacierInstantRetrievalAfter: Duration.days(90),
      expireAfter: Duration.days(400),
      noncurrentVersionExpiration: Duration.days(30),
    });
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: [
          {
            Id: 'LogFiles',
            Status: 'Enabled',
            Transitions: [
              { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
              { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
            ],
            ExpirationInDays: 400,
            NoncurrentVersionExpiration: { NoncurrentDays: 30 },
          },
        ],
      },
    });
  });

  it('warns that expired log files break digest validation', () => {
    const { stack } = archive({ expireAfter: Duration.days(400) });
    Annotations.fromStack(stack).hasWarning(
      '/Test/Archive',
      Match.stringLikeRegexp('digest validation'),
    );
  });

  it('refuses a Standard-IA transition sooner than 30 days, naming the value', () => {
    expect(() => archive({ transitionToInfrequentAccessAfter: Duration.days(7) })).toThrow(
      /transitionToInfrequentAccessAfter is 7 days/,
    );
  });

  it('turns on Object Lock in governance or compliance mode', () => {
    const governance = archive({
      objectLockRetention: s3.ObjectLockRetention.governance(Duration.days(365)),
    }).template;
    governance.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 365 } },
      },
    });
    const compliance = archive({
      objectLockRetention: s3.ObjectLockRetention.compliance(Duration.days(30)),
    }).template;
    compliance.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockConfiguration: { Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } } },
    });
  });
});
