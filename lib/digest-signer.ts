import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import {
  DEFAULT_DIGEST_PERIOD_SECONDS,
  DEFAULT_TRAIL,
  ENV,
  type DigestKeyConfig,
  type TrailConfig,
} from '../lambda/core/config';
import { CHAIN_TABLE } from '../lambda/core/tables';
import { OLDEST_UNDIGESTED_PERIOD_AGE } from '../lambda/core/metrics';
import { acknowledgeIamWildcards } from './private/nag';
import { emfMetric } from './private/emf-metric';
import { OpentrailFunction } from './private/opentrail-function';
import { createDataKey } from './private/secure-bucket';
import { requireIntegerInRange } from './private/validate';
import { denySigningToOthers, validateDigestKeys } from './private/digest-keys';
import type { DigestSignerProps } from './digest-signer-options';

/** EventBridge Scheduler keeps retrying a failed run for this long. */
const SCHEDULE_MAX_EVENT_AGE_MINUTES = 50;
/** The signer function's default timeout. */
const SIGNER_TIMEOUT_MINUTES = 5;

/**
 * The digest signer (docs/formats.md#digest-files): an EventBridge Scheduler schedule runs a Lambda function
 * hourly, a few minutes past the hour; for each trail with log-file validation on and each
 * (account, region) the packager registered, it writes the digest of every elapsed hour —
 * empty hours included, several in order after an outage — signed with a KMS asymmetric key
 * (RSA_2048, SIGN_VERIFY, RSASSA_PKCS1_V1_5_SHA_256 over the SHA-256 of the string to sign),
 * the signature in the object's `signature` metadata.
 *
 * Chain state (stream registry, chain heads, reservations) lives in a table of its own:
 * on-demand, PITR, SSE-KMS, deletion protection, retained. The head can be rebuilt from the
 * newest digest in S3.
 *
 * Keys: each digest is signed with the key whose validity window contains its end, so after
 * an outage across a key change the periods that ended before it are signed with the previous
 * key (see docs/guarantees.md#digest-chain).
 *
 * Grants, and nothing else: `kms:Sign` and `kms:GetPublicKey` on the signing key and the
 * previous keys, whose key policies deny `kms:Sign` to every other principal (keys created in
 * this app; a warning for others);
 * `s3:PutObject` and `s3:GetObject` on the digest prefixes only (get: a re-run compares what
 * it finds; the head rebuild reads the newest digest) and `s3:ListBucket` limited to those
 * prefixes; the log bucket's key for those objects; `dynamodb:Query`/`UpdateItem` on the
 * manifest (read delivered rows, claim them); `GetItem`/`PutItem`/`Query` on the chain table.
 *
 * Environment: OPENTRAIL_TRAILS, OPENTRAIL_LOG_BUCKET, OPENTRAIL_MANIFEST_TABLE,
 * OPENTRAIL_CHAIN_TABLE, OPENTRAIL_DIGEST_KEY_ID, OPENTRAIL_DIGEST_PERIOD_SECONDS,
 * OPENTRAIL_DIGEST_PUBLIC_KEYS.
 */
export class DigestSigner extends Construct {
  /** The signer function and its role and log group. */
  public readonly handler: OpentrailFunction;
  /** The current signing key. */
  public readonly signingKey: kms.IKey;
  /** The chain-state table (also the packager's stream registry). */
  public readonly chainTable: dynamodb.Table;
  /** The hourly schedule. */
  public readonly schedule: scheduler.Schedule;
  /** Every key ListPublicKeys serves, current last. */
  public readonly publicKeys: readonly {
    readonly key: kms.IKey;
    readonly config: DigestKeyConfig;
  }[];
  /**
   * How long after a period ends its digest may still be on its way: the schedule minute, the
   * schedule's retries (maxEventAge, 50 minutes) and one run (the function timeout).
   * GetTrailStatus serves it; validate-logs reports a period missing only after it.
   */
  public readonly digestGrace: Duration;
  private readonly statusSource: {
    readonly trails: readonly TrailConfig[];
    readonly logBucket: s3.IBucket;
    readonly manifestTable: dynamodb.ITable;
  };

