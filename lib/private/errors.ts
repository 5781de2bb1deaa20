import type { IConstruct } from 'constructs';

/** Codes of {@link OpentrailConfigError}: one per rule a construct enforces at synth time. */
export type OpentrailConfigErrorCode =
  | 'INVALID_TRAILS'
  | 'ENVIRONMENT_TOO_LARGE'
  | 'INVALID_BATCH_SIZE'
  | 'INVALID_BATCHING_WINDOW'
  | 'INVALID_RETRY_ATTEMPTS'
  | 'INVALID_RECORD_AGE'
  | 'INVALID_DEDUP_WINDOW'
  | 'INVALID_STREAM_CAPACITY'
  | 'INVALID_RETENTION'
  | 'INVALID_THROTTLING'
  | 'INVALID_ACCOUNT_ID'
  | 'INVALID_ORGANIZATION_ID'
  | 'INVALID_PRODUCER_RULES'
  | 'INVALID_LIFECYCLE'
  | 'INVALID_FUNCTION_SETTINGS'
  | 'INVALID_APP_CONFIG'
  | 'INVALID_EVENT_PATTERN'
  | 'INVALID_DIGEST_KEYS'
  | 'INVALID_DIGEST_SCHEDULE'
  | 'DUPLICATE_ROUTE'
  | 'NO_QUERY_ROUTE'
  | 'HANDLER_BUNDLE_MISSING'
  | 'INVALID_INSIGHT_TYPES';

/**
 * The one error the constructs throw for a configuration they refuse. The message names the
 * construct path, the value and the fix; `code` lets callers and tests tell rules apart.
 */
export class OpentrailConfigError extends Error {
  /** Which rule was broken. */
  public readonly code: OpentrailConfigErrorCode;
  /** Path of the construct that refused the configuration (`Stack/AuditTrail/Packager`). */
  public readonly constructPath: string;

  constructor(scope: IConstruct, code: OpentrailConfigErrorCode, message: string) {
    super(`${scope.node.path}: ${message} [${code}]`);
    this.name = 'OpentrailConfigError';
    this.code = code;
    this.constructPath = scope.node.path;
  }
}
