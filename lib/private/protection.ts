import {
  Annotations,
  AspectPriority,
  Aspects,
  DefaultStackSynthesizer,
  Fn,
  Stack,
} from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct, IConstruct } from 'constructs';

/**
 * Who may still do what opentrail's resource policies deny everybody else
 * (docs/security.md#who-may-still-delete-or-reconfigure).
 */
export interface ProtectionOptions {
  /**
   * ARN of the break-glass principal (an IAM role), the only one allowed to delete object
   * versions of the log bucket and to schedule deletion of (or disable) opentrail's keys. It
   * may also change their configuration.
   * @default - nobody: deletes are denied to every principal until a deploy names one
   */
  readonly breakGlassPrincipalArn?: string;
  /**
   * ARN of the role CloudFormation deploys with. Configuration changes (bucket policy,
   * lifecycle, versioning, key policy) are denied to everyone else, so a deploy or rollback
   * never locks itself out, and the key policies pass KMS's lockout check.
   * @default - the CDK bootstrap CloudFormation execution role of the stack's synthesizer
   */
  readonly deployRoleArn?: string;
}

/** The resolved principals: break-glass (optional) and deploy. */
export interface ProtectionPrincipals {
  readonly breakGlassPrincipalArn?: string;
  readonly deployRoleArn: string;
}

/** The deploy role: the prop, or the bootstrap CloudFormation execution role. */
export function resolveProtection(
  scope: Construct,
  options: ProtectionOptions = {},
): ProtectionPrincipals {
  if (options.deployRoleArn !== undefined) {
    return {
      breakGlassPrincipalArn: options.breakGlassPrincipalArn,
      deployRoleArn: options.deployRoleArn,
    };
  }
  const stack = Stack.of(scope);
  const synthesizer = stack.synthesizer;
  const template =
    synthesizer instanceof DefaultStackSynthesizer
      ? synthesizer.cloudFormationExecutionRoleArn
      : undefined;
  if (template === undefined) {
    Annotations.of(scope).addWarningV2(
      'opentrail:deployRoleUnknown',
      'The stack synthesizer is not the DefaultStackSynthesizer, so the deploy role is unknown; the configuration denies exempt the default bootstrap execution role (cdk-hnb659fds-cfn-exec-role-…). Set deployRoleArn to the role your deployments use, or a deploy will be refused.',
    );
  }
  return {
    breakGlassPrincipalArn: options.breakGlassPrincipalArn,
    deployRoleArn: Fn.sub(
      template ??
        'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/cdk-hnb659fds-cfn-exec-role-${AWS::AccountId}-${AWS::Region}',
    ),
  };
}

/**
 * A condition that holds for every caller except `arns` and AWS services acting as
 * themselves (CloudWatch Logs, S3 log delivery): `aws:PrincipalArn` is absent for those,
 * and a negated operator on an absent key would match.
 */
export function exceptPrincipals(arns: readonly string[]): Record<string, unknown> {
  return {
    ArnNotEquals: { 'aws:PrincipalArn': [...arns] },
    Bool: { 'aws:PrincipalIsAWSService': 'false' },
  };
}

/** Deletion-type actions on a key: only the break-glass principal. */
export const KEY_DELETION_ACTIONS = [
  'kms:ScheduleKeyDeletion',
  'kms:DisableKey',
  'kms:DeleteImportedKeyMaterial',
] as const;

/** Configuration changes of a key: only break-glass and deploy. */
export const KEY_CONFIGURATION_ACTIONS = [
  'kms:PutKeyPolicy',
  'kms:DisableKeyRotation',
  'kms:CancelKeyDeletion',
] as const;

/**
 * Adds the deletion and configuration denies to a key opentrail created. The account root
 * keeps its `kms:*` allow (IAM policies still decide everything these denies leave), and
 * the deploy role keeps `kms:PutKeyPolicy`, which is what KMS's lockout check asks for.
 */
export function protectKey(key: kms.Key, principals: ProtectionPrincipals): void {
  const breakGlass = principals.breakGlassPrincipalArn ? [principals.breakGlassPrincipalArn] : [];
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'OnlyBreakGlassDeletesTheKey',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: [...KEY_DELETION_ACTIONS],
      resources: ['*'],
      ...(breakGlass.length > 0 ? { conditions: exceptPrincipals(breakGlass) } : {}),
    }),
  );
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'OnlyDeployOrBreakGlassReconfigures',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: [...KEY_CONFIGURATION_ACTIONS],
      resources: ['*'],
      conditions: exceptPrincipals([principals.deployRoleArn, ...breakGlass]),
    }),
  );
}

/**
 * Applies {@link protectKey} to every key created under `scope`, including keys its parts
 * create after this call (an aspect, run once per key at synth).
 */
export function protectKeysUnder(scope: Construct, principals: ProtectionPrincipals): void {
  const done = new Set<kms.Key>();
  Aspects.of(scope).add(
    {
      visit(node: IConstruct): void {
        if (node instanceof kms.Key && !done.has(node)) {
          done.add(node);
          protectKey(node, principals);
        }
      },
    },
    { priority: AspectPriority.MUTATING },
  );
}