  constructor(scope: Construct, id: string, props: DigestSignerProps) {
    super(scope, id);
    const trails = props.trails ?? [DEFAULT_TRAIL];
    const minute = props.scheduleMinute ?? 5;
    requireIntegerInRange(
      this,
      'INVALID_DIGEST_SCHEDULE',
      'scheduleMinute',
      minute,
      0,
      59,
      'Use a minute past the hour, 0-59.',
    );

    this.signingKey =
      props.signingKey ??
      new kms.Key(this, 'SigningKey', {
        description: 'opentrail digest signing key (RSA_2048, SIGN_VERIFY)',
        keySpec: kms.KeySpec.RSA_2048,
        keyUsage: kms.KeyUsage.SIGN_VERIFY,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.publicKeys = [
      ...(props.previousKeys ?? []).map((p) => ({
        key: p.key,
        config: { keyId: p.key.keyArn, validFrom: p.validFrom, validUntil: p.validUntil },
      })),
      {
        key: this.signingKey,
        config: {
          keyId: this.signingKey.keyArn,
          validFrom: props.signingKeyValidFrom ?? '1970-01-01T00:00:00Z',
        },
      },
    ];
    validateDigestKeys(this, props, this.publicKeys);

    this.chainTable = new dynamodb.Table(this, 'ChainTable', {
      partitionKey: { name: CHAIN_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: CHAIN_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey:
        props.encryptionKey ?? createDataKey(this, 'Key', 'opentrail digest chain state'),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.handler = new OpentrailFunction(this, 'Handler', {
      handlerName: 'digest-signer',
      description:
        'opentrail digest signer: signed, chained digest files per trail, account and region',
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.minutes(SIGNER_TIMEOUT_MINUTES),
      logRetention: props.logRetention,
      tracing: props.tracing,
      environment: {
        [ENV.TRAILS]: JSON.stringify(trails),
        [ENV.LOG_BUCKET]: props.logBucket.bucketName,
        [ENV.MANIFEST_TABLE]: props.manifestTable.tableName,
        [ENV.CHAIN_TABLE]: this.chainTable.tableName,
        [ENV.DIGEST_KEY_ID]: this.signingKey.keyArn,
        [ENV.DIGEST_PERIOD_SECONDS]: String(DEFAULT_DIGEST_PERIOD_SECONDS),
        // Every key and its window: a period is signed with the key whose window holds its end.
        [ENV.DIGEST_PUBLIC_KEYS]: Stack.of(this).toJsonString(this.publicKeys.map((k) => k.config)),
      },
    });

    this.grantSigner(trails, props.logBucket, props.manifestTable);
    this.statusSource = { trails, logBucket: props.logBucket, manifestTable: props.manifestTable };
    this.digestGrace = Duration.seconds(
      minute * 60 +
        SCHEDULE_MAX_EVENT_AGE_MINUTES * 60 +
        (props.timeout ?? Duration.minutes(SIGNER_TIMEOUT_MINUTES)).toSeconds(),
    );

    // Its own role (not the stack-wide one LambdaInvoke would make), so its one finding is
    // acknowledged here and nowhere else.
    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: 'Lets EventBridge Scheduler invoke the opentrail digest signer',
    });
    acknowledgeIamWildcards(
      scheduleRole,
      { resources: [`${this.handler.function.functionArn}:*`] },
      'lambda:InvokeFunction on the signer function and its versions/aliases (the scheduler target grant); one function only.',
    );
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: `opentrail digest signer, hourly at minute ${minute}`,
      schedule: scheduler.ScheduleExpression.cron({ minute: String(minute), hour: '*' }),
      target: new targets.LambdaInvoke(this.handler.function, {
        role: scheduleRole,
        retryAttempts: 3,
        maxEventAge: Duration.minutes(SCHEDULE_MAX_EVENT_AGE_MINUTES),
      }),
    });
  }

  /**
   * Serves ListPublicKeys from `queryFunction` (the `POST /` query handler): its environment
   * gets every key and window, its role `kms:GetPublicKey` on exactly those keys.
   */
  public attachListPublicKeys(queryFunction: OpentrailFunction): void {
    queryFunction.addEnvironment(
      ENV.DIGEST_PUBLIC_KEYS,
      Stack.of(this).toJsonString(this.publicKeys.map((k) => k.config)),
    );
    this.grantGetPublicKeys(queryFunction);
  }

  /**
   * Serves GetTrailStatus and DescribeTrails from `queryFunction` (see
   * docs/guarantees.md#tamper-evidence): the trails, bucket, tables, period and grace in its
   * environment; read-only grants on the chain table (registry, heads) and the manifest's
   * `byStream` index (latest delivery), with their keys.
   */
  public attachTrailStatus(queryFunction: OpentrailFunction): void {
    const { trails, logBucket, manifestTable } = this.statusSource;
    queryFunction.addEnvironment(ENV.TRAILS, JSON.stringify(trails));
    queryFunction.addEnvironment(ENV.LOG_BUCKET, logBucket.bucketName);
    queryFunction.addEnvironment(ENV.MANIFEST_TABLE, manifestTable.tableName);
    queryFunction.addEnvironment(ENV.CHAIN_TABLE, this.chainTable.tableName);
    queryFunction.addEnvironment(ENV.ACCOUNT_ID, Stack.of(this).account);
    queryFunction.addEnvironment(ENV.DIGEST_PERIOD_SECONDS, String(DEFAULT_DIGEST_PERIOD_SECONDS));
    queryFunction.addEnvironment(ENV.DIGEST_GRACE_SECONDS, String(this.digestGrace.toSeconds()));
    this.chainTable.grant(queryFunction, 'dynamodb:GetItem', 'dynamodb:Query');
    this.chainTable.encryptionKey?.grant(queryFunction, 'kms:Decrypt', 'kms:DescribeKey');
    manifestTable.grant(queryFunction, 'dynamodb:Query');
    manifestTable.encryptionKey?.grant(queryFunction, 'kms:Decrypt', 'kms:DescribeKey');
    if (manifestTable instanceof dynamodb.Table) {
      acknowledgeIamWildcards(
        queryFunction.role,
        { resources: [`${manifestTable.tableArn}/index/*`] },
        "The manifest's byStream index (GetTrailStatus reads the newest delivery of each stream), which table.grant covers with the table; read-only.",
      );
    }
  }

  /** `kms:GetPublicKey` on every key ListPublicKeys serves. */
  public grantGetPublicKeys(grantee: iam.IGrantable): void {
    for (const { key } of this.publicKeys) key.grant(grantee, 'kms:GetPublicKey');
  }

  /**
   * Lets the packager register (trail, account, region) streams: OPENTRAIL_CHAIN_TABLE in its
   * environment and `dynamodb:PutItem` on the chain table's registry partition only
   * (`dynamodb:LeadingKeys` = "streams"), and the table's key.
   */
  public attachPackager(packagerFunction: OpentrailFunction): void {
    packagerFunction.addEnvironment(ENV.CHAIN_TABLE, this.chainTable.tableName);
    // The stream registry partition only: a packager cannot touch chain heads or reservations.
    packagerFunction.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:PutItem'],
        resources: [this.chainTable.tableArn],
        conditions: {
          'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [CHAIN_TABLE.streamsPartition] },
        },
      }),
    );
    this.chainTable.encryptionKey?.grant(
      packagerFunction,
      'kms:Decrypt',
      'kms:Encrypt',
      'kms:GenerateDataKey',
      'kms:DescribeKey',
    );
  }

  /** Signer invocation errors (sum); each failed run is retried by the schedule, then next hour. */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metricErrors(props);
  }

  /** Signer invocations (sum): fewer than one an hour means digests are late. */
  public metricInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metricInvocations(props);
  }

  /**
   * Digests written (EMF metric `DigestsWritten`, sum): at least one per stream and hour once
   * streams exist; none for two hours means the chain is falling behind.
   */
  public metricDigestsWritten(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return emfMetric(this, 'digest-signer', 'DigestsWritten', {
      period: Duration.hours(1),
      ...props,
    });
  }

  /**
   * Seconds since the oldest period without a digest ended (EMF metric
   * `OldestUndigestedPeriodAgeSeconds`, maximum): one series for the deployment, the maximum
   * over every chain; the digest signer logs which chains are behind. 0 while every period that
   * has ended is signed; emitted by every run, failed ones included.
   */
  public metricOldestUndigestedPeriodAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return emfMetric(this, 'digest-signer', OLDEST_UNDIGESTED_PERIOD_AGE, {
      statistic: 'Maximum',
      period: Duration.hours(1),
      ...props,
    });
  }

  private grantSigner(
    trails: readonly TrailConfig[],
    logBucket: s3.IBucket,
    manifestTable: dynamodb.ITable,
  ): void {
    const fn = this.handler;
    // Previous keys too: after an outage across a key change, a period that ended inside a
    // previous key's window is signed with that key (the function never signs a period outside
    // a key's window). Disable a retired key in KMS to stop that.
    for (const { key } of this.publicKeys) key.grant(fn, 'kms:Sign', 'kms:GetPublicKey');
    denySigningToOthers(this, this.publicKeys, fn.role.roleArn);

    const prefixes = [
      ...new Set(
        trails
          .filter((t) => t.logFileValidation === true)
          .map((t) => `${t.prefix ? `${t.prefix}/` : ''}AWSLogs/`),
      ),
    ];
    const digestObjects = prefixes.map((p) => logBucket.arnForObjects(`${p}*/CloudTrail-Digest/*`));
    if (digestObjects.length > 0) {
      fn.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['s3:PutObject', 's3:GetObject'],
          resources: digestObjects,
        }),
      );
      fn.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [logBucket.bucketArn],
          conditions: {
            StringLike: { 's3:prefix': prefixes.map((p) => `${p}*/CloudTrail-Digest/*`) },
          },
        }),
      );
      logBucket.encryptionKey?.grant(fn, 'kms:Decrypt', 'kms:GenerateDataKey');
      // Only the signer writes digests, whatever other identity policies say.
      logBucket.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'OnlyTheSignerWritesDigests',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['s3:PutObject'],
          resources: digestObjects,
          conditions: { ArnNotEquals: { 'aws:PrincipalArn': fn.role.roleArn } },
        }),
      );
    }

    manifestTable.grant(fn, 'dynamodb:Query', 'dynamodb:UpdateItem');
    manifestTable.encryptionKey?.grant(
      fn,
      'kms:Decrypt',
      'kms:Encrypt',
      'kms:GenerateDataKey',
      'kms:DescribeKey',
    );
    this.chainTable.grant(fn, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query');
    this.chainTable.encryptionKey?.grant(
      fn,
      'kms:Decrypt',
      'kms:Encrypt',
      'kms:GenerateDataKey',
      'kms:DescribeKey',
    );

    acknowledgeIamWildcards(
      fn.role,
      {
        resources: [
          ...digestObjects,
          ...(manifestTable instanceof dynamodb.Table ? [`${manifestTable.tableArn}/index/*`] : []),
        ],
      },
      `Digest objects under each validated trail's prefix (${prefixes.join(', ')}…/CloudTrail-Digest/…): keys carry account, region and time, so no fixed list exists; and the manifest's byStream index, which table.grant covers with the table.`,
    );
  }
}
