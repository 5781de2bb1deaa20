import { Annotations, type Duration } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { OpentrailConfigError } from './private/errors';
import {
  createAccessLogsBucket,
  createDataKey,
  createSecureBucket,
  useBucketPolicyForAccessLogs,
} from './private/secure-bucket';
import { secondsOf } from './private/validate';

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
   * @default - no Object Lock
   */
  readonly objectLockRetention?: s3.ObjectLockRetention;
}

/**
 * The S3 bucket that holds the CloudTrail-format log files (docs/formats.md#log-files), and later the
 * digest files (§4).
 *
 * Security defaults: SSE-KMS with a customer managed key (rotation on, S3 bucket key on),
 * versioning, all public access blocked, ACLs disabled, TLS-only bucket policy, S3 server
 * access logs to a separate access-log bucket (SSE-S3, because S3 log delivery cannot write
 * to SSE-KMS buckets; also TLS-only, versioned, blocked), bucket, key and access logs retained
 * when the stack is deleted. Lifecycle rules and Object Lock are off unless asked for.
 *
 * Objects: `[PREFIX/]AWSLogs/[ORG_ID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/…json.gz`, written
 * once and never rewritten (the packager writes with `If-None-Match: *`).
 */
export class LogArchive extends Construct {
  /** The log bucket. */
  public readonly bucket: s3.Bucket;
  /** The key of the log bucket. */
  public readonly encryptionKey: kms.IKey;
  /** Where the log bucket's server access logs go. */
  public readonly accessLogsBucket: s3.IBucket;

  constructor(scope: Construct, id: string, props: LogArchiveProps = {}) {
    super(scope, id);
    useBucketPolicyForAccessLogs(this);
    const lifecycleRules = this.lifecycleRules(props);

    this.encryptionKey =
      props.encryptionKey ?? createDataKey(this, 'Key', 'opentrail log archive (S3 SSE-KMS)');
    this.accessLogsBucket =
      props.accessLogsBucket ?? createAccessLogsBucket(this, 'AccessLogsBucket');

    this.bucket = createSecureBucket(this, 'Bucket', {
      encryptionKey: this.encryptionKey,
      accessLogs: { bucket: this.accessLogsBucket, prefix: 'log-archive/' },
      objectLockRetention: props.objectLockRetention,
      lifecycleRules,
    });
  }

  /**
   * Lets the grantee deliver log files: create objects, and read existing ones (a retried
   * batch compares what is there before it trusts it). Covers the bucket key.
   */
  public grantDeliver(grantee: iam.IGrantable): void {
    this.bucket.grantPut(grantee);
    this.bucket.grantRead(grantee);
  }

  /** Lets the grantee read log files (validation, Athena, replay). Covers the bucket key. */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.bucket.grantRead(grantee);
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
    const lock = props.objectLockRetention?.duration;
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
