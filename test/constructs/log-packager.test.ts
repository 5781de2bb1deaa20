import { Duration } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { DEFAULT_TRAIL, ENV, type TrailConfig } from '../../lambda/core/config';
import {
  EventStream,
  LogArchive,
  LogPackager,
  type LogPackagerOptions,
  OpentrailConfigError,
} from '../../lib';
import { LAMBDA_ENVIRONMENT_LIMIT_BYTES } from '../../lib/private/environment';
import { testStack } from './support/app';

function packager(options: LogPackagerOptions = {}, streamRetention?: Duration) {
  const stack = testStack();
  const events = new EventStream(
    stack,
    'Events',
    streamRetention ? { retentionPeriod: streamRetention } : {},
  );
  const logArchive = new LogArchive(stack, 'Archive');
  const logPackager = new LogPackager(stack, 'Packager', {
    ...options,
    stream: events.stream,
    streamRetention: events.retentionPeriod,
    logBucket: logArchive.bucket,
  });
  return { stack, logPackager };
}

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

function packagerStatements(template: Template): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^PackagerHandlerRole') }] },
  });
  return Object.values(policies).flatMap(
    (p) => p.Properties.PolicyDocument.Statement as Statement[],
  );
}

const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

describe('LogPackager with defaults', () => {
  let template: Template;
  beforeAll(() => {
    template = Template.fromStack(packager().stack);
  });

  it('packager mapping has no bisect, bounded retries, S3 on-failure', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^EventsStream'), 'Arn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 300,
      BisectBatchOnFunctionError: false,
      FunctionResponseTypes: Match.absent(),
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 86400,
      ParallelizationFactor: 1,
      DestinationConfig: {
        OnFailure: {
          Destination: {
            'Fn::GetAtt': [Match.stringLikeRegexp('^PackagerFailedRecordsBucket'), 'Arn'],
          },
        },
      },
    });
  });

  it('runs the packager handler on pinned Node.js 22, ARM64, with source maps and its own log group', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: 1024,
      Timeout: 300,
      Environment: { Variables: Match.objectLike({ NODE_OPTIONS: '--enable-source-maps' }) },
      LoggingConfig: {
        LogFormat: 'JSON',
        LogGroup: { Ref: Match.stringLikeRegexp('^PackagerHandlerLogGroup') },
      },
    });
    template.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: 30 },
      DeletionPolicy: 'Retain',
    });
  });

  it('gives the packager the trails, bucket, tables and dedup window through the environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: {
          NODE_OPTIONS: '--enable-source-maps',
          [ENV.TRAILS]: JSON.stringify([DEFAULT_TRAIL]),
          [ENV.LOG_BUCKET]: { Ref: Match.stringLikeRegexp('^ArchiveBucket') },
          [ENV.MANIFEST_TABLE]: { Ref: Match.stringLikeRegexp('^PackagerManifestTable') },
          [ENV.DEDUP_TABLE]: { Ref: Match.stringLikeRegexp('^PackagerDedupTable') },
          [ENV.DEDUP_WINDOW_SECONDS]: '86400',
        },
      },
    });
  });

  it('manifest table: pk, byStream index, on-demand, PITR, customer managed key, deletion protection, retained', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
        DeletionProtectionEnabled: true,
        GlobalSecondaryIndexes: [
          {
            IndexName: 'byStream',
            KeySchema: [
              { AttributeName: 'stream', KeyType: 'HASH' },
              { AttributeName: 'deliveredAt', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      },
      DeletionPolicy: 'Retain',
    });
  });

  it('dedup table: pk, TTL on expiresAt, on-demand, customer managed key, retained', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        BillingMode: 'PAY_PER_REQUEST',
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
      },
      DeletionPolicy: 'Retain',
    });
  });

  it('failed-records bucket is KMS-encrypted, TLS-only, versioned, blocked, retained, with request metrics', () => {
    template.hasResource('AWS::S3::Bucket', {
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            Match.objectLike({
              ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }),
            }),
          ],
        },
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: Match.objectLike({
          BlockPublicPolicy: true,
          RestrictPublicBuckets: true,
        }),
        MetricsConfigurations: [{ Id: 'FailedRecords' }],
        LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'failed-records/' }),
      },
      DeletionPolicy: 'Retain',
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: Match.stringLikeRegexp('^PackagerFailedRecordsBucket') },
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

  it('grants no global or service-wide wildcard action, and never deletes objects', () => {
    const actions = packagerStatements(template).flatMap(actionsOf);
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) {
      expect(action).not.toBe('*');
      expect(action).not.toMatch(/^[a-z0-9-]+:\*$/);
      expect(action).not.toMatch(/^s3:Delete/);
      expect(action).not.toMatch(/^kinesis:Put/);
    }
  });

  it('may put and get log files (nothing more on the log bucket), and only put to the failed-records bucket', () => {
    const statements = packagerStatements(template);
    const on = (prefix: string) =>
      statements.filter((s) => JSON.stringify(s.Resource).includes(prefix)).flatMap(actionsOf);
    // Exactly what it uses: no GetObject*/List*/GetBucket* family, no legal hold or retention.
    expect([...new Set(on('ArchiveBucket'))].sort()).toEqual([
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
    ]);
    expect(on('PackagerFailedRecordsBucket').sort()).toEqual(
      [
        's3:Abort*',
        's3:ListBucket',
        's3:PutObject',
        's3:PutObjectLegalHold',
        's3:PutObjectRetention',
        's3:PutObjectTagging',
        's3:PutObjectVersionTagging',
      ].sort(),
    );
    expect(on('PackagerManifestTable')).toEqual(
      expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem']),
    );
    expect(on('PackagerDedupTable')).toEqual(
      expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:BatchGetItem']),
    );
    expect(on('EventsStream')).toEqual(
      expect.arrayContaining(['kinesis:GetRecords', 'kinesis:GetShardIterator']),
    );
  });
});

