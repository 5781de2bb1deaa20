import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { ENV } from '../../lambda/core/config';
import { AuditTrail } from '../../lib';
import { testStack } from './support/app';

type Statement = { Action: string | string[]; Resource: unknown };

function build(digests?: { scheduleMinute?: number; timeout?: Duration }): {
  template: Template;
  trail: AuditTrail;
} {
  const stack = testStack();
  const trail = new AuditTrail(stack, 'Trail', {
    packager: { trails: [{ name: 'opentrail', logFileValidation: true }] },
    ...(digests ? { digests } : {}),
  });
  return { template: Template.fromStack(stack), trail };
}

function queryStatements(template: Template): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^TrailQueryRole') }] },
  });
  return Object.values(policies).flatMap(
    (p) =>
      (p as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties
        .PolicyDocument.Statement,
  );
}

describe('GetTrailStatus on the query function', () => {
  it('gives the query function the trails, tables, period and grace (schedule minute + 50 min retries + timeout)', () => {
    const { template } = build();

    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^opentrail query'),
      Environment: {
        Variables: Match.objectLike({
          [ENV.CHAIN_TABLE]: Match.anyValue(),
          [ENV.MANIFEST_TABLE]: Match.anyValue(),
          [ENV.TRAILS]: Match.stringLikeRegexp('"logFileValidation":true'),
          [ENV.DIGEST_PERIOD_SECONDS]: '3600',
          [ENV.DIGEST_GRACE_SECONDS]: '3600',
        }),
      },
    });
  });

  it('states a longer grace for a later schedule minute and a longer signer timeout', () => {
    const { template, trail } = build({ scheduleMinute: 30, timeout: Duration.minutes(10) });

    expect(trail.digests?.digestGrace.toSeconds()).toBe(30 * 60 + 50 * 60 + 10 * 60);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^opentrail query'),
      Environment: {
        Variables: Match.objectLike({ [ENV.DIGEST_GRACE_SECONDS]: String(90 * 60) }),
      },
    });
  });

  it('lets the query function only read the chain table and query the manifest', () => {
    const { template } = build();
    const statements = queryStatements(template);
    const on = (table: RegExp): string[] =>
      statements
        .filter((s) => table.test(JSON.stringify(s.Resource)))
        .flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));

    expect(on(/ChainTable/).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:Query']);
    expect(on(/ManifestTable/)).toEqual(['dynamodb:Query']);
  });
});
