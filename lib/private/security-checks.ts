import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';

/**
 * The classic CloudTrail security checks (CIS AWS Foundations Benchmark, "Monitoring"), as
 * CloudWatch Logs metric-filter patterns over opentrail's log events (the records themselves).
 */
export interface SecurityCheck {
  /** Construct id part and metric name. */
  readonly id: string;
  readonly description: string;
  readonly pattern: string;
}

const anyEventName = (names: readonly string[]): string =>
  names.map((name) => `($.eventName = ${name})`).join(' || ');

export const SECURITY_CHECKS: readonly SecurityCheck[] = [
  {
    id: 'UnauthorizedApiCalls',
    description: 'API calls refused as unauthorized or access denied',
    pattern:
      '{ (($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")) && ($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket") }',
  },
  {
    id: 'ConsoleSignInWithoutMfa',
    description: 'successful console sign-ins of IAM users without MFA',
    pattern:
      '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }',
  },
  {
    id: 'RootAccountUsage',
    description: 'the root user acting, other than through an AWS service',
    pattern:
      '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }',
  },
  {
    id: 'IamPolicyChanges',
    description: 'IAM policies created, changed, attached or detached',
    pattern: `{ ${anyEventName([
      'DeleteGroupPolicy',
      'DeleteRolePolicy',
      'DeleteUserPolicy',
      'PutGroupPolicy',
      'PutRolePolicy',
      'PutUserPolicy',
      'CreatePolicy',
      'DeletePolicy',
      'CreatePolicyVersion',
      'DeletePolicyVersion',
      'SetDefaultPolicyVersion',
      'AttachRolePolicy',
      'DetachRolePolicy',
      'AttachUserPolicy',
      'DetachUserPolicy',
      'AttachGroupPolicy',
      'DetachGroupPolicy',
    ])} }`,
  },
  {
    id: 'TrailConfigurationChanges',
    description: 'trails created, changed, stopped or deleted, or their selectors changed',
    pattern: `{ ${anyEventName([
      'CreateTrail',
      'UpdateTrail',
      'DeleteTrail',
      'StartLogging',
      'StopLogging',
      'PutEventSelectors',
      'PutInsightSelectors',
    ])} }`,
  },
  {
    id: 'KmsKeyDisabledOrScheduledForDeletion',
    description: 'customer managed KMS keys disabled or scheduled for deletion',
    pattern:
      '{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || ($.eventName = ScheduleKeyDeletion)) }',
  },
  {
    id: 'SecurityGroupChanges',
    description: 'security groups created, deleted or their rules changed',
    pattern: `{ ${anyEventName([
      'AuthorizeSecurityGroupIngress',
      'AuthorizeSecurityGroupEgress',
      'RevokeSecurityGroupIngress',
      'RevokeSecurityGroupEgress',
      'CreateSecurityGroup',
      'DeleteSecurityGroup',
    ])} }`,
  },
  {
    id: 'NetworkAclChanges',
    description: 'network ACLs created, deleted or their entries or associations changed',
    pattern: `{ ${anyEventName([
      'CreateNetworkAcl',
      'CreateNetworkAclEntry',
      'DeleteNetworkAcl',
      'DeleteNetworkAclEntry',
      'ReplaceNetworkAclEntry',
      'ReplaceNetworkAclAssociation',
    ])} }`,
  },
];

/**
 * One metric filter (value 1 per matching log event) and one alarm (≥ 1 in 5 minutes, missing
 * data not breaching, action: the topic) per check, on the log group; ids `<check>Filter`,
 * `<check>Alarm`.
 */
export function createSecurityAlarms(
  scope: Construct,
  options: {
    readonly logGroup: logs.ILogGroup;
    readonly trailName: string;
    readonly topic: sns.ITopic;
    readonly metricNamespace: string;
  },
): Record<string, cloudwatch.Alarm> {
  const alarms: Record<string, cloudwatch.Alarm> = {};
  for (const check of SECURITY_CHECKS) {
    const filter = new logs.MetricFilter(scope, `${check.id}Filter`, {
      logGroup: options.logGroup,
      filterPattern: logs.FilterPattern.literal(check.pattern),
      metricNamespace: options.metricNamespace,
      metricName: check.id,
      metricValue: '1',
    });
    const alarm = filter
      .metric({ statistic: 'Sum', period: Duration.minutes(5) })
      .createAlarm(scope, `${check.id}Alarm`, {
        alarmDescription: `opentrail (${options.trailName}): ${check.description}`,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    alarm.addAlarmAction(new cwActions.SnsAction(options.topic));
    alarms[check.id] = alarm;
  }
  return alarms;
}

/**
 * A topic for alarms: KMS-encrypted, TLS only; CloudWatch alarms of this account (and only
 * they, besides the account's own principals) may publish, and use the key to do so.
 */
export function createAlarmTopic(
  scope: Construct,
  id: string,
  key: kms.IKey,
  displayName = 'opentrail security alarms',
): sns.Topic {
  const stack = Stack.of(scope);
  const topic = new sns.Topic(scope, id, {
    displayName,
    masterKey: key,
    enforceSSL: true,
  });
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': stack.account },
        ArnLike: {
          'aws:SourceArn': `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:*`,
        },
      },
    }),
  );
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }),
  );
  return topic;
}
