import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ENV } from '../../lambda/core/config';
import {
  EventStream,
  GATEWAY_ERROR_MAPPINGS,
  IngestApi,
  type IngestApiOptions,
  OpentrailConfigError,
} from '../../lib';
import { testStack } from './support/app';

function ingestStack(options: IngestApiOptions = {}) {
  const stack = testStack();
  const events = new EventStream(stack, 'Events');
  const ingest = new IngestApi(stack, 'Ingest', { ...options, stream: events.stream });
  return { stack, ingest };
}

describe('IngestApi with defaults', () => {
  let template: Template;
  beforeAll(() => {
    const { stack, ingest } = ingestStack();
    ingest.grantPutAuditEvents(
      new iam.Role(stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() }),
    );
    template = Template.fromStack(stack);
  });

  it('every API method uses AWS_IAM', () => {
    const methods = template.findResources('AWS::ApiGateway::Method');
    expect(Object.keys(methods).length).toBeGreaterThan(0);
    for (const method of Object.values(methods)) {
      expect(method.Properties.AuthorizationType).toBe('AWS_IAM');
    }
  });

  it('POST /PutAuditEvents is a Lambda proxy integration to the ingest function', () => {
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'PutAuditEvents' });
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'POST',
      Integration: { Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST' },
    });
  });

  it('the gateway checks only that the body is a JSON object', () => {
    template.hasResourceProperties('AWS::ApiGateway::RequestValidator', {
      ValidateRequestBody: true,
    });
    template.hasResourceProperties('AWS::ApiGateway::Model', {
      ContentType: 'application/json',
      Schema: {
        $schema: 'http://json-schema.org/draft-04/schema#',
        title: 'JsonObject',
        type: 'object',
      },
    });
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      RequestValidatorId: Match.anyValue(),
      RequestModels: { 'application/json': Match.anyValue() },
    });
  });

  it.each([
    ['BAD_REQUEST_BODY', '400', 'ValidationException'],
    ['MISSING_AUTHENTICATION_TOKEN', '403', 'AccessDeniedException'],
    ['INVALID_SIGNATURE', '403', 'AccessDeniedException'],
    ['EXPIRED_TOKEN', '403', 'AccessDeniedException'],
    ['ACCESS_DENIED', '403', 'AccessDeniedException'],
    ['THROTTLED', '429', 'ThrottlingException'],
  ])('gateway rejection %s answers %s {"__type":"%s"}', (type, status, code) => {
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: type,
      StatusCode: status,
      ResponseParameters: { 'gatewayresponse.header.x-amzn-ErrorType': `'${code}'` },
      ResponseTemplates: {
        'application/json': Match.stringLikeRegexp(`^\\{"__type":"${code}","message":`),
      },
    });
  });

  it('every gateway response body is docs/formats.md#putauditevents error JSON once API Gateway substitutes it', () => {
    const responses = Object.values(template.findResources('AWS::ApiGateway::GatewayResponse'));
    expect(responses).toHaveLength(GATEWAY_ERROR_MAPPINGS.length);
    for (const response of responses) {
      const body = (response.Properties.ResponseTemplates['application/json'] as string).replace(
        '$context.error.messageString',
        '"Missing Authentication Token"',
      );
      const parsed = JSON.parse(body) as Record<string, unknown>;
      expect(Object.keys(parsed)).toEqual(['__type', 'message']);
      expect(typeof parsed.message).toBe('string');
    }
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'DEFAULT_5XX',
    });
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'DEFAULT_4XX',
    });
  });

  it('throttles the stage at 100 rps, burst 200', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([
        Match.objectLike({
          HttpMethod: '*',
          ResourcePath: '/*',
          ThrottlingRateLimit: 100,
          ThrottlingBurstLimit: 200,
        }),
      ]),
    });
  });

  it('writes JSON access logs to its own retained log group', () => {
    const stage = Object.values(template.findResources('AWS::ApiGateway::Stage'))[0]!;
    const format = JSON.parse(stage.Properties.AccessLogSetting.Format as string) as Record<
      string,
      string
    >;
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      status: '$context.status',
      callerAccountId: '$context.identity.accountId',
      principalOrgId: '$context.identity.principalOrgId',
    });
    template.hasResource('AWS::Logs::LogGroup', {
      DeletionPolicy: 'Retain',
      Properties: { RetentionInDays: 365 },
    });
  });

  it('has no resource policy when no other account is admitted', () => {
    template.hasResourceProperties('AWS::ApiGateway::RestApi', { Policy: Match.absent() });
  });

  it('gives the function the stream name and the account, and no allow-list by default', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: {
          [ENV.STREAM_NAME]: { Ref: Match.stringLikeRegexp('^EventsStream') },
          [ENV.ACCOUNT_ID]: '123456789012',
          [ENV.RECIPIENT_ALLOW_LIST]: Match.absent(),
        },
      },
    });
  });

  it('lets the function put records to the stream and nothing else', () => {
    const policies = template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^IngestHandlerRole') }] },
    });
    const actions = Object.values(policies).flatMap((p) =>
      (p.Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap(
        (s) => s.Action,
      ),
    );
    expect(actions.sort()).toEqual(
      [
        'kinesis:ListShards',
        'kinesis:PutRecord',
        'kinesis:PutRecords',
        'kms:Encrypt',
        'kms:GenerateDataKey*',
        'kms:ReEncrypt*',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ].sort(),
    );
  });

  it('grantPutAuditEvents allows execute-api:Invoke on POST /PutAuditEvents only', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^Producer') }],
      PolicyDocument: {
        Statement: [
          {
            Action: 'execute-api:Invoke',
            Effect: 'Allow',
            Resource: {
              'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('/POST/PutAuditEvents$')])],
            },
          },
        ],
      },
    });
  });
});

