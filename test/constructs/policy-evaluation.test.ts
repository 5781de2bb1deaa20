import { OpentrailStack, parseAppConfig, stackPropsFromConfig } from '../../lib';
import { cdkJson, testApp } from './support/app';
import { ACCOUNT, PolicySimulator, type PolicyRequest } from './support/policy-simulator';

/**
 * The synthesized policies, evaluated as AWS would (identity + resource + key policies, with
 * @cloud-copilot/iam-simulate), not matched as strings. The stack is cdk.json's deployment
 * plus a break-glass role and one log reader.
 */
const BREAK_GLASS = `arn:aws:iam::${ACCOUNT}:role/BreakGlass`;
const LOG_READER = `arn:aws:iam::${ACCOUNT}:role/Auditor`;
const ADMIN = `arn:aws:iam::${ACCOUNT}:role/Admin`;
const DEPLOY = `arn:aws:iam::${ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-${ACCOUNT}-us-east-1`;
/** An identity policy allowing everything: what an administrator, or a mistaken grant, has. */
const EVERYTHING = [{ Effect: 'Allow', Action: '*', Resource: '*' }];
const WRITE_ONCE = { 's3:if-none-match': '*' };

let sim: PolicySimulator;
let ids: {
  packager: string;
  signer: string;
  ingest: string;
  publisher: string;
  indexer: string;
  logBucket: string;
  logKey: string;
  signingKey: string;
  stream: string;
  streamKey: string;
  bus: string;
  packagerFailed: string;
  publisherFailed: string;
  manifest: string;
  dedup: string;
  chain: string;
  keys: string[];
};

beforeAll(() => {
  const app = testApp();
  const config = parseAppConfig(app, cdkJson.context.opentrail);
  const props = stackPropsFromConfig(config);
  const stack = new OpentrailStack(app, 'Opentrail', {
    ...props,
    archive: { ...props.archive, logReaders: [LOG_READER] },
    protection: { breakGlassPrincipalArn: BREAK_GLASS },
    env: { account: ACCOUNT, region: 'us-east-1' },
  });
  sim = new PolicySimulator(stack);
  const role = (prefix: string) => sim.id('AWS::IAM::Role', prefix);
  ids = {
    packager: role('AuditTrailLogPackagerHandlerRole'),
    signer: role('AuditTrailDigestSignerHandlerRole'),
    ingest: role('AuditTrailIngestApiHandlerRole'),
    publisher: role('AuditTrailEventFanoutHandlerRole'),
    indexer: role('AuditTrailEventHistoryIndexerRole'),
    logBucket: sim.id('AWS::S3::Bucket', 'AuditTrailLogArchiveBucket'),
    logKey: sim.id('AWS::KMS::Key', 'AuditTrailLogArchiveKey'),
    signingKey: sim.id('AWS::KMS::Key', 'AuditTrailDigestSignerSigningKey'),
    stream: sim.id('AWS::Kinesis::Stream', 'AuditTrailEventStream'),
    streamKey: sim.id('AWS::KMS::Key', 'AuditTrailEventStreamKey'),
    bus: sim.id('AWS::Events::EventBus', 'AuditTrailEventFanoutBus'),
    packagerFailed: sim.id('AWS::S3::Bucket', 'AuditTrailLogPackagerFailedRecordsBucket'),
    publisherFailed: sim.id('AWS::S3::Bucket', 'AuditTrailEventFanoutFailedRecordsBucket'),
    manifest: sim.id('AWS::DynamoDB::Table', 'AuditTrailLogPackagerManifestTable'),
    dedup: sim.id('AWS::DynamoDB::Table', 'AuditTrailLogPackagerDedupTable'),
    chain: sim.id('AWS::DynamoDB::Table', 'AuditTrailDigestSignerChainTable'),
    keys: [
      'AuditTrailLogArchiveKey',
      'AuditTrailDigestSignerSigningKey',
      'AuditTrailEventStreamKey',
      'AuditTrailLogGroupKey',
    ].map((prefix) => sim.id('AWS::KMS::Key', prefix)),
  };
}, 120_000);

