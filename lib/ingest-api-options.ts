/** The props of {@link IngestApi} (lib/ingest-api.ts), kept apart so that file stays one construct. */
import type { Duration } from 'aws-cdk-lib';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { ProducerRule, RecipientAllowList } from '../lambda/core/config';

/** Everything about the ingest API that a user chooses; {@link IngestApiProps} adds the wiring. */
export interface IngestApiOptions {
  /**
   * Steady-state requests per second the stage accepts (each request carries up to 100 events).
   * @default 100
   */
  readonly throttlingRateLimit?: number;
  /**
   * Burst of requests the stage accepts above the rate.
   * @default 200
   */
  readonly throttlingBurstLimit?: number;
  /**
   * Steady-state requests per second of the read side (`POST /`: LookupEvents and the other
   * query operations), throttled apart from PutAuditEvents so readers cannot use up the
   * producers' budget.
   * @default 50
   */
  readonly queryThrottlingRateLimit?: number;
  /**
   * Burst of read-side requests above `queryThrottlingRateLimit`.
   * @default 100
   */
  readonly queryThrottlingBurstLimit?: number;
  /**
   * Other AWS accounts whose principals may call `POST /PutAuditEvents` (and nothing else).
   * They still need `execute-api:Invoke` on it in their own IAM policies.
   * @default - only principals of this account, by their IAM policies
   */
  readonly producerAccounts?: readonly string[];
  /**
   * AWS Organizations whose member accounts' principals may call `POST /PutAuditEvents` (and
   * nothing else), by `aws:PrincipalOrgID`.
   * @default - none
   */
  readonly producerOrganizationIds?: readonly string[];
  /**
   * Who may write events whose `recipientAccountId` is another account than their own
   * (docs/formats.md#per-entry-errors, InvalidRecipient).
   * @default - callers may write events for their own account only
   */
  readonly recipientAllowList?: RecipientAllowList;
  /**
   * What each producer may write (docs/security.md#provenance): `eventSource` patterns, the
   * accounts it may write for besides its own, and whether it may replay events older than
   * `maxEventAge`. Rules are matched to the verified caller by account, Organization or
   * principal ARN pattern.
   * @default - no rules: any eventSource, own account only, no replay
   */
  readonly producerRules?: readonly ProducerRule[];
  /**
   * Oldest `eventTime` accepted, as an age at receipt; an older event is refused per entry
   * (`InvalidData` naming eventTime and this limit) unless a producer rule allows the caller
   * to replay. `Duration.seconds(0)` turns the limit off.
   * @default Duration.days(7)
   */
  readonly maxEventAge?: Duration;
  /**
   * Stage name (the first path segment of the URL).
   * @default 'v1'
   */
  readonly stageName?: string;
  /**
   * Retention of the access log group.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly accessLogRetention?: logs.RetentionDays;
  /**
   * ARN of a regional AWS WAFv2 web ACL to associate with the stage.
   * @default - no web ACL (IAM auth and stage throttling only)
   */
  readonly webAclArn?: string;
  /**
   * Active X-Ray tracing on the stage and the function.
   * @default false
   */
  readonly tracing?: boolean;
  /**
   * Retention of the function's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

export interface IngestApiProps extends IngestApiOptions {
  /** The stream accepted events are put to. */
  readonly stream: kinesis.IStream;
}
