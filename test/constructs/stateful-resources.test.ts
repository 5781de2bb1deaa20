/**
 * Deployed stacks survive every refactor: every stateful resource of the default stack and of
 * the all-options stack keeps its logical ID and type.
 *
 * CloudFormation identifies a resource by its logical ID. Renaming a construct ID, moving a
 * construct under another parent or changing its L2 class changes the logical ID (or the
 * type), and the next deploy creates a new, empty resource and deletes (or, with RETAIN,
 * orphans) the old one: the log bucket, the manifest and history tables, the signing key
 * whose public key verifies old digests, the stream with its unread records, the mappings
 * with their checkpoints. A snapshot would not stop that (`jest -u` accepts anything), so
 * the expected resources live in `stateful-resources.json`, edited by hand, never regenerated.
 *
 * Changing the list on purpose (it is part of the review):
 * - A NEW stateful resource: this test fails naming it and printing the line to add. Paste the
 *   line into the stack's section of `test/constructs/stateful-resources.json` (keep the
 *   sections sorted by type, then logical ID) in the commit that adds the construct.
 * - A NEW stateful TYPE (a resource kind that holds data or an identity others hold): add it
 *   to STATEFUL_TYPES below with the reason, then list its resources as above.
 * - A resource that MUST go or move: prefer keeping the ID (keep the construct path, or
 *   `(node.defaultChild as CfnResource).overrideLogicalId(...)` with the old ID). If it really
 *   changes, ship a tested migration (e.g. `cdk import` of the retained resource, data copy)
 *   and an "Upgrading" entry in the CHANGELOG, then edit its line in the JSON in that commit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { OpentrailStack, parseAppConfig, stackPropsFromConfig } from '../../lib';
import { cdkJson, testApp } from './support/app';

/**
 * The resource types whose replacement loses data or an identity held outside the stack. Not
 * listed, because a replacement loses neither: functions, roles and policies, alarms and metric
 * filters, schedules, bucket and topic policies, API methods, stages and deployments (the stage
 * name, not the resource, is in the URL), the WAF association.
 */
const STATEFUL_TYPES: Readonly<Record<string, string>> = {
  'AWS::ApiGateway::RestApi':
    'its ID is in the URL every producer and the CLI send to: a new API is a new URL',
  'AWS::S3::Bucket': 'holds the log files, digests, failed batches and access logs',
  'AWS::DynamoDB::Table': 'holds the manifest, dedup claims, digest chain and 90-day history',
  'AWS::KMS::Key': 'a new key cannot decrypt what the old one encrypted, nor verify old digests',
  'AWS::Kinesis::Stream': 'holds accepted events not yet packaged (up to its retention)',
  'AWS::Lambda::EventSourceMapping':
    'holds each consumer’s stream position: a new one starts over (re-reads) or skips records',
  'AWS::Events::EventBus':
    'other stacks and accounts put rules on it by name/ARN: a new bus drops them all',
  'AWS::Events::Archive': 'holds the archived events kept for replay',
  'AWS::Logs::LogGroup':
    'holds the trail’s CloudWatch Logs copy (metric filters, alarms) and the access/function logs',
  'AWS::SNS::Topic':
    'subscriptions made outside the stack (queues, e-mail) live on it: a new topic has none',
};

/** Logical ID → resource type, as committed in stateful-resources.json. */
type StatefulList = Record<string, string>;
interface StatefulFile {
  readonly default: StatefulList;
  readonly allOptions: StatefulList;
}

const LIST_FILE = path.join(__dirname, 'stateful-resources.json');
const expected = JSON.parse(fs.readFileSync(LIST_FILE, 'utf8')) as StatefulFile;

/** The stack `cdk deploy` deploys: bin/app.ts's stack with cdk.json's configuration. */
function defaultStack(): Stack {
  const app = testApp();
  const config = parseAppConfig(app, cdkJson.context.opentrail);
  return new OpentrailStack(app, 'Opentrail', stackPropsFromConfig(config));
}

/** Every option that creates a resource of its own turned on. */
function allOptionsStack(): Stack {
  return new OpentrailStack(testApp(), 'Opentrail', {
    api: {
      producerAccounts: ['111122223333'],
      producerOrganizationIds: ['o-a1b2c3d4e5'],
      recipientAllowList: { accounts: ['111122223333'] },
      webAclArn: 'arn:aws:wafv2:us-east-1:123456789012:regional/webacl/opentrail/0000',
      tracing: true,
    },
    stream: { streamMode: kinesis.StreamMode.PROVISIONED, shardCount: 2 },
    archive: {
      objectLockRetention: s3.ObjectLockRetention.governance(Duration.days(365)),
      transitionToInfrequentAccessAfter: Duration.days(30),
    },
    packager: {
      tracing: true,
      batchSize: 100,
      trails: [
        {
          name: 'opentrail',
          logFileValidation: true,
          deliveryNotices: {},
          cloudWatchLogs: { retentionDays: 90 },
        },
        { name: 'org', prefix: 'org', organizationId: 'o-a1b2c3d4e5', logFileValidation: true },
      ],
    },
    digests: { tracing: true },
    history: { tracing: true },
    fanout: {
      eventBusName: 'opentrail',
      archiveRetention: Duration.days(30),
      securityAlarms: {},
      tracing: true,
    },
    insights: { tracing: true },
  });
}

