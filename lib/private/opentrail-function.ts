import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DEPLOYMENT_ENV } from '../../lambda/core/metrics';
import { OpentrailConfigError } from './errors';
import { handlerBundleDir, type OpentrailHandlerName } from './handler-bundles';
import { acknowledgeNag } from './nag';
import {
  environmentSizeBytes,
  LAMBDA_ENVIRONMENT_LIMIT_BYTES,
  largestVariables,
} from './environment';
import { requireDurationInRange, requireIntegerInRange } from './validate';

export type { OpentrailHandlerName } from './handler-bundles';

export interface OpentrailFunctionProps {
  /**
   * Which handler: `lambda/handlers/<handlerName>.ts`, export `handler`, deployed from its
   * prebuilt bundle `dist/handlers/<handlerName>/`.
   */
  readonly handlerName: OpentrailHandlerName;
  /** Function description (shown in the console). */
  readonly description: string;
  /**
   * Environment variables. The total (keys + values, tokens counted as 255 bytes) must stay
   * under Lambda's 4 KB.
   * @default - only NODE_OPTIONS
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Memory in MB.
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Timeout.
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * Retention of the function's own log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Active X-Ray tracing.
   * @default false
   */
  readonly tracing?: boolean;
}

/**
 * A Lambda function running one handler, owning every runtime default so no construct
 * repeats them:
 *
 * - Node.js 22 (pinned: `NODEJS_22_X`, not "latest"), ARM64, JSON log format;
 * - code from the handler's bundle, prebuilt by `npm run build` (scripts/bundle-handlers.ts:
 *   esbuild, target node22, minified, with source maps) and shipped in the package, so synth
 *   runs neither esbuild nor Docker; `NODE_OPTIONS=--enable-source-maps`; `@aws-sdk/*` comes
 *   from the runtime, not the bundle;
 * - its own role (no AWS managed policy) allowed to write only to its own log group, which
 *   has a retention (one month by default) and is retained when the stack is deleted;
 * - an environment checked against Lambda's 4 KB limit at construction.
 */
export class OpentrailFunction extends Construct implements iam.IGrantable {
  /** The function. */
  public readonly function: lambda.Function;
  /** Its execution role. */
  public readonly role: iam.Role;
  /** Its log group. */
  public readonly logGroup: logs.LogGroup;
  public readonly grantPrincipal: iam.IPrincipal;

  private readonly environment: Record<string, string>;

  constructor(scope: Construct, id: string, props: OpentrailFunctionProps) {
    super(scope, id);

    const memorySize = props.memorySize ?? 512;
    const timeout = props.timeout ?? Duration.seconds(30);
    requireIntegerInRange(
      this,
      'INVALID_FUNCTION_SETTINGS',
      'memorySize',
      memorySize,
      128,
      10240,
      'Lambda accepts 128-10240 MB.',
    );
    requireDurationInRange(
      this,
      'INVALID_FUNCTION_SETTINGS',
      'timeout',
      timeout,
      1,
      900,
      'Lambda accepts 1-900 seconds.',
    );

    this.environment = {
      NODE_OPTIONS: '--enable-source-maps',
      // The EMF `deployment` dimension (docs/operations.md#metrics).
      [DEPLOYMENT_ENV]: Stack.of(this).stackName,
      ...props.environment,
    };
    this.checkEnvironmentSize();

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the opentrail ${props.handlerName} function`,
    });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): its own group only.
    this.logGroup.grantWrite(this.role);

    const bundleDir = handlerBundleDir(props.handlerName);
    if (!fs.existsSync(path.join(bundleDir, 'index.js'))) {
      throw new OpentrailConfigError(
        this,
        'HANDLER_BUNDLE_MISSING',
        `the prebuilt bundle of the ${props.handlerName} handler is missing (${path.join(bundleDir, 'index.js')}). In a checkout of opentrail, run \`npm run build\`; an installed package ships it, so reinstall opentrail.`,
      );
    }
    // Same construct ID as the NodejsFunction of 0.1.0: the logical ID is unchanged.
    this.function = new lambda.Function(this, 'Function', {
      description: props.description,
      code: lambda.Code.fromAsset(bundleDir),
      handler: 'index.handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize,
      timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: props.tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
      environment: this.environment,
    });
    this.grantPrincipal = this.function.grantPrincipal;

    if (props.tracing) {
      acknowledgeNag(
        this.role,
        'AwsSolutions-IAM5[Resource::*]',
        'X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions; Lambda adds them on "*" when tracing is on.',
      );
    }
    acknowledgeNag(
      this.function,
      'AwsSolutions-L1',
      'The runtime is pinned to Node.js 22 on purpose: the handlers are built and tested for it (esbuild target node22); moving to a newer runtime is a deliberate, tested change.',
    );
  }

  /** Adds an environment variable, keeping the total under Lambda's 4 KB. */
  public addEnvironment(key: string, value: string): this {
    this.environment[key] = value;
    this.checkEnvironmentSize();
    this.function.addEnvironment(key, value);
    return this;
  }

  private checkEnvironmentSize(): void {
    const size = environmentSizeBytes(this.environment);
    if (size > LAMBDA_ENVIRONMENT_LIMIT_BYTES) {
      throw new OpentrailConfigError(
        this,
        'ENVIRONMENT_TOO_LARGE',
        `the Lambda environment would be about ${size} bytes, over Lambda's ${LAMBDA_ENVIRONMENT_LIMIT_BYTES}-byte limit; largest: ${largestVariables(this.environment)}. Shorten the configuration (fewer or smaller trails/selectors, fewer allow-listed accounts).`,
      );
    }
  }
}
