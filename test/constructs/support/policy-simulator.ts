import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

/**
 * Evaluates a synthesized stack's policies offline with @cloud-copilot/iam-simulate: identity
 * policies of its roles, bucket, stream, event-bus and key policies, for one request at a
 * time. CloudFormation intrinsics are resolved to fixed fake names: a resource `X` is named
 * `x` (lowercase, for buckets) or `X`, and its ARN built from its type, so a policy that names
 * a resource by `Ref`/`Fn::GetAtt` names the same ARN the request uses.
 */

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';

type Json = unknown;
type Resources = Record<string, { Type: string; Properties?: Record<string, Json> }>;

const ARN_BY_TYPE: Record<string, (id: string) => string> = {
  'AWS::IAM::Role': (id) => `arn:aws:iam::${ACCOUNT}:role/${id}`,
  'AWS::S3::Bucket': (id) => `arn:aws:s3:::${id.toLowerCase()}`,
  'AWS::KMS::Key': (id) => `arn:aws:kms:${REGION}:${ACCOUNT}:key/${id}`,
  'AWS::Kinesis::Stream': (id) => `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${id}`,
  'AWS::DynamoDB::Table': (id) => `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${id}`,
  'AWS::Events::EventBus': (id) => `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/${id}`,
  'AWS::Logs::LogGroup': (id) => `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${id}:*`,
  'AWS::Lambda::Function': (id) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${id}`,
  'AWS::SNS::Topic': (id) => `arn:aws:sns:${REGION}:${ACCOUNT}:${id}`,
};

const PSEUDO: Record<string, string> = {
  'AWS::AccountId': ACCOUNT,
  'AWS::Region': REGION,
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
};

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

export interface PolicyRequest {
  /** Logical ID of a role in the stack, or a principal ARN from outside it. */
  readonly principal: string;
  readonly action: string;
  /** A resource ARN (build it with {@link PolicySimulator.arn}). */
  readonly resource: string;
  /** Request context beyond aws:PrincipalArn and aws:PrincipalIsAWSService. */
  readonly context?: Readonly<Record<string, string | string[]>>;
  /** Extra identity policy statements (e.g. a mistaken `s3:*` grant). */
  readonly extraIdentityStatements?: readonly Record<string, Json>[];
}

export class PolicySimulator {
  private readonly resources: Resources;

  constructor(stack: Stack) {
    this.resources = Template.fromStack(stack).toJSON().Resources as Resources;
  }

  /** The one logical ID of a given type whose ID starts with `prefix`. */
  public id(type: string, prefix: string): string {
    const ids = Object.keys(this.resources).filter(
      (id) => this.resources[id]!.Type === type && id.startsWith(prefix),
    );
    if (ids.length !== 1) throw new Error(`${type} ${prefix}*: found ${ids.join(', ') || 'none'}`);
    return ids[0]!;
  }

  /** The fake ARN of a resource of the stack. */
  public arn(logicalId: string): string {
    const type = this.resources[logicalId]?.Type;
    const make = type ? ARN_BY_TYPE[type] : undefined;
    if (!make) throw new Error(`no ARN for ${logicalId} (${type})`);
    return make(logicalId);
  }

  /** The request's decision: identity policies of the principal plus the resource's policy. */
  public async decide(request: PolicyRequest): Promise<Decision> {
    const principalArn = request.principal.startsWith('arn:')
      ? request.principal
      : this.arn(request.principal);
    const identityPolicies = [
      ...this.identityPolicies(request.principal),
      ...(request.extraIdentityStatements
        ? [
            {
              name: 'extra',
              policy: { Version: '2012-10-17', Statement: [...request.extraIdentityStatements] },
            },
          ]
        : []),
    ];
    const simulation: Simulation = {
      request: {
        principal: principalArn,
        action: request.action,
        resource: { resource: request.resource, accountId: ACCOUNT },
        contextVariables: {
          'aws:PrincipalArn': principalArn,
          'aws:PrincipalAccount': ACCOUNT,
          'aws:PrincipalIsAWSService': 'false',
          ...request.context,
        },
      },
      identityPolicies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(this.resourcePolicy(request.resource)
        ? { resourcePolicy: this.resourcePolicy(request.resource) as never }
        : {}),
    };
    const response = await runSimulation(simulation, {});
    if (response.resultType === 'error') {
      throw new Error(`simulation refused: ${JSON.stringify(response.errors)}`);
    }
    return response.overallResult;
  }

  /** Every AWS::IAM::Policy attached to the role (by Ref), resolved. */
  private identityPolicies(roleId: string): { name: string; policy: Json }[] {
    if (roleId.startsWith('arn:')) return [];
    return Object.entries(this.resources)
      .filter(
        ([, r]) =>
          r.Type === 'AWS::IAM::Policy' &&
          ((r.Properties?.Roles as { Ref?: string }[] | undefined) ?? []).some(
            (role) => role.Ref === roleId,
          ),
      )
      .map(([id, r]) => ({ name: id, policy: this.resolve(r.Properties!.PolicyDocument) }));
  }

  /** The policy of the bucket, key, stream or bus the ARN names (or of the bucket of an object). */
  private resourcePolicy(resourceArn: string): Json {
    for (const [id, r] of Object.entries(this.resources)) {
      const props = r.Properties ?? {};
      if (r.Type === 'AWS::S3::BucketPolicy') {
        const bucket = this.resolve(props.Bucket) as string;
        if (
          resourceArn === `arn:aws:s3:::${bucket}` ||
          resourceArn.startsWith(`arn:aws:s3:::${bucket}/`)
        )
          return this.resolve(props.PolicyDocument);
      }
      if (r.Type === 'AWS::KMS::Key' && this.arn(id) === resourceArn) {
        return this.resolve(props.KeyPolicy);
      }
      if (
        r.Type === 'AWS::Kinesis::ResourcePolicy' &&
        this.resolve(props.ResourceArn) === resourceArn
      ) {
        return this.resolve(props.ResourcePolicy);
      }
    }
    // Event bus policies are one statement per resource.
    const busStatements = Object.values(this.resources)
      .filter((r) => r.Type === 'AWS::Events::EventBusPolicy')
      .filter((r) => {
        const name = this.resolve(r.Properties!.EventBusName) as string;
        return resourceArn.endsWith(`:event-bus/${name}`);
      })
      .map((r) => this.resolve(r.Properties!.Statement));
    if (busStatements.length > 0) return { Version: '2012-10-17', Statement: busStatements };
    if (resourceArn.startsWith('arn:aws:kms:')) {
      throw new Error(`no key policy for ${resourceArn}: KMS would refuse every request`);
    }
    return undefined;
  }

  /** CloudFormation intrinsics to plain values. */
  private resolve(node: Json): Json {
    if (Array.isArray(node)) return node.map((n) => this.resolve(n));
    if (node === null || typeof node !== 'object') return node;
    const o = node as Record<string, Json>;
    if ('Ref' in o) {
      const ref = o.Ref as string;
      if (PSEUDO[ref]) return PSEUDO[ref];
      const type = this.resources[ref]?.Type;
      if (type === 'AWS::S3::Bucket') return ref.toLowerCase();
      if (type === 'AWS::KMS::Key') return ref;
      return ref;
    }
    if ('Fn::GetAtt' in o) {
      const [id, attribute] = o['Fn::GetAtt'] as [string, string];
      if (attribute === 'Arn') return this.arn(id);
      return `${id}.${attribute}`;
    }
    if ('Fn::Join' in o) {
      const [delimiter, parts] = o['Fn::Join'] as [string, Json[]];
      return parts.map((p) => this.resolve(p) as string).join(delimiter);
    }
    if ('Fn::Sub' in o) {
      const text = o['Fn::Sub'] as string;
      return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
        if (PSEUDO[name]) return PSEUDO[name];
        const [id, attribute] = name.split('.');
        return attribute === 'Arn' ? this.arn(id!) : id!;
      });
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, this.resolve(v)]));
  }
}
