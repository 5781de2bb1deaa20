import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import {
  AuditTrail,
  EventFanout,
  EventHistory,
  EventStream,
  LogArchive,
  LogPackager,
} from '../../lib';

/**
 * A consumer's app may set none of cdk.json's feature flags (the repository's own tests run with
 * them): the constructs must synthesize there too, with the same secure settings.
 */
function flaglessStack(): Stack {
  // Bundling skipped as in the other construct tests; no feature flag set.
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  return new Stack(app, 'Consumer', { env: { account: '123456789012', region: 'eu-west-1' } });
}

/** Every bucket's logical ID and properties, and the bucket policies' statements. */
function accessLogSetup(template: Template) {
  const buckets = template.findResources('AWS::S3::Bucket');
  const logTargets = Object.keys(buckets).filter((id) =>
    Object.values(buckets).some((bucket) =>
      JSON.stringify(bucket.Properties?.LoggingConfiguration ?? {}).includes(`"${id}"`),
    ),
  );
  const policies = Object.values(template.findResources('AWS::S3::BucketPolicy'));
  return { buckets, logTargets, policies };
}

describe('in an app without feature flags', () => {
  it.each([
    ['AuditTrail', (stack: Stack) => new AuditTrail(stack, 'Trail')],
    ['LogArchive', (stack: Stack) => new LogArchive(stack, 'Archive')],
    [
      'LogPackager',
      (stack: Stack) =>
        new LogPackager(stack, 'Packager', {
          stream: new EventStream(stack, 'Events').stream,
          logBucket: new LogArchive(stack, 'Archive').bucket,
        }),
    ],
    [
      'EventHistory',
      (stack: Stack) =>
        new EventHistory(stack, 'History', { stream: new EventStream(stack, 'Events').stream }),
    ],
    [
      'EventFanout',
      (stack: Stack) =>
        new EventFanout(stack, 'Fanout', { stream: new EventStream(stack, 'Events').stream }),
    ],
  ])(
    '%s synthesizes, its access-log buckets granting log delivery by bucket policy, never by ACL',
    (_name, build) => {
      const stack = flaglessStack();
      build(stack);
      const template = Template.fromStack(stack);

      const { buckets, logTargets, policies } = accessLogSetup(template);
      expect(logTargets.length).toBeGreaterThan(0);
      for (const bucket of Object.values(buckets)) {
        expect(bucket.Properties.AccessControl).toBeUndefined();
        expect(bucket.Properties.OwnershipControls).toEqual({
          Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }],
        });
      }
      for (const target of logTargets) {
        const policy = policies.find((p) => p.Properties.Bucket.Ref === target);
        expect(JSON.stringify(policy?.Properties.PolicyDocument.Statement)).toContain(
          'logging.s3.amazonaws.com',
        );
      }
    },
  );
});
