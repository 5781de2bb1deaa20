import { Annotations, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
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
import { OpentrailConfigError } from './private/errors';
import { OLDEST_UNDIGESTED_PERIOD_AGE } from '../lambda/core/metrics';
import { acknowledgeIamWildcards } from './private/nag';
import { emfMetric } from './private/emf-metric';
import { OpentrailFunction } from './private/opentrail-function';
import { createDataKey } from './private/secure-bucket';
import { requireIntegerInRange } from './private/validate';

/** A key digests were signed with before the current one, kept listed by ListPublicKeys. */
export interface PreviousDigestKey {
  /**
   * The retired key (RSA_2048, SIGN_VERIFY). Keep it: validators fetch its public key, and the
   * signer signs with it the periods that ended inside its window but were not yet signed at
   * the key change (an outage).
   */
  readonly key: kms.IKey;
  /** ISO-8601 start of the window in which it signed. */
  readonly validFrom: string;
  /** ISO-8601 end of that window (the key change). */
  readonly validUntil: string;
}

/** Everything about the signer a user chooses; {@link DigestSignerProps} adds the wiring. */
export interface DigestSignerOptions {
  /**
   * The signing key: an asymmetric KMS key, key spec RSA_2048, usage SIGN_VERIFY. Pass a new
   * one (and move the old one to `previousKeys`) to change keys.
   * @default - a new key: RSA_2048, SIGN_VERIFY, retained
   */
  readonly signingKey?: kms.IKey;
  /**
   * ISO-8601 start of the current key's validity window (the key change, for a new key).
   * @default '1970-01-01T00:00:00Z' - valid for every digest before it too
   */
  readonly signingKeyValidFrom?: string;
  /**
   * Keys digests were signed with before: ListPublicKeys keeps serving them with their
   * windows, so a chain that crosses a key change validates.
   * @default - none
   */
  readonly previousKeys?: readonly PreviousDigestKey[];
  /**
   * Minute past the hour at which the hourly schedule runs (late manifest rows land first).
   * @default 5
   */
  readonly scheduleMinute?: number;
  /**
   * Key of the chain-state table.
   * @default - a new customer managed key, rotated yearly, retained
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Function memory in MB.
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Function timeout.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * Retention of the function's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Active X-Ray tracing.
   * @default false
   */
  readonly tracing?: boolean;
}

/** EventBridge Scheduler keeps retrying a failed run for this long. */
const SCHEDULE_MAX_EVENT_AGE_MINUTES = 50;
/** The signer function's default timeout. */
const SIGNER_TIMEOUT_MINUTES = 5;

export interface DigestSignerProps extends DigestSignerOptions {
  /**
   * The trails (the same list the packager has); those with `logFileValidation: true` get
   * digests.
   * @default [DEFAULT_TRAIL]
   */
  readonly trails?: readonly TrailConfig[];
  /** The log bucket: digests are written beside the log files (its key is granted too). */
  readonly logBucket: s3.IBucket;
  /** The packager's delivery manifest (partition key `pk`, GSI `byStream`). */
  readonly manifestTable: dynamodb.ITable;
}

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
    this.validateKeys(props);

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
    this.restrictSigning();

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

  /**
   * The key policy of every signing key created in this app denies `kms:Sign` to all but the
   * signer's role: the account root's default `kms:*` would otherwise let any role allowed
   * `kms:Sign` on `*` sign forged digests. A key imported from elsewhere takes no policy from
   * us: a warning says what to add.
   */
  private restrictSigning(): void {
    const signer = this.handler.role.roleArn;
    const unmanaged: string[] = [];
    for (const { key } of this.publicKeys) {
      const result = key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'OnlyTheSignerSigns',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['kms:Sign'],
          resources: ['*'],
          conditions: { ArnNotEquals: { 'aws:PrincipalArn': signer } },
        }),
        /* allowNoOp */ true,
      );
      if (!result.statementAdded) unmanaged.push(key.node.path);
    }
    if (unmanaged.length > 0) {
      Annotations.of(this).addWarningV2(
        'opentrail:signingKeyPolicyNotManaged',
        `The signing key(s) ${unmanaged.join(', ')} were not created in this app, so opentrail cannot restrict kms:Sign on them. Add to each key policy: {"Sid":"OnlyTheSignerSigns","Effect":"Deny","Principal":"*","Action":"kms:Sign","Resource":"*","Condition":{"ArnNotEquals":{"aws:PrincipalArn":"<the DigestSigner role ARN>"}}} (see docs/security.md#digest-keys).`,
      );
    }
  }

  private validateKeys(props: DigestSignerOptions): void {
    if ((props.previousKeys?.length ?? 0) > 0 && props.signingKeyValidFrom === undefined) {
      throw new OpentrailConfigError(
        this,
        'INVALID_DIGEST_KEYS',
        `previousKeys are given but signingKeyValidFrom is not: the current key would be valid from 1970 and overlap every previous window. Set signingKeyValidFrom to the key change, e.g. the last previous key's validUntil (${props.previousKeys?.at(-1)?.validUntil ?? '…'}).`,
      );
    }
    for (const { config } of this.publicKeys) {
      const from = Date.parse(config.validFrom);
      const until = config.validUntil === undefined ? undefined : Date.parse(config.validUntil);
      if (Number.isNaN(from) || (until !== undefined && (Number.isNaN(until) || until <= from))) {
        throw new OpentrailConfigError(
          this,
          'INVALID_DIGEST_KEYS',
          `digest key windows must be ISO-8601 times with validUntil after validFrom; got validFrom ${config.validFrom}, validUntil ${config.validUntil ?? '(current)'}. Example: { validFrom: '2026-01-01T00:00:00Z', validUntil: '2026-06-01T00:00:00Z' }.`,
        );
      }
    }
    // No two windows may overlap: a period's end must pick exactly one key.
    const windows = this.publicKeys
      .map(({ config }) => ({
        config,
        from: Date.parse(config.validFrom),
        until: config.validUntil === undefined ? Infinity : Date.parse(config.validUntil),
      }))
      .sort((a, b) => a.from - b.from);
    for (let i = 1; i < windows.length; i++) {
      const before = windows[i - 1]!;
      const after = windows[i]!;
      if (after.from < before.until) {
        throw new OpentrailConfigError(
          this,
          'INVALID_DIGEST_KEYS',
          `digest key windows overlap: ${before.config.keyId} is valid ${before.config.validFrom} to ${before.config.validUntil ?? '(current)'} and ${after.config.keyId} from ${after.config.validFrom}. Each key's window must end where (or before) the next one starts, e.g. set signingKeyValidFrom to the last previous key's validUntil.`,
        );
      }
    }
  }
}