describe('LogPackager validation', () => {
  it('batching window over 300 s is refused at synth with a message naming the value', () => {
    expect(() => packager({ maxBatchingWindow: Duration.seconds(301) })).toThrow(
      OpentrailConfigError,
    );
    expect(() => packager({ maxBatchingWindow: Duration.seconds(301) })).toThrow(
      /maxBatchingWindow is 5 minutes 1 second \(301 s\); it must be whole seconds from 0 to 300 s/,
    );
  });

  it('refuses a fractional batching window', () => {
    expect(() => packager({ maxBatchingWindow: Duration.millis(1500) })).toThrow(
      /maxBatchingWindow .*\(1\.5 s\)/,
    );
  });

  it('refuses a batch size over 10000', () => {
    expect(() => packager({ batchSize: 10001 })).toThrow(
      /batchSize is 10001; it must be a whole number from 1 to 10000/,
    );
  });

  it('refuses infinite retries', () => {
    expect(() => packager({ retryAttempts: -1 })).toThrow(/retryAttempts is -1/);
  });

  it('refuses a maxRecordAge longer than the stream keeps records', () => {
    expect(() => packager({ maxRecordAge: Duration.hours(48) })).toThrow(
      /maxRecordAge is 2 days but the stream keeps records only 1 day/,
    );
    expect(() => packager({ maxRecordAge: Duration.hours(48) }, Duration.hours(72))).not.toThrow();
  });

  it('invalid selector fails synth naming the selector and the rule', () => {
    const trail: TrailConfig = {
      name: 'audit',
      advancedEventSelectors: [
        { Name: 'Writes', FieldSelectors: [{ Field: 'readOnly', StartsWith: ['f'] }] },
      ],
    };
    let error: unknown;
    try {
      packager({ trails: [trail] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OpentrailConfigError);
    expect((error as OpentrailConfigError).code).toBe('INVALID_TRAILS');
    expect((error as Error).message).toMatch(/trail "audit"/);
    expect((error as Error).message).toMatch(/Writes/);
    expect((error as Error).message).toMatch(/readOnly/);
    expect((error as Error).message).toMatch(/Equals only/);
  });

  it('refuses more trails than maxTrails in one error naming the limit', () => {
    const trails = ['a01', 'a02', 'a03'].map((name) => ({ name }));
    expect(() => packager({ trails, maxTrails: 2 })).toThrow(/at most 2 trails/);
    expect(() => packager({ trails, maxTrails: 3 })).not.toThrow();
  });

  it('env stays under 4 KB: a trails config too large for Lambda fails synth naming the variable', () => {
    const bigTrail: TrailConfig = {
      name: 'big',
      advancedEventSelectors: [
        {
          Name: 'Many buckets',
          FieldSelectors: [
            { Field: 'eventCategory', Equals: ['Data'] },
            { Field: 'resources.type', Equals: ['AWS::S3::Object'] },
            {
              Field: 'resources.ARN',
              StartsWith: Array.from({ length: 200 }, (_, i) => `arn:aws:s3:::bucket-${i}/`),
            },
          ],
        },
      ],
    };
    expect(JSON.stringify(bigTrail).length).toBeGreaterThan(LAMBDA_ENVIRONMENT_LIMIT_BYTES);
    expect(() => packager({ trails: [bigTrail] })).toThrow(/ENVIRONMENT_TOO_LARGE/);
    expect(() => packager({ trails: [bigTrail] })).toThrow(
      /over Lambda's 4096-byte limit; largest: OPENTRAIL_TRAILS/,
    );
  });

  it('warns when the dedup window is shorter than the record age', () => {
    const { stack } = packager({ dedupWindow: Duration.hours(1) });
    Annotations.fromStack(stack).hasWarning(
      '/Test/Packager',
      Match.stringLikeRegexp('dedupWindow \\(1 hour\\) is shorter'),
    );
  });
});

describe('LogPackager options', () => {
  it('passes batching, retries, record age and dedup window through', () => {
    const template = Template.fromStack(
      packager({
        batchSize: 500,
        maxBatchingWindow: Duration.seconds(30),
        retryAttempts: 3,
        maxRecordAge: Duration.hours(6),
        dedupWindow: Duration.hours(12),
      }).stack,
    );
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 30,
      MaximumRetryAttempts: 3,
      MaximumRecordAgeInSeconds: 21600,
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [ENV.DEDUP_WINDOW_SECONDS]: '43200' }) },
    });
  });
});