/**
 * What would make a deploy of `stack` replace or delete a listed resource, or what is stateful
 * and not yet listed; one message per finding, empty when the stack matches the list.
 */
function statefulDrift(name: keyof StatefulFile, list: StatefulList, stack: Stack): string[] {
  const resources = Template.fromStack(stack).toJSON().Resources as Record<
    string,
    { Type: string }
  >;
  const findings: string[] = [];
  for (const [id, type] of Object.entries(list)) {
    const actual = resources[id]?.Type;
    if (actual === undefined) {
      findings.push(
        `${type} ${id} is gone from the ${name} stack: a deploy would delete (or orphan) it and ` +
          `lose what it holds. Keep its construct ID and path (or overrideLogicalId), or ship a ` +
          `tested migration and then remove it from test/constructs/stateful-resources.json.`,
      );
    } else if (actual !== type) {
      findings.push(
        `${id} in the ${name} stack changed type from ${type} to ${actual}: a deploy would ` +
          `replace it. Keep the type, or ship a tested migration and edit its line in ` +
          `test/constructs/stateful-resources.json.`,
      );
    }
  }
  for (const [id, { Type }] of Object.entries(resources)) {
    if (STATEFUL_TYPES[Type] !== undefined && list[id] === undefined) {
      findings.push(
        `${Type} ${id} in the ${name} stack is stateful and not listed. If it is meant to ` +
          `exist, add  "${id}": "${Type}"  to "${name}" in ` +
          `test/constructs/stateful-resources.json (see this test's header); if it replaces a ` +
          `listed resource, keep the old logical ID instead.`,
      );
    }
  }
  return findings;
}

describe('stateful resources keep their logical IDs and types', () => {
  it('the default stack (cdk.json configuration) matches the committed list', () => {
    expect(statefulDrift('default', expected.default, defaultStack())).toEqual([]);
  });

  it('the all-options stack matches the committed list', () => {
    expect(statefulDrift('allOptions', expected.allOptions, allOptionsStack())).toEqual([]);
  });

  it('the list names only stateful types, and every stateful type of the stacks', () => {
    const listed = new Set([
      ...Object.values(expected.default),
      ...Object.values(expected.allOptions),
    ]);
    expect([...listed].sort()).toEqual(Object.keys(STATEFUL_TYPES).sort());
  });
});

describe('the check fails on a planted change', () => {
  it('reports a renamed bucket as gone and its new ID as unlisted', () => {
    const stack = defaultStack();
    const bucket = (stack as OpentrailStack).auditTrail.archive.bucket.node
      .defaultChild as s3.CfnBucket;
    bucket.overrideLogicalId('RenamedLogBucket');

    const findings = statefulDrift('default', expected.default, stack);

    expect(findings).toEqual([
      expect.stringMatching(/^AWS::S3::Bucket AuditTrailLogArchiveBucket[0-9A-F]{8} is gone/),
      expect.stringMatching(
        /^AWS::S3::Bucket RenamedLogBucket in the default stack is stateful and not listed\. .*add {2}"RenamedLogBucket": "AWS::S3::Bucket"/,
      ),
    ]);
  });

  it('reports a listed resource whose type changed (a replacement)', () => {
    const id = Object.keys(expected.default).find((key) =>
      key.startsWith('AuditTrailEventStream'),
    )!;
    const list = { ...expected.default, [id]: 'AWS::KinesisFirehose::DeliveryStream' };

    expect(statefulDrift('default', list, defaultStack())).toEqual([
      `${id} in the default stack changed type from AWS::KinesisFirehose::DeliveryStream to ` +
        `AWS::Kinesis::Stream: a deploy would replace it. Keep the type, or ship a tested ` +
        `migration and edit its line in test/constructs/stateful-resources.json.`,
    ]);
  });

  it('reports a new stateful resource that nobody listed, saying how to add it', () => {
    const stack = defaultStack();
    new s3.Bucket(stack, 'Extra');

    expect(statefulDrift('default', expected.default, stack)).toEqual([
      expect.stringMatching(
        /^AWS::S3::Bucket Extra[0-9A-F]{8} in the default stack is stateful and not listed\. If it is meant to exist, add/,
      ),
    ]);
  });
});
