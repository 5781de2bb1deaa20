import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import {
  AuditTrail,
  DigestSigner,
  EventFanout,
  EventStream,
  LOG_ARCHIVE_OBJECT_LOCK_FLAG,
  LogArchive,
  LogPackager,
  OPENTRAIL_NEW_PROJECT_CONTEXT,
  OpentrailConfigError,
} from '../../lib';
import { cdkJson, newProjectStack, testStack } from './support/app';

/** A stack in an app without opentrail's (or any) feature flags: an existing project. */
function flaglessStack(): Stack {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  return new Stack(app, 'Existing', { env: { account: '123456789012', region: 'us-east-1' } });
}

function warnings(stack: Stack, id: string): string[] {
  return Annotations.fromStack(stack)
    .findWarning('*', Match.stringLikeRegexp(`.*`))
    .map((w) => (typeof w.entry.data === 'string' ? w.entry.data : JSON.stringify(w.entry.data)))
    .filter((text) => text.includes(id));
}

describe('Object Lock on the log archive', () => {
  it('is on, GOVERNANCE for 365 days, where the app sets the feature flag (new projects)', () => {
    const stack = newProjectStack(OPENTRAIL_NEW_PROJECT_CONTEXT);
    new AuditTrail(stack, 'Trail');
    const template = Template.fromStack(stack);

    const buckets = Object.entries(template.findResources('AWS::S3::Bucket'));
    const locked = buckets.filter(([, b]) => b.Properties.ObjectLockEnabled === true);
    expect(locked.map(([id]) => id)).toEqual([expect.stringMatching(/^TrailLogArchiveBucket/)]);
    expect(locked[0]![1].Properties.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 365 } },
    });
    // Not the access-log buckets (S3 refuses Object Lock log targets), nor failed records.
    expect(buckets.length).toBeGreaterThan(1);
  });

  it("new projects get the flag through OPENTRAIL_NEW_PROJECT_CONTEXT; this repository's own app, already deployed by users, does not (its log bucket would be replaced)", () => {
    expect(OPENTRAIL_NEW_PROJECT_CONTEXT[LOG_ARCHIVE_OBJECT_LOCK_FLAG]).toBe(true);
    expect(cdkJson.context[LOG_ARCHIVE_OBJECT_LOCK_FLAG]).toBeUndefined();
  });

  it('is off without the flag, and synth warns that deletes then depend on policies alone', () => {
    const stack = flaglessStack();
    new LogArchive(stack, 'Archive');

    Template.fromStack(stack).allResourcesProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: Match.absent(),
    });
    expect(warnings(stack, LOG_ARCHIVE_OBJECT_LOCK_FLAG)).toHaveLength(1);
  });

  it('does not warn when objectLockRetention is given', () => {
    const stack = flaglessStack();
    new LogArchive(stack, 'Archive', {
      objectLockRetention: s3.ObjectLockRetention.governance(Duration.days(30)),
    });

    expect(warnings(stack, 'no S3 Object Lock')).toEqual([]);
  });
});

describe('a log bucket opentrail did not create', () => {
  it('gets a warning listing what cannot be verified and the statements to add', () => {
    const stack = testStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Theirs', 'their-audit-bucket');
    new LogPackager(stack, 'Packager', {
      stream: new EventStream(stack, 'Events').stream,
      logBucket: bucket,
    });

    const [warning] = warnings(stack, 'was not created in this app');
    expect(warning).toContain('"Null": {"s3:if-none-match": "true"}');
    expect(warning).toContain('AWSLogs/*/CloudTrail-Digest/*');
    expect(warning).toContain('s3:DeleteObjectVersion');
    expect(warning).toContain('Object Lock');
  });
});

describe('the event bus', () => {
  it('is encrypted with the fan-out key', () => {
    const stack = testStack();
    const fanout = new EventFanout(stack, 'Fanout', {
      stream: new EventStream(stack, 'Events').stream,
    });

    Template.fromStack(stack).hasResourceProperties('AWS::Events::EventBus', {
      KmsKeyIdentifier: stack.resolve((fanout.encryptionKey as kms.Key).keyArn),
    });
  });

  it('passed in: a warning gives the policy opentrail cannot add', () => {
    const stack = testStack();
    new EventFanout(stack, 'Fanout', {
      stream: new EventStream(stack, 'Events').stream,
      eventBus: events.EventBus.fromEventBusName(stack, 'Theirs', 'their-bus'),
    });

    expect(warnings(stack, 'OnlyThePublisherSendsOpentrailSources')).toHaveLength(1);
  });
});

