import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ENV } from '../../lambda/core/config';
import { EventStream, IngestApi } from '../../lib';
import { EventHistory } from '../../lib/event-history';
import { OpentrailFunction } from '../../lib/private/opentrail-function';
import { testStack } from './support/app';

function build() {
  const stack = testStack();
  const events = new EventStream(stack, 'Events');
  const history = new EventHistory(stack, 'History', { stream: events.stream });
  const api = new IngestApi(stack, 'Api', { stream: events.stream });
  const query = new OpentrailFunction(stack, 'Query', {
    handlerName: 'query',
    description: 'query',
  });
  api.addQueryRoute(query);
  history.attachLookupEvents(query);
  return { stack, history, query, api };
}

type Statement = { Action: string | string[]; Resource: unknown };
function statementsOf(template: Template, rolePrefix: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp(`^${rolePrefix}`) }] },
  });
  return Object.values(policies).flatMap(
    (p) => p.Properties.PolicyDocument.Statement as Statement[],
  );
}
const actions = (statements: Statement[]): string[] =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();

describe('EventHistory', () => {
  const { stack } = build();
  const template = Template.fromStack(stack);

  it('keeps history in an on-demand, PITR, KMS-encrypted, TTL, protected and retained table', () => {
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
  });

  it('authenticates page tokens with a KMS HMAC_256 key', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      KeySpec: 'HMAC_256',
      KeyUsage: 'GENERATE_VERIFY_MAC',
    });
  });

  it('runs the indexer on its own mapping with partial failures, bisect, bounded retries and S3 on-failure', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: Match.stringLikeRegexp('^HistoryIndexer') },
      StartingPosition: 'TRIM_HORIZON',
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 86400,
      DestinationConfig: {
        OnFailure: {
          Destination: {
            'Fn::GetAtt': [Match.stringLikeRegexp('^HistoryFailedRecordsBucket'), 'Arn'],
          },
        },
      },
    });
  });

  it('lets the indexer write history items and never read or delete them', () => {
    const dynamo = actions(statementsOf(template, 'HistoryIndexerRole')).filter((a) =>
      a.startsWith('dynamodb:'),
    );
    expect(
      dynamo.filter(
        (a) => !a.startsWith('dynamodb:DescribeStream') && !a.startsWith('dynamodb:GetRecords'),
      ),
    ).toEqual(['dynamodb:BatchWriteItem', 'dynamodb:PutItem']);
  });

  it('lets the query function read history and MAC with the token key, nothing more of it', () => {
    const all = actions(statementsOf(template, 'QueryRole'));
    expect(all).toEqual(
      expect.arrayContaining([
        'dynamodb:Query',
        'dynamodb:GetItem',
        'dynamodb:BatchGetItem',
        'kms:GenerateMac',
        'kms:VerifyMac',
      ]),
    );
    expect(all.filter((a) => /dynamodb:(Put|Delete|Update|BatchWrite)/.test(a))).toEqual([]);
  });

  it('gives the query function the table and the key ARN, no secret', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [ENV.HISTORY_TABLE]: { Ref: Match.stringLikeRegexp('^HistoryTable') },
          [ENV.HISTORY_TOKEN_KEY_ID]: {
            'Fn::GetAtt': [Match.stringLikeRegexp('^HistoryTokenKey'), 'Arn'],
          },
        }),
      },
    });
  });

  it('leaves no cdk-nag AwsSolutions finding unacknowledged in its own resources', () => {
    const { stack: s } = build();
    const result = new AwsSolutionsChecks(s.node.root).validateScope(s);
    const mine = result.violations.flatMap((v) =>
      v.violatingResources
        .filter((r) => (r.constructPath ?? '').includes('/History/'))
        .map((r) => `${v.ruleName} at ${r.constructPath}`),
    );
    expect(mine).toEqual([]);
  });

  it('reports a wildcard grant on the indexer that nobody acknowledged (the check is live)', () => {
    const { stack: s, history } = build();
    history.failedRecordsBucket.grantDelete(history.indexer);
    const result = new AwsSolutionsChecks(s.node.root).validateScope(s);
    expect(
      result.violations
        .filter((v) =>
          v.violatingResources.some((r) => (r.constructPath ?? '').includes('/History/')),
        )
        .map((v) => v.ruleName),
    ).toContain('AwsSolutions-IAM5[Action::s3:DeleteObject*]');
  });
});
