import type * as events from 'aws-cdk-lib/aws-events';
import type { Construct } from 'constructs';
import { toOpentrailPattern, type EventPattern } from '../../lambda/core/fanout';
import { OpentrailConfigError } from './errors';

/** EventBridge pattern keys → CDK EventPattern props. */
const PATTERN_KEYS: Readonly<Record<string, keyof events.EventPattern>> = {
  version: 'version',
  id: 'id',
  'detail-type': 'detailType',
  source: 'source',
  account: 'account',
  time: 'time',
  region: 'region',
  resources: 'resources',
  detail: 'detail',
};

/** A CloudTrail-style pattern as the CDK EventPattern of a rule on the opentrail bus. */
export function toCdkPattern(
  scope: Construct,
  cloudTrailPattern: EventPattern,
): events.EventPattern {
  let translated: EventPattern;
  try {
    translated = toOpentrailPattern(cloudTrailPattern);
  } catch (error) {
    throw new OpentrailConfigError(scope, 'INVALID_EVENT_PATTERN', (error as Error).message);
  }
  const pattern: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(translated)) {
    const prop = PATTERN_KEYS[key];
    if (!prop) {
      throw new OpentrailConfigError(
        scope,
        'INVALID_EVENT_PATTERN',
        `the event pattern has a top-level key "${key}"; EventBridge patterns use ${Object.keys(PATTERN_KEYS).join(', ')}.`,
      );
    }
    pattern[prop] = value;
  }
  return pattern;
}
