import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * cdk-nag (v3) acknowledgments. Each is attached to the construct it is about, so it covers
 * that construct and its children only, and carries its reason into the validation report.
 */
export function acknowledgeNag(scope: IConstruct, ruleId: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: ruleId, reason });
}

/**
 * Acknowledges AwsSolutions-IAM5 findings on `scope` (a role: its policies are children),
 * one per wildcard action or resource, in cdk-nag's finding format:
 * `AwsSolutions-IAM5[Action::s3:GetObject*]`, `AwsSolutions-IAM5[Resource::<Bucket.Arn>/*]`.
 * Resources are given as the ARN strings (tokens) the grants used; they are rendered the way
 * cdk-nag renders them, so an acknowledgment names exactly one bucket, table or key.
 */
export function acknowledgeIamWildcards(
  scope: IConstruct,
  findings: { readonly actions?: readonly string[]; readonly resources?: readonly string[] },
  reason: string,
): void {
  const stack = Stack.of(scope);
  for (const action of findings.actions ?? []) {
    acknowledgeNag(scope, `AwsSolutions-IAM5[Action::${action}]`, reason);
  }
  for (const resource of findings.resources ?? []) {
    acknowledgeNag(
      scope,
      `AwsSolutions-IAM5[Resource::${flattenReference(stack.resolve(resource))}]`,
      reason,
    );
  }
}

/**
 * A CloudFormation reference as one flat string, as cdk-nag writes it in finding IDs
 * (`{"Fn::GetAtt":["X","Arn"]}` → `<X.Arn>`, `Fn::Join` concatenated, `${…}` → `<…>`).
 */
export function flattenReference(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof node === 'object' && node !== null) {
    const o = node as Record<string, unknown>;
    if (o['Fn::Join']) {
      const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
      return items.map(flattenReference).join(delimiter);
    }
    if (o['Fn::Sub']) return flattenReference(o['Fn::Sub']);
    if (o['Fn::GetAtt']) {
      const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
      return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
    }
    if (o['Fn::ImportValue']) return flattenReference(o['Fn::ImportValue']);
    if (o.Ref) return `<${flattenReference(o.Ref)}>`;
  }
  return JSON.stringify(node);
}
