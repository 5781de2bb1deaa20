import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ENV, type TrailConfig } from '../../lambda/core/config';
import { DigestSigner } from '../../lib/digest-signer';
import type { DigestSignerOptions } from '../../lib/digest-signer-options';
import { EventStream, LogArchive, LogPackager } from '../../lib';
import { OpentrailFunction } from '../../lib/private/opentrail-function';
import { maskAssetHashes } from './support/mask-asset-hashes';
import { testStack } from './support/app';

expect.addSnapshotSerializer(maskAssetHashes);

const TRAILS: TrailConfig[] = [
  { name: 'audit', logFileValidation: true },
  { name: 'quiet', prefix: 'quiet', logFileValidation: false },
  { name: 'org', prefix: 'org/logs', logFileValidation: true },
];

function build(options: DigestSignerOptions = {}) {
  const stack = testStack();
  const events = new EventStream(stack, 'Events');
  const archive = new LogArchive(stack, 'Archive');
  const packager = new LogPackager(stack, 'Packager', {
    trails: TRAILS,
    stream: events.stream,
    logBucket: archive.bucket,
  });
  const signer = new DigestSigner(stack, 'Digests', {
    ...options,
    trails: TRAILS,
    logBucket: archive.bucket,
    manifestTable: packager.manifestTable,
  });
  const query = new OpentrailFunction(stack, 'Query', {
    handlerName: 'ingest',
    description: 'stand-in for the query function',
  });
  signer.attachListPublicKeys(query);
  signer.attachPackager(packager.handler);
  return { stack, signer, packager };
}

type Statement = {
  Action: string | string[];
  Resource: unknown;
  Effect: string;
  Condition?: unknown;
};

function statementsOf(template: Template, rolePrefix: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp(`^${rolePrefix}`) }] },
  });
  return Object.values(policies).flatMap(
    (p) => p.Properties.PolicyDocument.Statement as Statement[],
  );
}

const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourceText = (s: Statement): string => JSON.stringify(s.Resource);

describe('DigestSigner', () => {
  let template: Template;
  beforeAll(() => {
    template = Template.fromStack(build().stack);
  });

  it('creates an RSA_2048 SIGN_VERIFY key that is retained', () => {
    template.hasResource('AWS::KMS::Key', {
      Properties: { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('runs hourly at five past the hour through EventBridge Scheduler, with bounded retries', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(5 * * * ? *)',
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DigestsHandlerFunction'), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3000 },
      },
    });
  });

  it('keeps chain state in a retained, PITR, KMS-encrypted table with pk/sk', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
        DeletionProtectionEnabled: true,
      },
      DeletionPolicy: 'Retain',
    });
  });

  it('gives the signer its trails, bucket, tables, key and period through the environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [ENV.TRAILS]: JSON.stringify(TRAILS),
          [ENV.LOG_BUCKET]: { Ref: Match.stringLikeRegexp('^ArchiveBucket') },
          [ENV.MANIFEST_TABLE]: { Ref: Match.stringLikeRegexp('^PackagerManifestTable') },
          [ENV.CHAIN_TABLE]: { Ref: Match.stringLikeRegexp('^DigestsChainTable') },
          [ENV.DIGEST_KEY_ID]: {
            'Fn::GetAtt': [Match.stringLikeRegexp('^DigestsSigningKey'), 'Arn'],
          },
          [ENV.DIGEST_PERIOD_SECONDS]: '3600',
        }),
      },
    });
  });

  it('only the signer may kms:Sign, and only with the signing key', () => {
    const all = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as Statement[],
    );
    const signing = all.filter((s) => actionsOf(s).some((a) => a === 'kms:Sign' || a === 'kms:*'));
    expect(signing).toHaveLength(1);
    expect(statementsOf(template, 'DigestsHandlerRole')).toContainEqual(signing[0]);
    expect(signing[0]!.Resource).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/^DigestsSigningKey/), 'Arn'],
    });
    expect(actionsOf(signing[0]!).sort()).toEqual(['kms:GetPublicKey', 'kms:Sign']);
  });

  it('grants the signer exactly its actions: sign, digest objects, manifest claims, chain state', () => {
    const statements = statementsOf(template, 'DigestsHandlerRole');
    const actions = [...new Set(statements.flatMap(actionsOf))].sort();
    expect(actions).toEqual(
      [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'kms:Decrypt',
        'kms:DescribeKey',
        'kms:Encrypt',
        'kms:GenerateDataKey',
        'kms:GetPublicKey',
        'kms:Sign',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
      ].sort(),
    );
    expect(actions.some((a) => a.includes('*'))).toBe(false);
  });

  it('lets the signer put objects under the digest prefixes of validated trails only', () => {
    const puts = statementsOf(template, 'DigestsHandlerRole').filter((s) =>
      actionsOf(s).includes('s3:PutObject'),
    );
    expect(puts).toHaveLength(1);
    const text = resourceText(puts[0]!);
    expect(text).toContain('/AWSLogs/*/CloudTrail-Digest/*');
    expect(text).toContain('/org/logs/AWSLogs/*/CloudTrail-Digest/*');
    expect(text).not.toContain('quiet');
    expect(text).not.toMatch(/"\/\*"/);
    const list = statementsOf(template, 'DigestsHandlerRole').find((s) =>
      actionsOf(s).includes('s3:ListBucket'),
    );
    expect(list!.Condition).toEqual({
      StringLike: {
        's3:prefix': ['AWSLogs/*/CloudTrail-Digest/*', 'org/logs/AWSLogs/*/CloudTrail-Digest/*'],
      },
    });
  });

  it('gives the query function the key list and kms:GetPublicKey only', () => {
    const statements = statementsOf(template, 'QueryRole');
    const kmsActions = statements.flatMap(actionsOf).filter((a) => a.startsWith('kms:'));
    expect(kmsActions).toEqual(['kms:GetPublicKey']);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ [ENV.DIGEST_PUBLIC_KEYS]: Match.anyValue() }),
      },
    });
  });

  it('gives the packager the chain table and dynamodb:PutItem on it, for the stream registry', () => {
    const statements = statementsOf(template, 'PackagerHandlerRole').filter((s) =>
      resourceText(s).includes('DigestsChainTable'),
    );
    expect(statements.flatMap(actionsOf)).toEqual(['dynamodb:PutItem']);
  });
});