describe('IngestApi with producers from other accounts and an organization', () => {
  let template: Template;
  beforeAll(() => {
    const { stack } = ingestStack({
      producerAccounts: ['111122223333', '444455556666'],
      producerOrganizationIds: ['o-a1b2c3d4e5'],
      recipientAllowList: { accounts: ['111122223333'], organizationIds: ['o-a1b2c3d4e5'] },
      throttlingRateLimit: 50,
      throttlingBurstLimit: 75,
    });
    template = Template.fromStack(stack);
  });

  it('resource policy admits other accounts and the organization to POST /PutAuditEvents only', () => {
    const api = Object.values(template.findResources('AWS::ApiGateway::RestApi'))[0]!;
    const statements = api.Properties.Policy.Statement as Record<string, unknown>[];
    expect(statements).toHaveLength(2);
    for (const statement of statements) {
      expect(statement).toMatchObject({
        Effect: 'Allow',
        Action: 'execute-api:Invoke',
        Resource: 'execute-api:/*/POST/PutAuditEvents',
      });
    }
    expect(statements[0]).toMatchObject({
      Sid: 'ProducerAccounts',
      Principal: {
        AWS: ['arn:aws:iam::111122223333:root', 'arn:aws:iam::444455556666:root'],
      },
    });
    expect(statements[1]).toMatchObject({
      Sid: 'ProducerOrganizations',
      Principal: { AWS: '*' },
      Condition: { StringEquals: { 'aws:PrincipalOrgID': ['o-a1b2c3d4e5'] } },
    });
  });

  it('passes the recipient allow-list to the function as JSON', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: {
          [ENV.RECIPIENT_ALLOW_LIST]: JSON.stringify({
            accounts: ['111122223333'],
            organizationIds: ['o-a1b2c3d4e5'],
          }),
        },
      },
    });
  });

  it('uses the configured throttling', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([
        Match.objectLike({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 75 }),
      ]),
    });
  });
});

describe('IngestApi validation', () => {
  it('refuses a producer account that is not 12 digits, naming it', () => {
    expect(() => ingestStack({ producerAccounts: ['12345'] })).toThrow(OpentrailConfigError);
    expect(() => ingestStack({ producerAccounts: ['12345'] })).toThrow(
      /producerAccounts holds "12345"/,
    );
  });

  it('refuses a malformed organization id, naming it', () => {
    expect(() => ingestStack({ producerOrganizationIds: ['org-1'] })).toThrow(
      /producerOrganizationIds holds "org-1"/,
    );
  });

  it('refuses a non-positive throttling rate', () => {
    expect(() => ingestStack({ throttlingRateLimit: 0 })).toThrow(/throttlingRateLimit is 0/);
  });
});
