import { AspectPriority, Aspects, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct, IConstruct } from 'constructs';

/**
 * Lets CloudWatch Logs of the stack's account and region use `key` for log groups only (the
 * encryption context names a log group of this account).
 */
export function allowLogsToEncryptWith(key: kms.IKey, stack: Stack, sid?: string): void {
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      ...(sid ? { sid } : {}),
      principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
      actions: [
        'kms:Encrypt*',
        'kms:Decrypt*',
        'kms:ReEncrypt*',
        'kms:GenerateDataKey*',
        'kms:Describe*',
      ],
      resources: ['*'],
      conditions: {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': `arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:*`,
        },
      },
    }),
  );
}

/**
 * Encrypts every CloudWatch Logs group created under `scope` that has no key of its own (the
 * functions' log groups, the API access logs) with `key`, and lets CloudWatch Logs of this
 * account and region use the key for log groups only. Setting a key on an existing group is an
 * update (AssociateKmsKey), never a replacement.
 */
export function encryptLogGroupsUnder(scope: Construct, key: kms.IKey): void {
  allowLogsToEncryptWith(key, Stack.of(scope), 'CloudWatchLogsEncryptsOpentrailLogGroups');
  Aspects.of(scope).add(
    {
      visit(node: IConstruct): void {
        if (node instanceof logs.CfnLogGroup && node.kmsKeyId === undefined) {
          node.kmsKeyId = key.keyArn;
        }
      },
    },
    { priority: AspectPriority.MUTATING },
  );
}
