/** The props of {@link DigestSigner} (lib/digest-signer.ts), kept apart so that file stays one construct. */
import type { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { TrailConfig } from '../lambda/core/config';

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
