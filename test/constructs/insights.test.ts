import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ENV } from '../../lambda/core/config';
import { OpentrailConfigError, OpentrailStack } from '../../lib';
import { maskAssetHashes } from './support/mask-asset-hashes';
import { testApp } from './support/app';

expect.addSnapshotSerializer(maskAssetHashes);

function stackWith(insights: object | undefined, trails?: object[]) {
  const app = testApp();
  const stack = new OpentrailStack(app, 'Opentrail', {
    ...(insights ? { insights } : {}),
    ...(trails ? { packager: { trails: trails as never } } : {}),
  });
  return { app, stack, template: Template.fromStack(stack) };
}

type Statement = { Action: string | string[]; Resource: unknown };
function statementsOf(template: Template, roleLogicalIdPrefix: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp(`^${roleLogicalIdPrefix}`) }] },
  });
  return Object.values(policies).flatMap(
    (p) => p.Properties.PolicyDocument.Statement as Statement[],
  );
}
const actionsOf = (statements: Statement[]): string[] =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();

function logicalId(template: Template, type: string, pathPart: string): string {
  const found = Object.entries(template.toJSON().Resources as Record<string, { Type: string }>)
    .filter(([id, r]) => r.Type === type && id.includes(pathPart))
    .map(([id]) => id);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('Insights', () => {
  const { stack, template } = stackWith({});

  it('keeps counters and state in an on-demand, PITR, KMS-encrypted, TTL, protected and retained table', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: 'KMS' }),
        TimeToLiveSpecification: { AttributeName: 'x', Enabled: true },
        DeletionProtectionEnabled: true,
      },
    });
    expect(stack.auditTrail.insights?.table.node.path).toBe('Opentrail/AuditTrail/Insights/Table');
  });

  it('invokes the detector every minute from an EventBridge Scheduler schedule, without retries', () => {
    const detector = logicalId(template, 'AWS::Lambda::Function', 'InsightsDetector');
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Target: Match.objectLike({
        Arn: { 'Fn::GetAtt': [detector, 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
      }),
    });
  });

  it('lets the detector put records into the stream and nothing else on it (PutRecords only)', () => {
    const statements = statementsOf(template, 'AuditTrailInsightsDetectorRole');
    const kinesis = statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('kinesis:')));
    expect(actionsOf(kinesis)).toEqual(['kinesis:PutRecords']);
    expect(kinesis[0]!.Resource).toEqual({
      'Fn::GetAtt': [logicalId(template, 'AWS::Kinesis::Stream', 'EventStream'), 'Arn'],
    });
    expect(stack.auditTrail.insights?.role).toBe(stack.auditTrail.insights?.detector.role);
  });

  it("gives the detector the Insights table's reads and writes, the history table's reads, and no delete", () => {
    const actions = actionsOf(statementsOf(template, 'AuditTrailInsightsDetectorRole'));
    expect(actions.filter((a) => a.startsWith('dynamodb:'))).toEqual(
      [
        'dynamodb:BatchGetItem',
        'dynamodb:BatchWriteItem',
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:Query',
        'dynamodb:PutItem',
      ].sort(),
    );
  });

  it('lets the packager count (UpdateItem, GetItem on the Insights table) and tells it the table', () => {
    const table = logicalId(template, 'AWS::DynamoDB::Table', 'InsightsTable');
    const packager = statementsOf(template, 'AuditTrailLogPackagerHandlerRole');
    const onTable = packager.filter((s) => JSON.stringify(s.Resource).includes(`"${table}"`));
    expect(actionsOf(onTable)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^opentrail packager'),
      Environment: { Variables: Match.objectLike({ [ENV.INSIGHTS_TABLE]: { Ref: table } }) },
    });
  });

  it('detects the Insight types the trails select, both when no trail selects any', () => {
    const detector = (t: Template) =>
      Object.values(
        t.findResources('AWS::Lambda::Function', {
          Properties: { Description: Match.stringLikeRegexp('^opentrail Insights') },
        }),
      )[0]!.Properties.Environment.Variables[ENV.INSIGHT_TYPES] as string;
    expect(JSON.parse(detector(template))).toEqual(['ApiCallRateInsight', 'ApiErrorRateInsight']);
    const errorsOnly = stackWith({}, [
      { name: 'opentrail', insightSelectors: [{ InsightType: 'ApiErrorRateInsight' }] },
    ]);
    expect(JSON.parse(detector(errorsOnly.template))).toEqual(['ApiErrorRateInsight']);
  });

  it('refuses an unknown Insight type, naming it and the accepted ones', () => {
    expect(() => stackWith({ insightTypes: ['ApiCallRate'] })).toThrow(OpentrailConfigError);
    expect(() => stackWith({ insightTypes: ['ApiCallRate'] })).toThrow(
      /insightTypes: "ApiCallRate" is not an Insight type; use ApiCallRateInsight or ApiErrorRateInsight/,
    );
  });

  it('is off unless asked for', () => {
    const { stack: plain, template: plainTemplate } = stackWith(undefined);
    expect(plain.auditTrail.insights).toBeUndefined();
    expect(
      plainTemplate.findResources('AWS::Scheduler::Schedule', {
        Properties: { Description: Match.stringLikeRegexp('Insights') },
      }),
    ).toEqual({});
    expect(plainTemplate.findResources('AWS::DynamoDB::Table')).not.toHaveProperty(
      logicalId(template, 'AWS::DynamoDB::Table', 'InsightsTable'),
    );
  });

  it('leaves cdk-nag AwsSolutions nothing unacknowledged', () => {
    const { app, stack: nagged } = stackWith({ tracing: true });
    const result = new AwsSolutionsChecks(app).validateScope(nagged);
    const findings = result.violations.flatMap((v) =>
      v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath ?? '?'}`),
    );
    expect(findings).toEqual([]);
  });

  it('matches the snapshot of its resources (asset hashes masked)', () => {
    const resources = Object.fromEntries(
      Object.entries(template.toJSON().Resources as Record<string, unknown>).filter(([id]) =>
        id.startsWith('AuditTrailInsights'),
      ),
    );
    expect(resources).toMatchSnapshot();
  });
});
