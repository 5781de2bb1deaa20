import { Duration } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OpentrailStack, type OpentrailStackProps } from '../../lib';
import { testApp } from './support/app';

/** Every AwsSolutions finding (errors AND warnings) that no acknowledgment covers, as "rule at path". */
function unacknowledgedFindings(props: OpentrailStackProps): string[] {
  const app = testApp();
  const stack = new OpentrailStack(app, 'Opentrail', props);
  const result = new AwsSolutionsChecks(app).validateScope(stack);
  return result.violations.flatMap((v) =>
    v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${r.constructPath ?? '?'}`),
  );
}

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged in the default stack', () => {
    expect(unacknowledgedFindings({})).toEqual([]);
  });

  it('finds nothing unacknowledged with every option on', () => {
    expect(
      unacknowledgedFindings({
        api: {
          producerAccounts: ['111122223333'],
          producerOrganizationIds: ['o-a1b2c3d4e5'],
          recipientAllowList: { accounts: ['111122223333'] },
          webAclArn: 'arn:aws:wafv2:us-east-1:123456789012:regional/webacl/opentrail/0000',
          tracing: true,
        },
        archive: {
          objectLockRetention: s3.ObjectLockRetention.governance(Duration.days(365)),
          transitionToInfrequentAccessAfter: Duration.days(30),
        },
        packager: { tracing: true, batchSize: 100 },
      }),
    ).toEqual([]);
  });

  it('reports a wildcard grant that nobody acknowledged (the check is live)', () => {
    const app = testApp();
    const stack = new OpentrailStack(app, 'Opentrail');
    stack.auditTrail.archive.bucket.grantDelete(stack.auditTrail.packager.handler);
    const result = new AwsSolutionsChecks(app).validateScope(stack);
    expect(result.violations.map((v) => v.ruleName)).toContain(
      'AwsSolutions-IAM5[Action::s3:DeleteObject*]',
    );
  });
});