const object = (bucket: () => string, key: string) => () => `${sim.arn(bucket())}/${key}`;
const LOG_FILE =
  'AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/111122223333_CloudTrail_us-east-1_20260102T0000Z_abcdefghijklmnop.json.gz';
const DIGEST =
  'AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/01/02/111122223333_CloudTrail-Digest_us-east-1_opentrail_us-east-1_20260102T010000Z.json.gz';

interface Case {
  readonly principal: () => string;
  readonly action: string;
  readonly resource: () => string;
  readonly context?: PolicyRequest['context'];
  readonly extraIdentityStatements?: PolicyRequest['extraIdentityStatements'];
}

async function decide(c: Case) {
  return sim.decide({
    principal: c.principal(),
    action: c.action,
    resource: c.resource(),
    context: c.context,
    extraIdentityStatements: c.extraIdentityStatements,
  });
}

describe('requests each protection denies, whatever identity policies allow', () => {
  it.each<[string, Case]>([
    [
      "the packager's PutObject on a digest key (even with s3:* granted by mistake)",
      {
        principal: () => ids.packager,
        action: 's3:PutObject',
        resource: object(() => ids.logBucket, DIGEST),
        context: WRITE_ONCE,
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'a PutObject without If-None-Match by the packager (an overwrite)',
      {
        principal: () => ids.packager,
        action: 's3:PutObject',
        resource: object(() => ids.logBucket, LOG_FILE),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'a PutObject without If-None-Match by the signer on a digest',
      {
        principal: () => ids.signer,
        action: 's3:PutObject',
        resource: object(() => ids.logBucket, DIGEST),
      },
    ],
    [
      'a digest written by an administrator',
      {
        principal: () => ADMIN,
        action: 's3:PutObject',
        resource: object(() => ids.logBucket, DIGEST),
        context: WRITE_ONCE,
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'kms:Sign on the signing key by a non-signer role allowed kms:* on *',
      {
        principal: () => ids.packager,
        action: 'kms:Sign',
        resource: () => sim.arn(ids.signingKey),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'kms:Sign on the signing key by an administrator',
      {
        principal: () => ADMIN,
        action: 'kms:Sign',
        resource: () => sim.arn(ids.signingKey),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'PutRecords on the stream by a role other than ingest (the publisher, allowed kinesis:*)',
      {
        principal: () => ids.publisher,
        action: 'kinesis:PutRecords',
        resource: () => sim.arn(ids.stream),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'PutRecord on the stream by an administrator',
      {
        principal: () => ADMIN,
        action: 'kinesis:PutRecord',
        resource: () => sim.arn(ids.stream),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'a version delete in the log bucket by an administrator',
      {
        principal: () => ADMIN,
        action: 's3:DeleteObjectVersion',
        resource: object(() => ids.logBucket, LOG_FILE),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'a version delete by the deploy role',
      {
        principal: () => DEPLOY,
        action: 's3:DeleteObjectVersion',
        resource: object(() => ids.logBucket, LOG_FILE),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'a lifecycle change of the log bucket by an administrator',
      {
        principal: () => ADMIN,
        action: 's3:PutLifecycleConfiguration',
        resource: () => sim.arn(ids.logBucket),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'a bucket policy change by an administrator',
      {
        principal: () => ADMIN,
        action: 's3:PutBucketPolicy',
        resource: () => sim.arn(ids.logBucket),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'scheduling deletion of the log key by the deploy role',
      {
        principal: () => DEPLOY,
        action: 'kms:ScheduleKeyDeletion',
        resource: () => sim.arn(ids.logKey),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'a key policy change by an administrator',
      {
        principal: () => ADMIN,
        action: 'kms:PutKeyPolicy',
        resource: () => sim.arn(ids.signingKey),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'kms:Decrypt on the log key by a role that is neither the deployment nor a log reader',
      {
        principal: () => ADMIN,
        action: 'kms:Decrypt',
        resource: () => sim.arn(ids.logKey),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'a PutEvents by an administrator with one opentrail.* entry among others',
      {
        principal: () => ADMIN,
        action: 'events:PutEvents',
        resource: () => sim.arn(ids.bus),
        context: { 'events:source': ['my.app', 'opentrail.iam'] },
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'an opentrail.* event put on the bus by an administrator',
      {
        principal: () => ADMIN,
        action: 'events:PutEvents',
        resource: () => sim.arn(ids.bus),
        context: { 'events:source': ['opentrail.s3'] },
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      "a batch planted in the packager's failed-records bucket by the publisher",
      {
        principal: () => ids.publisher,
        action: 's3:PutObject',
        resource: object(() => ids.packagerFailed, 'planted.json'),
        extraIdentityStatements: EVERYTHING,
      },
    ],
  ])('denies %s', async (_name, c) => {
    expect(await decide(c)).toBe('ExplicitlyDenied');
  });

  it('denies the packager a write outside the registry partition of the chain table', async () => {
    const request = {
      principal: () => ids.packager,
      action: 'dynamodb:PutItem',
      resource: () => sim.arn(ids.chain),
    };

    expect(await decide({ ...request, context: { 'dynamodb:LeadingKeys': ['head#x'] } })).not.toBe(
      'Allowed',
    );
    expect(await decide({ ...request, context: { 'dynamodb:LeadingKeys': ['streams'] } })).toBe(
      'Allowed',
    );
  });

  it("denies the packager's role what it no longer needs on the log bucket", async () => {
    for (const action of [
      's3:PutObjectLegalHold',
      's3:PutObjectRetention',
      's3:PutObjectTagging',
    ]) {
      expect(
        await decide({
          principal: () => ids.packager,
          action,
          resource: object(() => ids.logBucket, LOG_FILE),
        }),
      ).toBe('ImplicitlyDenied');
    }
    expect(
      await decide({
        principal: () => ids.packager,
        action: 's3:GetBucketPolicy',
        resource: () => sim.arn(ids.logBucket),
      }),
    ).toBe('ImplicitlyDenied');
  });
});

describe('each role keeps the requests it makes', () => {
  it.each<[string, Case]>([
    [
      'the packager writes a log file with If-None-Match',
      {
        principal: () => ids.packager,
        action: 's3:PutObject',
        resource: object(() => ids.logBucket, LOG_FILE),
        context: WRITE_ONCE,
      },
    ],
    [
      'the packager reads a log file back',
      {
        principal: () => ids.packager,
        action: 's3:GetObject',
        resource: object(() => ids.logBucket, LOG_FILE),
      },
    ],
    [
      'the packager encrypts with the log key',
      {
        principal: () => ids.packager,
        action: 'kms:GenerateDataKey',
        resource: () => sim.arn(ids.logKey),
      },
    ],
    [
      'the packager decrypts with the log key',
      {
        principal: () => ids.packager,
        action: 'kms:Decrypt',
        resource: () => sim.arn(ids.logKey),
      },
    ],
    [
      'the packager updates a manifest row',
      {
        principal: () => ids.packager,
        action: 'dynamodb:UpdateItem',
        resource: () => sim.arn(ids.manifest),
      },
    ],
    [
      'the packager reads dedup claims',
      {
        principal: () => ids.packager,
        action: 'dynamodb:BatchGetItem',
        resource: () => sim.arn(ids.dedup),
      },
    ],
    [
      'the packager gives a batch up to its failed-records bucket',
      {
        principal: () => ids.packager,
        action: 's3:PutObject',
        resource: object(() => ids.packagerFailed, 'shard/batch.json'),
      },
    ],
    [
      'the publisher gives a batch up to its failed-records bucket',
      {
        principal: () => ids.publisher,
        action: 's3:PutObject',
        resource: object(() => ids.publisherFailed, 'shard/batch.json'),
      },
    ],
    [
      'the signer writes a digest with If-None-Match',
      {
        principal: () => ids.signer,
        action: 's3:PutObject',
        resource: object(() => ids.logBucket, DIGEST),
        context: WRITE_ONCE,
      },
    ],
    [
      'the signer signs',
      {
        principal: () => ids.signer,
        action: 'kms:Sign',
        resource: () => sim.arn(ids.signingKey),
      },
    ],
    [
      'the signer decrypts a digest it reads back',
      {
        principal: () => ids.signer,
        action: 'kms:Decrypt',
        resource: () => sim.arn(ids.logKey),
      },
    ],
    [
      'ingest puts records',
      {
        principal: () => ids.ingest,
        action: 'kinesis:PutRecords',
        resource: () => sim.arn(ids.stream),
      },
    ],
    [
      "ingest encrypts with the stream's key",
      {
        principal: () => ids.ingest,
        action: 'kms:GenerateDataKey',
        resource: () => sim.arn(ids.streamKey),
      },
    ],
    [
      'the publisher puts opentrail.* events',
      {
        principal: () => ids.publisher,
        action: 'events:PutEvents',
        resource: () => sim.arn(ids.bus),
        context: { 'events:source': ['opentrail.s3'] },
      },
    ],
    [
      'an administrator puts its own (non-opentrail) events on the bus',
      {
        principal: () => ADMIN,
        action: 'events:PutEvents',
        resource: () => sim.arn(ids.bus),
        context: { 'events:source': ['my.app'] },
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'a log reader decrypts log files',
      {
        principal: () => LOG_READER,
        action: 'kms:Decrypt',
        resource: () => sim.arn(ids.logKey),
        extraIdentityStatements: [{ Effect: 'Allow', Action: 'kms:Decrypt', Resource: '*' }],
      },
    ],
    [
      'the break-glass role deletes a version',
      {
        principal: () => BREAK_GLASS,
        action: 's3:DeleteObjectVersion',
        resource: object(() => ids.logBucket, LOG_FILE),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'the break-glass role schedules deletion of a key',
      {
        principal: () => BREAK_GLASS,
        action: 'kms:ScheduleKeyDeletion',
        resource: () => sim.arn(ids.logKey),
        extraIdentityStatements: EVERYTHING,
      },
    ],
    [
      'the deploy role changes the bucket policy',
      {
        principal: () => DEPLOY,
        action: 's3:PutBucketPolicy',
        resource: () => sim.arn(ids.logBucket),
        extraIdentityStatements: EVERYTHING,
      },
    ],
  ])('allows %s', async (_name, c) => {
    expect(await decide(c)).toBe('Allowed');
  });

  it('keeps kms:PutKeyPolicy for the deploy role on every key (KMS lockout check)', async () => {
    for (const key of ids.keys) {
      expect(
        await decide({
          principal: () => DEPLOY,
          action: 'kms:PutKeyPolicy',
          resource: () => sim.arn(key),
          extraIdentityStatements: EVERYTHING,
        }),
      ).toBe('Allowed');
    }
  });
});

describe('the app configuration keys reach the policies', () => {
  it('breakGlassPrincipalArn, deployRoleArn and logReaders from cdk.json context', async () => {
    const app = testApp();
    const config = parseAppConfig(app, {
      ...(cdkJson.context.opentrail as object),
      breakGlassPrincipalArn: BREAK_GLASS,
      deployRoleArn: `arn:aws:iam::${ACCOUNT}:role/Pipeline`,
      logReaders: [LOG_READER],
    });
    const stack = new OpentrailStack(app, 'Configured', {
      ...stackPropsFromConfig(config),
      env: { account: ACCOUNT, region: 'us-east-1' },
    });
    const configured = new PolicySimulator(stack);
    const bucket = configured.arn(configured.id('AWS::S3::Bucket', 'AuditTrailLogArchiveBucket'));
    const key = configured.arn(configured.id('AWS::KMS::Key', 'AuditTrailLogArchiveKey'));
    const as = (principal: string, action: string, resource: string) =>
      configured.decide({ principal, action, resource, extraIdentityStatements: EVERYTHING });

    expect(await as(BREAK_GLASS, 's3:DeleteObjectVersion', `${bucket}/${LOG_FILE}`)).toBe(
      'Allowed',
    );
    expect(await as(`arn:aws:iam::${ACCOUNT}:role/Pipeline`, 'kms:PutKeyPolicy', key)).toBe(
      'Allowed',
    );
    expect(await as(DEPLOY, 'kms:PutKeyPolicy', key)).toBe('ExplicitlyDenied');
    expect(await as(LOG_READER, 'kms:Decrypt', key)).toBe('Allowed');
  }, 120_000);
});