describe('log groups', () => {
  it('every log group of an AuditTrail is encrypted with a customer managed key', () => {
    const stack = testStack();
    new AuditTrail(stack, 'Trail', {
      packager: { trails: [{ name: 'opentrail', logFileValidation: true }] },
    });
    const groups = Object.entries(Template.fromStack(stack).findResources('AWS::Logs::LogGroup'));

    expect(groups.length).toBeGreaterThan(4);
    for (const [id, group] of groups) {
      expect([id, group.Properties.KmsKeyId]).toEqual([id, expect.anything()]);
    }
  });
});

describe('digest key windows', () => {
  const signer = (stack: Stack, options: Partial<ConstructorParameters<typeof DigestSigner>[2]>) =>
    new DigestSigner(stack, 'Signer', {
      logBucket: new LogArchive(stack, 'Archive').bucket,
      manifestTable: new LogPackager(stack, 'Packager', {
        stream: new EventStream(stack, 'Events').stream,
        logBucket: s3.Bucket.fromBucketName(stack, 'Theirs', 'their-audit-bucket'),
      }).manifestTable,
      ...options,
    });
  const previous = (stack: Stack, from: string, until: string) => ({
    key: kms.Key.fromKeyArn(stack, `Old${from}`, `arn:aws:kms:us-east-1:123456789012:key/${from}`),
    validFrom: from,
    validUntil: until,
  });

  it('refuses previous keys without signingKeyValidFrom', () => {
    const stack = testStack();
    expect(() =>
      signer(stack, {
        previousKeys: [previous(stack, '2025-01-01T00:00:00Z', '2026-01-01T00:00:00Z')],
      }),
    ).toThrow(/signingKeyValidFrom is not.*\[INVALID_DIGEST_KEYS\]/s);
  });

  it('refuses overlapping windows', () => {
    const stack = testStack();
    expect(() =>
      signer(stack, {
        signingKeyValidFrom: '2025-12-01T00:00:00Z',
        previousKeys: [previous(stack, '2025-01-01T00:00:00Z', '2026-01-01T00:00:00Z')],
      }),
    ).toThrow(/windows overlap/);
  });

  it('accepts windows that meet', () => {
    const stack = testStack();
    expect(() =>
      signer(stack, {
        signingKeyValidFrom: '2026-01-01T00:00:00Z',
        previousKeys: [
          previous(stack, '2024-01-01T00:00:00Z', '2025-01-01T00:00:00Z'),
          previous(stack, '2025-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
        ],
      }),
    ).not.toThrow();
  });
});

describe('trail prefixes', () => {
  it.each([['logs/*'], ['a/../b'], ['..'], ['a/./b']])('refuses %s', (prefix) => {
    const build = () => {
      const stack = testStack();
      return new LogPackager(stack, 'Packager', {
        stream: new EventStream(stack, 'Events').stream,
        logBucket: new LogArchive(stack, 'Archive').bucket,
        trails: [{ name: 'opentrail', prefix }],
      });
    };

    expect(build).toThrow(OpentrailConfigError);
    expect(build).toThrow(/no "\*".*"\." or "\.\." segments/s);
  });

  it('accepts dots inside a segment', () => {
    const stack = testStack();
    expect(
      () =>
        new LogPackager(stack, 'Packager', {
          stream: new EventStream(stack, 'Events').stream,
          logBucket: new LogArchive(stack, 'Archive').bucket,
          trails: [{ name: 'opentrail', prefix: 'v1.2/logs..old' }],
        }),
    ).not.toThrow();
  });
});

describe('API throttling', () => {
  it('throttles PutAuditEvents and the query API separately', () => {
    const stack = testStack();
    new AuditTrail(stack, 'Trail', {
      api: {
        throttlingRateLimit: 300,
        throttlingBurstLimit: 600,
        queryThrottlingRateLimit: 7,
        queryThrottlingBurstLimit: 9,
      },
    });

    Template.fromStack(stack).hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([
        Match.objectLike({
          ResourcePath: '/~1PutAuditEvents',
          HttpMethod: 'POST',
          ThrottlingRateLimit: 300,
          ThrottlingBurstLimit: 600,
        }),
        Match.objectLike({
          ResourcePath: '/',
          HttpMethod: 'POST',
          ThrottlingRateLimit: 7,
          ThrottlingBurstLimit: 9,
        }),
      ]),
    });
  });
});
