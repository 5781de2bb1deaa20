import { Duration } from 'aws-cdk-lib';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { RecipientAllowList, TrailConfig } from '../lambda/core/config';
import type { OpentrailStackProps } from './opentrail-stack';
import { OpentrailConfigError } from './private/errors';

/**
 * The deployment configuration as `bin/app.ts` reads it from the cdk.json context key
 * `opentrail` (or `cdk synth -c opentrail='{…}'`). Plain JSON: numbers in the unit their name
 * says. Every key is optional; an unknown key is an error (a typo must not silently fall
 * back to a default).
 */
export interface OpentrailAppConfig {
  /** CloudFormation stack name. Default "Opentrail". */
  readonly stackName?: string;
  /** The trails (docs/formats.md#event-selectors). Default: the single default trail. */
  readonly trails?: readonly TrailConfig[];
  readonly maxTrails?: number;
  readonly dedupWindowSeconds?: number;
  readonly batchSize?: number;
  readonly maxBatchingWindowSeconds?: number;
  readonly retryAttempts?: number;
  readonly maxRecordAgeSeconds?: number;
  readonly streamRetentionHours?: number;
  /** Provisioned shards; absent: on-demand. */
  readonly streamShardCount?: number;
  readonly producerAccounts?: readonly string[];
  readonly producerOrganizationIds?: readonly string[];
  readonly recipientAllowList?: RecipientAllowList;
  readonly throttlingRateLimit?: number;
  readonly throttlingBurstLimit?: number;
  /** Read-side (`POST /`) throttles, apart from PutAuditEvents. Defaults 50 and 100. */
  readonly queryThrottlingRateLimit?: number;
  readonly queryThrottlingBurstLimit?: number;
  /** The only principal allowed version deletes and key deletion. Default: none. */
  readonly breakGlassPrincipalArn?: string;
  /** The role deploys run as. Default: the CDK bootstrap CloudFormation execution role. */
  readonly deployRoleArn?: string;
  /** Principal ARNs that read log files through SSE-KMS (validate-logs, Athena). */
  readonly logReaders?: readonly string[];
  readonly stageName?: string;
  readonly webAclArn?: string;
  readonly tracing?: boolean;
  readonly logTransitionToInfrequentAccessDays?: number;
  readonly logTransitionToGlacierInstantRetrievalDays?: number;
  readonly logExpireDays?: number;
  readonly logNoncurrentVersionExpireDays?: number;
  /** S3 Object Lock default retention on the log bucket. */
  readonly objectLock?: { readonly mode: 'GOVERNANCE' | 'COMPLIANCE'; readonly days: number };
  /** SNS topic every alarm notifies. */
  readonly alarmTopicArn?: string;
  /** Minute past the hour the digest signer runs (0–59). Default 5. */
  readonly digestScheduleMinute?: number;
  /** Name of the EventBridge bus events are published to. Default: generated. */
  readonly eventBusName?: string;
  /** Keep an archive of the bus for replay, for this many days. Default: no archive. */
  readonly eventArchiveRetentionDays?: number;
  /** Publish read-only events to EventBridge too. Default true. */
  readonly publishReadOnlyEvents?: boolean;
  /** The CIS-style CloudWatch metric filters and alarms on a trail's log group. Default false. */
  readonly securityAlarms?: boolean;
}

type Kind = 'string' | 'number' | 'boolean' | 'string[]' | 'object' | 'object[]';

const KEYS: Record<keyof OpentrailAppConfig, Kind> = {
  stackName: 'string',
  trails: 'object[]',
  maxTrails: 'number',
  dedupWindowSeconds: 'number',
  batchSize: 'number',
  maxBatchingWindowSeconds: 'number',
  retryAttempts: 'number',
  maxRecordAgeSeconds: 'number',
  streamRetentionHours: 'number',
  streamShardCount: 'number',
  producerAccounts: 'string[]',
  producerOrganizationIds: 'string[]',
  recipientAllowList: 'object',
  throttlingRateLimit: 'number',
  throttlingBurstLimit: 'number',
  queryThrottlingRateLimit: 'number',
  queryThrottlingBurstLimit: 'number',
  breakGlassPrincipalArn: 'string',
  deployRoleArn: 'string',
  logReaders: 'string[]',
  stageName: 'string',
  webAclArn: 'string',
  tracing: 'boolean',
  logTransitionToInfrequentAccessDays: 'number',
  logTransitionToGlacierInstantRetrievalDays: 'number',
  logExpireDays: 'number',
  logNoncurrentVersionExpireDays: 'number',
  objectLock: 'object',
  alarmTopicArn: 'string',
  digestScheduleMinute: 'number',
  eventBusName: 'string',
  eventArchiveRetentionDays: 'number',
  publishReadOnlyEvents: 'boolean',
  securityAlarms: 'boolean',
};

/** The keys {@link OpentrailAppConfig} accepts (for docs and tests). */
export const APP_CONFIG_KEYS: readonly string[] = Object.keys(KEYS);

function kindOf(value: unknown): Kind | 'other' {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number' && Number.isFinite(value)) return 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) return 'string[]';
    if (value.every((v) => typeof v === 'object' && v !== null && !Array.isArray(v)))
      return 'object[]';
    return 'other';
  }
  if (typeof value === 'object' && value !== null) return 'object';
  return 'other';
}

