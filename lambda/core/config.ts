/**
 * Configuration shared by the constructs (which write it into Lambda environments), the
 * handlers (which read it) and the embedded runtime (which builds it from flags).
 */

/** A basic event selector, as in CloudTrail's PutEventSelectors (FORMATS.md §8). */
export interface BasicEventSelector {
  readonly ReadWriteType?: 'All' | 'ReadOnly' | 'WriteOnly';
  readonly IncludeManagementEvents?: boolean;
  readonly ExcludeManagementEventSources?: readonly string[];
  readonly DataResources?: readonly { readonly Type: string; readonly Values: readonly string[] }[];
}

/** One field condition of an advanced event selector (FORMATS.md §8). */
export interface AdvancedFieldSelector {
  readonly Field: string;
  readonly Equals?: readonly string[];
  readonly StartsWith?: readonly string[];
  readonly EndsWith?: readonly string[];
  readonly NotEquals?: readonly string[];
  readonly NotStartsWith?: readonly string[];
  readonly NotEndsWith?: readonly string[];
}

/** An advanced event selector: kept when every field selector matches. */
export interface AdvancedEventSelector {
  readonly Name?: string;
  readonly FieldSelectors: readonly AdvancedFieldSelector[];
}

/** What the packager needs to know of one trail. */
export interface TrailConfig {
  /** Trail name: 3–128 characters of `[A-Za-z0-9._-]`, starting and ending with a letter or digit. */
  readonly name: string;
  /** Key prefix inside the log bucket, without leading or trailing slash. */
  readonly prefix?: string;
  /** Adds the ORG_ID folder to every key (organization trail). */
  readonly organizationId?: string;
  readonly eventSelectors?: readonly BasicEventSelector[];
  readonly advancedEventSelectors?: readonly AdvancedEventSelector[];
  /** Whether the digest signer covers this trail. */
  readonly logFileValidation?: boolean;
}

/**
 * The default trail: keeps every event of every category, so that a replay shows everything
 * it sent (FORMATS.md §8).
 */
export const DEFAULT_TRAIL: TrailConfig = {
  name: 'opentrail',
  advancedEventSelectors: [
    // eventSource is required and never empty, so this matches every event of every category.
    { Name: 'Every event', FieldSelectors: [{ Field: 'eventSource', NotEquals: [''] }] },
  ],
  logFileValidation: true,
};

/** Allow-list for the InvalidRecipient rule (FORMATS.md §2). */
export interface RecipientAllowList {
  /** Caller accounts that may write events whose recipientAccountId is another account. */
  readonly accounts?: readonly string[];
  /** Organizations (o-…) whose member accounts may write for other accounts. */
  readonly organizationIds?: readonly string[];
}

/** Names of the Lambda environment variables: the contract between `lib/` and `lambda/handlers`. */
export const ENV = {
  /** Kinesis stream name (ingest). */
  STREAM_NAME: 'OPENTRAIL_STREAM_NAME',
  /** The deployment's account, the default recipientAccountId (ingest). */
  ACCOUNT_ID: 'OPENTRAIL_ACCOUNT_ID',
  /** JSON RecipientAllowList; absent: callers may write for their own account only (ingest). */
  RECIPIENT_ALLOW_LIST: 'OPENTRAIL_RECIPIENT_ALLOW_LIST',
  /** "true" turns the InvalidRecipient check off (the embedded runtime has no caller identity). */
  RECIPIENT_CHECK_DISABLED: 'OPENTRAIL_RECIPIENT_CHECK_DISABLED',
  /** JSON TrailConfig[] (packager). */
  TRAILS: 'OPENTRAIL_TRAILS',
  /** Log bucket name (packager). */
  LOG_BUCKET: 'OPENTRAIL_LOG_BUCKET',
  /** Delivery manifest table name (packager, digest signer). */
  MANIFEST_TABLE: 'OPENTRAIL_MANIFEST_TABLE',
  /** Dedup table name (packager). */
  DEDUP_TABLE: 'OPENTRAIL_DEDUP_TABLE',
  /** Dedup window in seconds (packager). */
  DEDUP_WINDOW_SECONDS: 'OPENTRAIL_DEDUP_WINDOW_SECONDS',
} as const;

/** Default dedup window: 24 hours. */
export const DEFAULT_DEDUP_WINDOW_SECONDS = 24 * 3600;

/** Default number of trails a deployment may define. */
export const DEFAULT_MAX_TRAILS = 5;
