import { RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { TrailConfig } from '../../lambda/core/config';
import { OpentrailConfigError } from './errors';
import { allowLogsToEncryptWith } from './log-group-encryption';

// Where the fan-out delivers per trail besides EventBridge: notice topics and log groups.

const RETENTION_DAYS = new Set<number>(
  Object.values(logs.RetentionDays).filter((v): v is number => typeof v === 'number'),
);

/** Refuses a trail whose `cloudWatchLogs.retentionDays` CloudWatch Logs does not offer. */
export function requireLogGroupRetentions(scope: Construct, trails: readonly TrailConfig[]): void {
  for (const trail of trails) {
    const days = trail.cloudWatchLogs?.retentionDays;
    if (days !== undefined && !Token.isUnresolved(days) && !RETENTION_DAYS.has(days)) {
      throw new OpentrailConfigError(
        scope,
        'INVALID_TRAILS',
        `trail "${trail.name}": cloudWatchLogs.retentionDays is ${days}; CloudWatch Logs accepts ${[...RETENTION_DAYS].sort((a, b) => a - b).join(', ')}.`,
      );
    }
  }
}

/**
 * One SNS delivery-notice topic per trail with `deliveryNotices` (id `NoticeTopic-<trail>` in
 * `scope`): the trail's own topic when it names one, else a new one encrypted with `key`, TLS
 * only (docs/formats.md#delivery-notices).
 */
export function createNoticeTopics(
  scope: Construct,
  trails: readonly TrailConfig[],
  key: kms.IKey,
): Record<string, sns.ITopic> {
  const topics: Record<string, sns.ITopic> = {};
  for (const trail of trails) {
    if (!trail.deliveryNotices) continue;
    topics[trail.name] = trail.deliveryNotices.topicArn
      ? sns.Topic.fromTopicArn(scope, `NoticeTopic-${trail.name}`, trail.deliveryNotices.topicArn)
      : new sns.Topic(scope, `NoticeTopic-${trail.name}`, {
          displayName: `opentrail ${trail.name} log-file deliveries`,
          masterKey: key,
          enforceSSL: true,
        });
  }
  return topics;
}

/**
 * One CloudWatch Logs group per trail with `cloudWatchLogs` (id `LogGroup-<trail>` in `scope`):
 * its retention (default 365 days), encrypted with the trail's key or `key` (whose policy then
 * lets CloudWatch Logs of this account use it), retained.
 */
export function createTrailLogGroups(
  scope: Construct,
  trails: readonly TrailConfig[],
  key: kms.IKey,
): Record<string, logs.LogGroup> {
  const groups: Record<string, logs.LogGroup> = {};
  const stack = Stack.of(scope);
  let keyOpenedToLogs = false;
  for (const trail of trails) {
    const config = trail.cloudWatchLogs;
    if (!config) continue;
    const groupKey = config.kmsKeyArn
      ? kms.Key.fromKeyArn(scope, `LogGroupKey-${trail.name}`, config.kmsKeyArn)
      : key;
    if (!config.kmsKeyArn && !keyOpenedToLogs) {
      // CloudWatch Logs encrypts with the key itself, for this account's log groups only.
      allowLogsToEncryptWith(key, stack);
      keyOpenedToLogs = true;
    }
    groups[trail.name] = new logs.LogGroup(scope, `LogGroup-${trail.name}`, {
      ...(config.logGroupName ? { logGroupName: config.logGroupName } : {}),
      retention: (config.retentionDays ?? 365) as logs.RetentionDays,
      encryptionKey: groupKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
  return groups;
}
