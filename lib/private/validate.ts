import { Duration, Token } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { OpentrailConfigError, type OpentrailConfigErrorCode } from './errors';

/**
 * Token-aware checks shared by the constructs. A value that is still a token at construction
 * (a CloudFormation parameter, an attribute of another resource) is not checked: the service
 * checks it at deploy time.
 */

/** Whole seconds of a duration, or undefined while it is a token. */
export function secondsOf(duration: Duration): number | undefined {
  if (duration.isUnresolved()) return undefined;
  return duration.toSeconds({ integral: false });
}

/** An integer within [min, max]; tokens pass. */
export function requireIntegerInRange(
  scope: IConstruct,
  code: OpentrailConfigErrorCode,
  name: string,
  value: number,
  min: number,
  max: number,
  fix: string,
): void {
  if (Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OpentrailConfigError(
      scope,
      code,
      `${name} is ${value}; it must be a whole number from ${min} to ${max}. ${fix}`,
    );
  }
}

/** A duration of whole seconds within [minSeconds, maxSeconds]; tokens pass. */
export function requireDurationInRange(
  scope: IConstruct,
  code: OpentrailConfigErrorCode,
  name: string,
  value: Duration,
  minSeconds: number,
  maxSeconds: number,
  fix: string,
): void {
  const seconds = secondsOf(value);
  if (seconds === undefined) return;
  if (!Number.isInteger(seconds) || seconds < minSeconds || seconds > maxSeconds) {
    throw new OpentrailConfigError(
      scope,
      code,
      `${name} is ${value.toHumanString()} (${seconds} s); it must be whole seconds from ${minSeconds} to ${maxSeconds} s. ${fix}`,
    );
  }
}

/**
 * A consumer's `maxRecordAge` must not pass the stream's retention: a record older than the
 * retention is gone from the stream before the mapping could give it up to its failed-records
 * bucket, so nothing could ever redrive it. Tokens and an unknown retention pass.
 */
export function requireRecordAgeWithinRetention(
  scope: IConstruct,
  maxRecordAge: Duration,
  streamRetention: Duration | undefined,
): void {
  const ageSeconds = secondsOf(maxRecordAge);
  const retentionSeconds = streamRetention && secondsOf(streamRetention);
  if (ageSeconds === undefined || retentionSeconds === undefined || ageSeconds <= retentionSeconds)
    return;
  throw new OpentrailConfigError(
    scope,
    'INVALID_RECORD_AGE',
    `maxRecordAge is ${maxRecordAge.toHumanString()} but the stream keeps records only ${streamRetention!.toHumanString()}: records would expire from the stream before they could be given up to the failed-records bucket. Lower maxRecordAge or raise the stream's retentionPeriod.`,
  );
}

const ACCOUNT_ID = /^\d{12}$/;
const ORGANIZATION_ID = /^o-[a-z0-9]{10,32}$/;

/** Every value must match `pattern` (tokens pass); else the error names the value and the rule. */
function requireAllMatch(
  scope: IConstruct,
  code: 'INVALID_ACCOUNT_ID' | 'INVALID_ORGANIZATION_ID',
  pattern: RegExp,
  rule: string,
  name: string,
  values: readonly string[],
): void {
  for (const value of values) {
    if (Token.isUnresolved(value) || pattern.test(value)) continue;
    throw new OpentrailConfigError(scope, code, `${name} holds "${value}"; ${rule}`);
  }
}

/** 12-digit AWS account IDs; tokens pass. */
export function requireAccountIds(
  scope: IConstruct,
  name: string,
  values: readonly string[],
): void {
  const rule = 'an AWS account ID is exactly 12 digits, e.g. "123456789012".';
  requireAllMatch(scope, 'INVALID_ACCOUNT_ID', ACCOUNT_ID, rule, name, values);
}

/** AWS Organization IDs (`o-` + 10–32 lowercase letters or digits); tokens pass. */
export function requireOrganizationIds(
  scope: IConstruct,
  name: string,
  values: readonly string[],
): void {
  const rule =
    'an Organization ID is "o-" then 10-32 lowercase letters or digits, e.g. "o-a1b2c3d4e5".';
  requireAllMatch(scope, 'INVALID_ORGANIZATION_ID', ORGANIZATION_ID, rule, name, values);
}