describe('DigestSigner metrics', () => {
  it('metricDigestsWritten reads the signer EMF metric with its service and deployment dimensions', () => {
    const { stack, signer } = build();
    const metric = signer.metricDigestsWritten();
    expect(metric.namespace).toBe('opentrail');
    expect(metric.metricName).toBe('DigestsWritten');
    expect(metric.dimensions).toEqual({ service: 'digest-signer', deployment: 'Test' });
    expect(stack.resolve(signer.metricErrors().dimensions)).toEqual({
      FunctionName: { Ref: expect.stringMatching(/^DigestsHandlerFunction/) },
    });
  });
});

describe('DigestSigner key change', () => {
  it('keeps a previous key listed with its window and lets the query function read it', () => {
    const stack = testStack();
    const old = new kms.Key(stack, 'OldKey', {
      keySpec: kms.KeySpec.RSA_2048,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
    });
    const archive = new LogArchive(stack, 'Archive');
    const events = new EventStream(stack, 'Events');
    const packager = new LogPackager(stack, 'Packager', {
      stream: events.stream,
      logBucket: archive.bucket,
    });
    const signer = new DigestSigner(stack, 'Digests', {
      logBucket: archive.bucket,
      manifestTable: packager.manifestTable,
      signingKeyValidFrom: '2026-06-01T00:00:00Z',
      previousKeys: [
        { key: old, validFrom: '2026-01-01T00:00:00Z', validUntil: '2026-06-01T00:00:00Z' },
      ],
    });
    const query = new OpentrailFunction(stack, 'Query', {
      handlerName: 'ingest',
      description: 'query',
    });
    signer.attachListPublicKeys(query);
    const template = Template.fromStack(stack);

    const env = Object.values(template.findResources('AWS::Lambda::Function'))
      .map(
        (f) =>
          (f as { Properties: { Environment?: { Variables?: Record<string, unknown> } } })
            .Properties.Environment?.Variables?.[ENV.DIGEST_PUBLIC_KEYS],
      )
      .find((v) => v !== undefined);
    const text = JSON.stringify(stack.resolve(env));
    expect(text).toContain('2026-01-01T00:00:00Z');
    expect(text).toContain('2026-06-01T00:00:00Z');
    expect(text).toContain('OldKey');
    const getPublicKey = statementsOf(template, 'QueryRole').filter((s) =>
      actionsOf(s).includes('kms:GetPublicKey'),
    );
    expect(getPublicKey.map(resourceText).join()).toContain('OldKey');
    expect(getPublicKey.map(resourceText).join()).toContain('DigestsSigningKey');

    // The signer knows every window and may sign with the previous key (an outage across the
    // change: periods that ended inside its window); the query function may not sign at all.
    const signerEnv = Object.values(template.findResources('AWS::Lambda::Function'))
      .map(
        (f) =>
          (f as { Properties: { Environment?: { Variables?: Record<string, unknown> } } })
            .Properties.Environment?.Variables ?? {},
      )
      .find((v) => v[ENV.DIGEST_KEY_ID] !== undefined)!;
    expect(JSON.stringify(stack.resolve(signerEnv[ENV.DIGEST_PUBLIC_KEYS]))).toContain('OldKey');
    const signs = (prefix: string) =>
      statementsOf(template, prefix)
        .filter((st) => actionsOf(st).includes('kms:Sign'))
        .map(resourceText)
        .join();
    expect(signs('DigestsHandlerRole')).toContain('OldKey');
    expect(signs('DigestsHandlerRole')).toContain('DigestsSigningKey');
    expect(signs('QueryRole')).toBe('');
  });

  it('refuses a key window that ends before it starts', () => {
    const stack = testStack();
    const archive = new LogArchive(stack, 'Archive');
    const events = new EventStream(stack, 'Events');
    const packager = new LogPackager(stack, 'Packager', {
      stream: events.stream,
      logBucket: archive.bucket,
    });
    const old = new kms.Key(stack, 'OldKey', {
      keySpec: kms.KeySpec.RSA_2048,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
    });
    expect(
      () =>
        new DigestSigner(stack, 'Digests', {
          logBucket: archive.bucket,
          manifestTable: packager.manifestTable,
          previousKeys: [
            { key: old, validFrom: '2026-06-01T00:00:00Z', validUntil: '2026-01-01T00:00:00Z' },
          ],
        }),
    ).toThrow(/INVALID_DIGEST_KEYS/);
  });
});

describe('DigestSigner and cdk-nag', () => {
  it('finds nothing unacknowledged in a stack holding the signer', () => {
    const { stack } = build();
    const result = new AwsSolutionsChecks(stack.node.root).validateScope(stack);
    const findings = result.violations.flatMap((v) =>
      v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${r.constructPath ?? '?'}`),
    );
    expect(findings).toEqual([]);
  });
});

describe('DigestSigner snapshot', () => {
  it('matches the masked snapshot of a stack holding the signer', () => {
    expect(Template.fromStack(build().stack).toJSON()).toMatchSnapshot();
  });
});
