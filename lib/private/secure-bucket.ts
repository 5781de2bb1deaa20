import { RemovalPolicy } from 'aws-cdk-lib';
import { S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY } from 'aws-cdk-lib/cx-api';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { acknowledgeNag } from './nag';

/** A customer managed symmetric key for data at rest: rotated yearly, retained. */
export function createDataKey(scope: Construct, id: string, description: string): kms.Key {
  return new kms.Key(scope, id, {
    description,
    enableKeyRotation: true,
    removalPolicy: RemovalPolicy.RETAIN,
  });
}

export interface SecureBucketOptions {
  /** SSE-KMS with this key (bucket key on); absent: SSE-S3 (for access-log targets only). */
  readonly encryptionKey?: kms.IKey;
  /** Where S3 server access logs go, and under which prefix; absent: not logged. */
  readonly accessLogs?: { readonly bucket: s3.IBucket; readonly prefix: string };
  readonly objectLockRetention?: s3.ObjectLockRetention;
  readonly lifecycleRules?: s3.LifecycleRule[];
  readonly metrics?: s3.BucketMetrics[];
}

/**
 * The one way opentrail makes a bucket: versioned, all public access blocked, ACLs off
 * (bucket owner enforced), TLS 1.2+ only, encrypted, retained with the stack's deletion.
 */
export function createSecureBucket(
  scope: Construct,
  id: string,
  options: SecureBucketOptions,
): s3.Bucket {
  return new s3.Bucket(scope, id, {
    versioned: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    ...(options.encryptionKey
      ? {
          encryption: s3.BucketEncryption.KMS,
          encryptionKey: options.encryptionKey,
          bucketKeyEnabled: true,
        }
      : { encryption: s3.BucketEncryption.S3_MANAGED }),
    ...(options.accessLogs
      ? {
          serverAccessLogsBucket: options.accessLogs.bucket,
          serverAccessLogsPrefix: options.accessLogs.prefix,
          targetObjectKeyFormat: s3.TargetObjectKeyFormat.partitionedPrefix(
            s3.PartitionDateSource.EVENT_TIME,
          ),
        }
      : {}),
    ...(options.objectLockRetention
      ? { objectLockEnabled: true, objectLockDefaultRetention: options.objectLockRetention }
      : {}),
    lifecycleRules: options.lifecycleRules,
    metrics: options.metrics,
    removalPolicy: RemovalPolicy.RETAIN,
  });
}

/**
 * Makes S3 grant log delivery to the access-log buckets created under `scope` with a bucket
 * policy, whatever the app's feature flags. Without the flag (an app that does not set
 * `@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy`) the L2 falls back to the
 * LogDeliveryWrite ACL, which the buckets refuse (ACLs are off: bucket owner enforced) and synth
 * fails. Call it first in the constructor, before `scope` has children.
 */
export function useBucketPolicyForAccessLogs(scope: Construct): void {
  scope.node.setContext(S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, true);
}

/**
 * A bucket that receives S3 server access logs. SSE-S3, because S3 log delivery cannot write
 * to SSE-KMS buckets; otherwise as secure as the others.
 */
export function createAccessLogsBucket(scope: Construct, id: string): s3.Bucket {
  const bucket = createSecureBucket(scope, id, {});
  acknowledgeNag(
    bucket,
    'AwsSolutions-S1',
    'This is the server access log target; logging it into itself would log its own log deliveries without end.',
  );
  return bucket;
}