/** Checks the shape of a raw context value (types and known keys only; constructs check the rest). */
export function parseAppConfig(scope: Construct, raw: unknown): OpentrailAppConfig {
  if (raw === undefined || raw === null) return {};
  const fail = (message: string): never => {
    throw new OpentrailConfigError(scope, 'INVALID_APP_CONFIG', `context "opentrail": ${message}`);
  };
  if (typeof raw === 'string') {
    try {
      return parseAppConfig(scope, JSON.parse(raw));
    } catch (error) {
      if (error instanceof OpentrailConfigError) throw error;
      return fail(`is a string but not JSON (${(error as Error).message})`);
    }
  }
  if (kindOf(raw) !== 'object') return fail('must be a JSON object');
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const expected = KEYS[key as keyof OpentrailAppConfig];
    if (!expected) fail(`unknown key "${key}"; known keys: ${APP_CONFIG_KEYS.join(', ')}`);
    const actual = kindOf(value);
    // An empty array is both string[] and object[].
    const ok =
      actual === expected ||
      (Array.isArray(value) && value.length === 0 && expected.endsWith('[]'));
    if (!ok) fail(`"${key}" must be ${expected}, got ${JSON.stringify(value)}`);
  }
  const config = raw as OpentrailAppConfig;
  if (config.objectLock && !['GOVERNANCE', 'COMPLIANCE'].includes(config.objectLock.mode)) {
    fail(
      `"objectLock.mode" must be "GOVERNANCE" or "COMPLIANCE", got ${JSON.stringify(config.objectLock.mode)}`,
    );
  }
  return config;
}

const seconds = (n: number | undefined): Duration | undefined =>
  n === undefined ? undefined : Duration.seconds(n);
const days = (n: number | undefined): Duration | undefined =>
  n === undefined ? undefined : Duration.days(n);

/** An allow-list with no entries is the same as none: leave the variable out. */
function allowListOrUndefined(
  list: RecipientAllowList | undefined,
): RecipientAllowList | undefined {
  if (!list) return undefined;
  return (list.accounts?.length ?? 0) + (list.organizationIds?.length ?? 0) > 0 ? list : undefined;
}

/** Stack props from the app configuration (alarm actions: see {@link alarmActionsFromConfig}). */
export function stackPropsFromConfig(config: OpentrailAppConfig): OpentrailStackProps {
  const objectLockRetention = config.objectLock
    ? config.objectLock.mode === 'COMPLIANCE'
      ? s3.ObjectLockRetention.compliance(Duration.days(config.objectLock.days))
      : s3.ObjectLockRetention.governance(Duration.days(config.objectLock.days))
    : undefined;
  return {
    stackName: config.stackName,
    api: {
      producerAccounts: config.producerAccounts,
      producerOrganizationIds: config.producerOrganizationIds,
      recipientAllowList: allowListOrUndefined(config.recipientAllowList),
      throttlingRateLimit: config.throttlingRateLimit,
      throttlingBurstLimit: config.throttlingBurstLimit,
      queryThrottlingRateLimit: config.queryThrottlingRateLimit,
      queryThrottlingBurstLimit: config.queryThrottlingBurstLimit,
      stageName: config.stageName,
      webAclArn: config.webAclArn,
      tracing: config.tracing,
    },
    stream: {
      ...(config.streamShardCount !== undefined
        ? { streamMode: kinesis.StreamMode.PROVISIONED, shardCount: config.streamShardCount }
        : {}),
      retentionPeriod:
        config.streamRetentionHours === undefined
          ? undefined
          : Duration.hours(config.streamRetentionHours),
    },
    archive: {
      transitionToInfrequentAccessAfter: days(config.logTransitionToInfrequentAccessDays),
      transitionToGlacierInstantRetrievalAfter: days(
        config.logTransitionToGlacierInstantRetrievalDays,
      ),
      expireAfter: days(config.logExpireDays),
      noncurrentVersionExpiration: days(config.logNoncurrentVersionExpireDays),
      objectLockRetention,
      logReaders: config.logReaders,
    },
    protection: {
      breakGlassPrincipalArn: config.breakGlassPrincipalArn,
      deployRoleArn: config.deployRoleArn,
    },
    packager: {
      trails: config.trails,
      maxTrails: config.maxTrails,
      dedupWindow: seconds(config.dedupWindowSeconds),
      batchSize: config.batchSize,
      maxBatchingWindow: seconds(config.maxBatchingWindowSeconds),
      retryAttempts: config.retryAttempts,
      maxRecordAge: seconds(config.maxRecordAgeSeconds),
      tracing: config.tracing,
    },
    digests: { scheduleMinute: config.digestScheduleMinute, tracing: config.tracing },
    history: { tracing: config.tracing },
    fanout: {
      eventBusName: config.eventBusName,
      archiveRetention: days(config.eventArchiveRetentionDays),
      includeReadOnlyEvents: config.publishReadOnlyEvents,
      ...(config.securityAlarms ? { securityAlarms: {} } : {}),
      tracing: config.tracing,
    },
  };
}

/** Alarm actions for the configured topic (imported into `scope`, the stack). */
export function alarmActionsFromConfig(
  scope: Construct,
  config: OpentrailAppConfig,
): actions.SnsAction[] {
  if (!config.alarmTopicArn) return [];
  return [new actions.SnsAction(sns.Topic.fromTopicArn(scope, 'AlarmTopic', config.alarmTopicArn))];
}
