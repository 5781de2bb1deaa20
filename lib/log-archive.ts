import { Annotations, Duration, FeatureFlags, Lazy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { OpentrailConfigError } from './private/errors';
import {
  exceptPrincipals,
  resolveProtection,
  type ProtectionOptions,
  type ProtectionPrincipals,
} from './private/protection';
import {
  createAccessLogsBucket,
  createDataKey,
  createSecureBucket,
  useBucketPolicyForAccessLogs,
} from './private/secure-bucket';
import { secondsOf } from './private/validate';

/**
 * Feature flag (cdk.json context) that turns on S3 Object Lock, GOVERNANCE mode with
 * {@link DEFAULT_OBJECT_LOCK_RETENTION}, on a log bucket LogArchive creates. New projects get
 * it through {@link OPENTRAIL_NEW_PROJECT_CONTEXT}; an existing deployment must not set it
 * (Object Lock can only be enabled when a bucket is created: CloudFormation would replace the
 * bucket). See docs/security.md#object-lock.
 */
export const LOG_ARCHIVE_OBJECT_LOCK_FLAG = '@opentrail/log-archive:objectLockByDefault';

/** The default retention the feature flag gives log files: 365 days, GOVERNANCE mode. */
export const DEFAULT_OBJECT_LOCK_RETENTION = s3.ObjectLockRetention.governance(Duration.days(365));

/** The cdk.json context a new opentrail project starts with (its feature flags). */
export const OPENTRAIL_NEW_PROJECT_CONTEXT: Readonly<Record<string, boolean>> = {
  [LOG_ARCHIVE_OBJECT_LOCK_FLAG]: true,
};

/** What the log bucket's policy denies to all but the break-glass principal. */
export const VERSION_DELETE_ACTIONS = [
  's3:DeleteObjectVersion',
  's3:BypassGovernanceRetention',
] as const;

/** What the log bucket's policy denies to all but the break-glass and deploy principals. */
export const BUCKET_CONFIGURATION_ACTIONS = [
  's3:PutLifecycleConfiguration',
  's3:PutBucketVersioning',
  's3:PutBucketPolicy',
  's3:DeleteBucketPolicy',
  's3:PutBucketObjectLockConfiguration',
] as const;

export interface LogArchiveProps {
  /**
   * Key for SSE-KMS on the log bucket.
   * @default - a new customer managed key, rotated yearly, retained
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Bucket that receives S3 server access logs of the log bucket. It must accept access logs
   * (SSE-S3, not SSE-KMS).
   * @default - a new access-log bucket (SSE-S3, TLS only, versioned, public access blocked, retained)
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * Moves log files to S3 Standard-IA this long after delivery (at least 30 days).
   * @default - never
   */
  readonly transitionToInfrequentAccessAfter?: Duration;
  /**
   * Moves log files to S3 Glacier Instant Retrieval this long after delivery. Instant
   * retrieval keeps them readable by `validate-logs` and Athena without a restore.
   * @default - never
   */
  readonly transitionToGlacierInstantRetrievalAfter?: Duration;
  /**
   * Expires log files (current versions) this long after delivery; with versioning the bytes
   * stay as noncurrent versions until `noncurrentVersionExpiration`. Digests that list an
   * expired file then report it missing.
   * @default - never
   */
  readonly expireAfter?: Duration;
  /**
   * Deletes noncurrent versions this long after they became noncurrent.
   * @default - never
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * S3 Object Lock default retention (WORM), e.g. `s3.ObjectLockRetention.governance(Duration.days(365))`
   * or `.compliance(...)`. Object Lock can only be turned on when the bucket is created.
   * @default - {@link DEFAULT_OBJECT_LOCK_RETENTION} (GOVERNANCE, 365 days) when the app sets
   * the feature flag {@link LOG_ARCHIVE_OBJECT_LOCK_FLAG} (new projects do); otherwise no
   * Object Lock, and a synth-time warning
   */
  readonly objectLockRetention?: s3.ObjectLockRetention;
  /**
   * Principal ARNs (roles, users) that read log files through SSE-KMS: validate-logs, Athena.
   * The key policy denies `kms:Decrypt` to everyone else but the deployment's own roles
   * ({@link grantDeliver}, {@link grantRead}, {@link allowDecrypt}).
   * @default - none but the deployment's roles
   */
  readonly logReaders?: readonly string[];
  /**
   * The break-glass and deploy principals exempt from the bucket's delete and configuration
   * denies.
   * @default - no break-glass principal; the bootstrap CloudFormation execution role deploys
   */
  readonly protection?: ProtectionOptions;
}

/**
 * The S3 bucket that holds the CloudTrail-format log files (docs/formats.md#log-files), and later the
 * digest files (§4).
 *
 * Security defaults: SSE-KMS with a customer managed key (rotation on, S3 bucket key on),
 * versioning, all public access blocked, ACLs disabled, TLS-only bucket policy, S3 server
 * access logs to a separate access-log bucket (SSE-S3, because S3 log delivery cannot write
 * to SSE-KMS buckets; also TLS-only, versioned, blocked), bucket, key and access logs retained
 * when the stack is deleted. Lifecycle rules are off unless asked for; Object Lock is on
 * (GOVERNANCE, 365 days) where the app sets {@link LOG_ARCHIVE_OBJECT_LOCK_FLAG}, and a
 * synth-time warning says so where it does not (never on the access-log bucket: S3 refuses
 * Object Lock log destinations).
 *
 * The bucket policy (docs/security.md) denies, to every principal:
 * - `s3:PutObject` without `If-None-Match` (condition key `s3:if-none-match`): an object is
 *   written once and S3, not the writer, refuses an overwrite;
 * - version deletes and governance bypass ({@link VERSION_DELETE_ACTIONS}) but to the
 *   break-glass principal;
 * - lifecycle, versioning, Object Lock and policy changes ({@link BUCKET_CONFIGURATION_ACTIONS})
 *   but to the break-glass and deploy principals.
 * The key policy denies `kms:Decrypt` but to the deployment's roles and `logReaders`.
 *
 * Objects: `[PREFIX/]AWSLogs/[ORG_ID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/…json.gz`, written
 * once and never rewritten.
 */
export class LogArchive extends Construct {
  /** The log bucket. */
  public readonly bucket: s3.Bucket;
  /** The key of the log bucket. */
  public readonly encryptionKey: kms.IKey;
  /** Where the log bucket's server access logs go. */
  public readonly accessLogsBucket: s3.IBucket;
  /** The Object Lock default retention of the bucket, if any. */
  public readonly objectLockRetention?: s3.ObjectLockRetention;
  /** Who is exempt from the bucket's delete and configuration denies. */
  public readonly protection: ProtectionPrincipals;

  private readonly decrypters: string[] = [];

  constructor(scope: Construct, id: string, props: LogArchiveProps = {}) {
    super(scope, id);
    useBucketPolicyForAccessLogs(this);
    this.objectLockRetention =
      props.objectLockRetention ??
      (FeatureFlags.of(this).isEnabled(LOG_ARCHIVE_OBJECT_LOCK_FLAG)
        ? DEFAULT_OBJECT_LOCK_RETENTION
        : undefined);
    const lifecycleRules = this.lifecycleRules(props);
    this.protection = resolveProtection(this, props.protection);
    this.decrypters.push(...(props.logReaders ?? []));

    this.encryptionKey =
      props.encryptionKey ?? createDataKey(this, 'Key', 'opentrail log archive (S3 SSE-KMS)');
    this.accessLogsBucket =
      props.accessLogsBucket ?? createAccessLogsBucket(this, 'AccessLogsBucket');

    this.bucket = createSecureBucket(this, 'Bucket', {
      encryptionKey: this.encryptionKey,
      accessLogs: { bucket: this.accessLogsBucket, prefix: 'log-archive/' },
      objectLockRetention: this.objectLockRetention,
      lifecycleRules,
    });
    if (!this.objectLockRetention) {
      Annotations.of(this).addWarningV2(
        'opentrail:logArchiveWithoutObjectLock',
        `The log bucket has no S3 Object Lock: a principal allowed s3:DeleteObjectVersion by the bucket policy (the break-glass principal) or the account root can still destroy log files. A construct cannot tell a new bucket from a deployed one, and enabling Object Lock replaces the bucket, so it is off unless asked for: for a NEW deployment set the cdk.json context flag "${LOG_ARCHIVE_OBJECT_LOCK_FLAG}": true (or objectLockRetention). See docs/security.md#object-lock.`,
      );
    }
    this.addBucketPolicy();
    this.addKeyPolicy();
  }

  /**
   * Lets the grantee deliver log files: create objects, and read existing ones (a retried
   * batch compares what is there before it trusts it). Covers the bucket key.
   */
  public grantDeliver(grantee: iam.IGrantable): void {
    this.bucket.grantPut(grantee);
    this.bucket.grantRead(grantee);
    this.allowDecrypt(grantee);
  }

  /** Lets the grantee read log files (validation, Athena, replay). Covers the bucket key. */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    this.allowDecrypt(grantee);
    return this.bucket.grantRead(grantee);
  }

  /**
   * Exempts a role of the deployment from the key policy's `kms:Decrypt` deny (its identity
   * policy must still allow it). For roles granted on the bucket by other means.
   */
  public allowDecrypt(grantee: iam.IGrantable): void {
    const principal = grantee.grantPrincipal;
    const arn =
      principal instanceof iam.Role ? principal.roleArn : (principal as Partial<iam.IRole>).roleArn;
    if (arn === undefined) {
      throw new OpentrailConfigError(
        this,
        'INVALID_APP_CONFIG',
        `allowDecrypt needs a role (it names it in the key policy); got a principal that is not a role. Pass the role, or its ARN in logReaders.`,
      );
    }
    if (!this.decrypters.includes(arn)) this.decrypters.push(arn);
  }

  /** The write-once, delete and configuration denies (see the class comment). */
  private addBucketPolicy(): void {
    const breakGlass = this.protection.breakGlassPrincipalArn
      ? [this.protection.breakGlassPrincipalArn]
      : [];
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'WriteOnceOnly',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects('*')],
        conditions: { Null: { 's3:if-none-match': 'true' } },
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'OnlyBreakGlassDeletesVersions',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: [...VERSION_DELETE_ACTIONS],
        resources: [this.bucket.arnForObjects('*')],
        ...(breakGlass.length > 0 ? { conditions: exceptPrincipals(breakGlass) } : {}),
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'OnlyDeployOrBreakGlassReconfigures',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: [...BUCKET_CONFIGURATION_ACTIONS],
        resources: [this.bucket.bucketArn],
        conditions: exceptPrincipals([this.protection.deployRoleArn, ...breakGlass]),
      }),
    );
  }

  /** `kms:Decrypt` only for the deployment's roles, the log readers, break-glass and deploy. */
  private addKeyPolicy(): void {
    const breakGlass = this.protection.breakGlassPrincipalArn;
    this.encryptionKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'OnlyLogReadersDecrypt',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['kms:Decrypt'],
        resources: ['*'],
        // Rendered at synth, when every reader is known. The deploy role is listed too: it may
        // rewrite this policy anyway (so exempting it gives nothing away), and the list is
        // never empty.
        conditions: {
          ArnNotEquals: {
            'aws:PrincipalArn': Lazy.list({
              produce: () => [
                ...this.decrypters,
                ...(breakGlass ? [breakGlass] : []),
                this.protection.deployRoleArn,
              ],
            }),
          },
          Bool: { 'aws:PrincipalIsAWSService': 'false' },
        },
      }),
      /* allowNoOp */ true,
    );
  }

  private lifecycleRules(props: LogArchiveProps): s3.LifecycleRule[] | undefined {
    const ia = props.transitionToInfrequentAccessAfter;
    const glacier = props.transitionToGlacierInstantRetrievalAfter;
    const expire = props.expireAfter;
    const noncurrent = props.noncurrentVersionExpiration;
    if (!ia && !glacier && !expire && !noncurrent) return undefined;

    const iaDays = ia && daysOf(ia);
    const glacierDays = glacier && daysOf(glacier);
    const expireDays = expire && daysOf(expire);
    if (iaDays !== undefined && iaDays < 30) {
      throw new OpentrailConfigError(
        this,
        'INVALID_LIFECYCLE',
        `transitionToInfrequentAccessAfter is ${iaDays} days; S3 moves objects to Standard-IA no sooner than 30 days after creation. Use Duration.days(30) or more.`,
      );
    }
    if (iaDays !== undefined && glacierDays !== undefined && glacierDays < iaDays + 30) {
      throw new OpentrailConfigError(
        this,
        'INVALID_LIFECYCLE',
        `transitionToGlacierInstantRetrievalAfter is ${glacierDays} days but objects reach Standard-IA at ${iaDays} days; S3 requires 30 days in Standard-IA first. Use Duration.days(${iaDays + 30}) or more.`,
      );
    }
    const lastTransition = Math.max(iaDays ?? 0, glacierDays ?? 0);
    if (expireDays !== undefined && expireDays <= lastTransition) {
      throw new OpentrailConfigError(
        this,
        'INVALID_LIFECYCLE',
        `expireAfter is ${expireDays} days, not after the last transition (${lastTransition} days). Expire later than the transitions, or drop them.`,
      );
    }
    if (expire) {
      Annotations.of(this).addWarningV2(
        'opentrail:logArchiveExpiry',
        `Log files expire after ${expire.toHumanString()}: digest validation of older periods will report them as not found.`,
      );
    }
    const lock = this.objectLockRetention?.duration;
    const lockSeconds = lock ? secondsOf(lock) : undefined;
    if (expireDays !== undefined && lockSeconds !== undefined && expireDays * 86400 < lockSeconds) {
      Annotations.of(this).addWarningV2(
        'opentrail:logArchiveExpiryUnderLock',
        `expireAfter (${expireDays} days) is shorter than the Object Lock retention; locked versions stay until their retention ends.`,
      );
    }

    const transitions: s3.Transition[] = [];
    if (ia)
      transitions.push({ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: ia });
    if (glacier)
      transitions.push({
        storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
        transitionAfter: glacier,
      });
    return [
      {
        id: 'LogFiles',
        enabled: true,
        ...(transitions.length > 0 ? { transitions } : {}),
        ...(expire ? { expiration: expire } : {}),
        ...(noncurrent ? { noncurrentVersionExpiration: noncurrent } : {}),
      },
    ];
  }
}

/** Whole days of a duration, or undefined while it is a token. */
function daysOf(duration: Duration): number | undefined {
  const seconds = secondsOf(duration);
  return seconds === undefined ? undefined : seconds / 86400;
}
