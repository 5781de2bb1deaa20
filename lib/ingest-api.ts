import { Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { ENV } from '../lambda/core/config';
import { DEFAULT_MAX_EVENT_AGE_SECONDS } from '../lambda/core/contracts';
import { producerRulesProblem } from '../lambda/core/provenance';
import { OpentrailConfigError } from './private/errors';
import { addGatewayErrorResponses } from './private/gateway-errors';
import { acknowledgeIamWildcards, acknowledgeNag } from './private/nag';
import { OpentrailFunction } from './private/opentrail-function';
import {
  requireAccountIds,
  requireDurationInRange,
  requireIntegerInRange,
  requireOrganizationIds,
} from './private/validate';
import type { IngestApiProps } from './ingest-api-options';

export { GATEWAY_ERROR_MAPPINGS, type GatewayErrorMapping } from './private/gateway-errors';

/**
 * The PutAuditEvents endpoint (docs/formats.md#putauditevents): an API Gateway REST API whose every method
 * requires AWS_IAM (SigV4) auth, with `POST /PutAuditEvents` proxied to the ingest function,
 * which validates and normalises each event and puts the accepted ones to the stream.
 *
 * Security defaults: IAM auth on every method; a request validator and a model that only
 * require the body to be a JSON object (the function does the field-level rules, so their
 * messages name the field and the rule); stage throttling (100 rps, burst 200); JSON access
 * logs (caller, account, org, status, error) to a retained log group; regional endpoint.
 * Without producer accounts or organizations there is no resource policy, and only this
 * account's principals with `execute-api:Invoke` (see {@link grantPutAuditEvents}) can call.
 * With them, a resource policy admits those principals to `POST /PutAuditEvents` only.
 *
 * The function gets OPENTRAIL_STREAM_NAME, OPENTRAIL_ACCOUNT_ID (this stack's account, the
 * default recipientAccountId), OPENTRAIL_MAX_EVENT_AGE_SECONDS and, when configured,
 * OPENTRAIL_RECIPIENT_ALLOW_LIST (JSON RecipientAllowList) and OPENTRAIL_PRODUCER_RULES (JSON
 * ProducerRule[]); it may put records to the stream and nothing else. It stamps the verified
 * caller into every record (docs/formats.md#provenance).
 *
 * API Gateway's own rejections answer as {@link GATEWAY_ERROR_MAPPINGS} says.
 */
export class IngestApi extends Construct {
  /** The REST API. */
  public readonly api: apigw.RestApi;
  /** The ingest function. */
  public readonly handler: OpentrailFunction;
  /** `POST /PutAuditEvents`. */
  public readonly putAuditEventsMethod: apigw.Method;
  /** Where the stage's JSON access logs go. */
  public readonly accessLogGroup: logs.LogGroup;

  private queryMethod?: apigw.Method;
  private readonly queryThrottling: { readonly rateLimit: number; readonly burstLimit: number };
  private readonly producerAccounts: readonly string[];
  private readonly producerOrganizationIds: readonly string[];
  private readonly bodyValidator: apigw.RequestValidator;
  private readonly jsonObjectModel: apigw.Model;

  constructor(scope: Construct, id: string, props: IngestApiProps) {
    super(scope, id);
    const rateLimit = props.throttlingRateLimit ?? 100;
    const burstLimit = props.throttlingBurstLimit ?? 200;
    requireIntegerInRange(
      this,
      'INVALID_THROTTLING',
      'throttlingRateLimit',
      rateLimit,
      1,
      1_000_000,
      'Use a positive number of requests per second.',
    );
    requireIntegerInRange(
      this,
      'INVALID_THROTTLING',
      'throttlingBurstLimit',
      burstLimit,
      1,
      1_000_000,
      'Use a positive number of requests.',
    );
    this.queryThrottling = {
      rateLimit: props.queryThrottlingRateLimit ?? 50,
      burstLimit: props.queryThrottlingBurstLimit ?? 100,
    };
    requireIntegerInRange(
      this,
      'INVALID_THROTTLING',
      'queryThrottlingRateLimit',
      this.queryThrottling.rateLimit,
      1,
      1_000_000,
      'Use a positive number of requests per second.',
    );
    requireIntegerInRange(
      this,
      'INVALID_THROTTLING',
      'queryThrottlingBurstLimit',
      this.queryThrottling.burstLimit,
      1,
      1_000_000,
      'Use a positive number of requests.',
    );
    this.producerAccounts = props.producerAccounts ?? [];
    this.producerOrganizationIds = props.producerOrganizationIds ?? [];
    requireAccountIds(this, 'producerAccounts', this.producerAccounts);
    requireOrganizationIds(this, 'producerOrganizationIds', this.producerOrganizationIds);
    requireAccountIds(
      this,
      'recipientAllowList.accounts',
      props.recipientAllowList?.accounts ?? [],
    );
    requireOrganizationIds(
      this,
      'recipientAllowList.organizationIds',
      props.recipientAllowList?.organizationIds ?? [],
    );

    const producerRules = props.producerRules ?? [];
    if (!Token.isUnresolved(producerRules)) {
      const problem = producerRulesProblem(producerRules);
      if (problem !== undefined)
        throw new OpentrailConfigError(this, 'INVALID_PRODUCER_RULES', problem);
    }
    const maxEventAge = props.maxEventAge ?? Duration.seconds(DEFAULT_MAX_EVENT_AGE_SECONDS);
    requireDurationInRange(
      this,
      'INVALID_PRODUCER_RULES',
      'maxEventAge',
      maxEventAge,
      0,
      3650 * 86_400,
      'Use whole seconds up to 10 years, or Duration.seconds(0) for no limit.',
    );

    this.handler = new OpentrailFunction(this, 'Handler', {
      handlerName: 'ingest',
      description: 'opentrail ingest: POST /PutAuditEvents to the event stream',
      memorySize: 512,
      // Under API Gateway's 29 s integration timeout, so a slow call still answers in JSON.
      timeout: Duration.seconds(25),
      logRetention: props.logRetention,
      tracing: props.tracing,
      environment: {
        [ENV.STREAM_NAME]: props.stream.streamName,
        [ENV.ACCOUNT_ID]: Stack.of(this).account,
        ...(props.recipientAllowList
          ? { [ENV.RECIPIENT_ALLOW_LIST]: JSON.stringify(props.recipientAllowList) }
          : {}),
        ...(producerRules.length > 0
          ? { [ENV.PRODUCER_RULES]: JSON.stringify(producerRules) }
          : {}),
        [ENV.MAX_EVENT_AGE_SECONDS]: maxEventAge.isUnresolved()
          ? Token.asString(maxEventAge.toSeconds())
          : String(maxEventAge.toSeconds()),
      },
    });
    props.stream.grantWrite(this.handler);
    acknowledgeIamWildcards(
      this.handler.role,
      { actions: ['kms:GenerateDataKey*', 'kms:ReEncrypt*'] },
      "stream.grantWrite's KMS data-key families, on the stream's key only: PutRecords to an SSE-KMS stream needs a data key.",
    );

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.api = new apigw.RestApi(this, 'Api', {
      // A REST API needs a name; a unique one lets several deployments share an account.
      restApiName: Names.uniqueResourceName(this, { maxLength: 128 }),
      description: 'opentrail: PutAuditEvents (IAM auth)',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      cloudWatchRole: false,
      policy: this.resourcePolicy(),
      defaultMethodOptions: { authorizationType: apigw.AuthorizationType.IAM },
      deployOptions: {
        stageName: props.stageName ?? 'v1',
        throttlingRateLimit: rateLimit,
        throttlingBurstLimit: burstLimit,
        // PutAuditEvents gets its own bucket; the read side gets one in addQueryRoute.
        methodOptions: {
          '/PutAuditEvents/POST': {
            throttlingRateLimit: rateLimit,
            throttlingBurstLimit: burstLimit,
          },
        },
        tracingEnabled: props.tracing ?? false,
        // Per-method metrics: 4xx/5xx of each route on the dashboard, and a 5xx alarm per
        // route (docs/operations.md#runbook).
        metricsEnabled: true,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: apigw.AccessLogField.contextRequestId(),
            extendedRequestId: apigw.AccessLogField.contextExtendedRequestId(),
            requestTime: apigw.AccessLogField.contextRequestTime(),
            httpMethod: apigw.AccessLogField.contextHttpMethod(),
            resourcePath: apigw.AccessLogField.contextResourcePath(),
            status: apigw.AccessLogField.contextStatus(),
            protocol: apigw.AccessLogField.contextProtocol(),
            responseLength: apigw.AccessLogField.contextResponseLength(),
            responseLatency: apigw.AccessLogField.contextResponseLatency(),
            integrationStatus: apigw.AccessLogField.contextIntegrationStatus(),
            sourceIp: apigw.AccessLogField.contextIdentitySourceIp(),
            userAgent: apigw.AccessLogField.contextIdentityUserAgent(),
            callerAccountId: apigw.AccessLogField.contextIdentityAccountId(),
            callerArn: apigw.AccessLogField.contextIdentityUserArn(),
            principalOrgId: apigw.AccessLogField.contextIdentityPrincipalOrgId(),
            errorType: apigw.AccessLogField.contextErrorResponseType(),
            errorMessage: apigw.AccessLogField.contextErrorMessage(),
          }),
        ),
      },
    });
    addGatewayErrorResponses(this.api);

    this.bodyValidator = this.api.addRequestValidator('BodyValidator', {
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    this.jsonObjectModel = this.api.addModel('JsonObject', {
      contentType: 'application/json',
      description: 'Any JSON object; the function checks the fields',
      schema: {
        schema: apigw.JsonSchemaVersion.DRAFT4,
        title: 'JsonObject',
        type: apigw.JsonSchemaType.OBJECT,
      },
    });

    this.putAuditEventsMethod = this.addRoute('POST', 'PutAuditEvents', this.handler, {
      'method.request.querystring.channelArn': false,
    });

    if (props.webAclArn) {
      new wafv2.CfnWebACLAssociation(this, 'WebAcl', {
        resourceArn: this.api.deploymentStage.stageArn,
        webAclArn: props.webAclArn,
      });
    } else {
      acknowledgeNag(
        this.api.deploymentStage,
        'AwsSolutions-APIG3',
        'Every request must be SigV4-signed by an IAM principal the account trusts, and the stage is throttled; a web ACL can be attached with the webAclArn prop.',
      );
    }
    acknowledgeNag(
      this.api.deploymentStage,
      'AwsSolutions-APIG6',
      'Execution logging needs the account-wide API Gateway CloudWatch role (an account singleton this construct must not own); JSON access logs record every request, and the function logs every outcome.',
    );
    acknowledgeNag(
      this.api,
      'AwsSolutions-COG4',
      'Producers are AWS principals (services, roles in member accounts), as with CloudTrail Lake PutAuditEvents: AWS_IAM (SigV4) auth on every method, not Cognito user pools.',
    );
  }

  /** Full URL of `POST /PutAuditEvents`. */
  public get putAuditEventsUrl(): string {
    return this.api.urlForPath('/PutAuditEvents');
  }

  /**
   * Serves the read side on `POST /` (AWS JSON 1.1, dispatched on `X-Amz-Target`: LookupEvents,
   * ListPublicKeys) with IAM auth. Producers admitted by the resource policy never reach it;
   * readers need {@link grantQuery}. Returns the method; a second call is refused.
   */
  public addQueryRoute(handler: OpentrailFunction): apigw.Method {
    if (this.queryMethod) {
      throw new OpentrailConfigError(
        this,
        'DUPLICATE_ROUTE',
        'POST / is already served by a query function',
      );
    }
    this.queryMethod = this.api.root.addMethod(
      'POST',
      new apigw.LambdaIntegration(handler.function, { allowTestInvoke: false }),
      {
        authorizationType: apigw.AuthorizationType.IAM,
        requestValidator: this.bodyValidator,
        requestModels: {
          'application/x-amz-json-1.1': this.jsonObjectModel,
          'application/json': this.jsonObjectModel,
        },
      },
    );
    const stage = this.api.deploymentStage.node.defaultChild as apigw.CfnStage;
    const settings = (stage.methodSettings ?? []) as apigw.CfnStage.MethodSettingProperty[];
    stage.methodSettings = [
      ...settings,
      {
        resourcePath: '/',
        httpMethod: 'POST',
        throttlingRateLimit: this.queryThrottling.rateLimit,
        throttlingBurstLimit: this.queryThrottling.burstLimit,
      },
    ];
    return this.queryMethod;
  }

  /** Lets the grantee call `POST /` (the read side), and nothing else. */
  public grantQuery(grantee: iam.IGrantable): iam.Grant {
    if (!this.queryMethod) {
      throw new OpentrailConfigError(
        this,
        'NO_QUERY_ROUTE',
        'grantQuery needs addQueryRoute first',
      );
    }
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: [this.queryMethod.methodArn],
    });
  }

  /** Lets the grantee call `POST /PutAuditEvents` (execute-api:Invoke on that method only). */
  public grantPutAuditEvents(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: [this.putAuditEventsMethod.methodArn],
    });
  }

  /** Requests that failed in the function or the gateway, 5xx (sum, per stage). */
  public metricServerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.deploymentStage.metricServerError({ statistic: 'Sum', ...props });
  }

  /** Requests refused with a 4xx: bad body, auth, throttling (sum, per stage). */
  public metricClientErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.deploymentStage.metricClientError({ statistic: 'Sum', ...props });
  }

  /** End-to-end latency (p99 by default, per stage). */
  public metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.deploymentStage.metricLatency({ statistic: 'p99', ...props });
  }

  /** Ingest function errors (sum). */
  public metricHandlerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metricErrors(props);
  }

  /**
   * Adds `METHOD /path` (IAM auth, body validated as a JSON object, Lambda proxy). Producer
   * routes go through here; routes for other callers (issue 4: `POST /` for LookupEvents and
   * ListPublicKeys) will be added the same way without `execute-api:Invoke` for producers.
   */
  private addRoute(
    httpMethod: string,
    pathPart: string,
    handler: OpentrailFunction,
    requestParameters: Record<string, boolean>,
  ): apigw.Method {
    const resource = this.api.root.addResource(pathPart);
    return resource.addMethod(
      httpMethod,
      new apigw.LambdaIntegration(handler.function, { allowTestInvoke: false }),
      {
        authorizationType: apigw.AuthorizationType.IAM,
        requestValidator: this.bodyValidator,
        requestModels: { 'application/json': this.jsonObjectModel },
        requestParameters,
      },
    );
  }

  /**
   * The resource policy admitting other accounts and organizations as producers. It names
   * `POST /PutAuditEvents` and nothing else, so admitted principals reach no other route
   * (cross-account calls need both their IAM policy and this policy to allow). Without
   * producers there is no policy: this account's IAM policies alone decide.
   */
  private resourcePolicy(): iam.PolicyDocument | undefined {
    if (this.producerAccounts.length === 0 && this.producerOrganizationIds.length === 0)
      return undefined;
    const producerRoutes = ['execute-api:/*/POST/PutAuditEvents'];
    const statements: iam.PolicyStatement[] = [];
    if (this.producerAccounts.length > 0) {
      statements.push(
        new iam.PolicyStatement({
          sid: 'ProducerAccounts',
          principals: this.producerAccounts.map((account) => new iam.AccountPrincipal(account)),
          actions: ['execute-api:Invoke'],
          resources: producerRoutes,
        }),
      );
    }
    if (this.producerOrganizationIds.length > 0) {
      statements.push(
        new iam.PolicyStatement({
          sid: 'ProducerOrganizations',
          principals: [new iam.AnyPrincipal()],
          actions: ['execute-api:Invoke'],
          resources: producerRoutes,
          conditions: { StringEquals: { 'aws:PrincipalOrgID': [...this.producerOrganizationIds] } },
        }),
      );
    }
    return new iam.PolicyDocument({ statements });
  }
}
