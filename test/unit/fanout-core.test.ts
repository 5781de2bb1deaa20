import { createHash } from 'node:crypto';
import {
  batchForPutEvents,
  DETAIL_TYPES,
  entrySizeBytes,
  fanoutEventOf,
  MAX_ENTRY_BYTES,
  toOpentrailPattern,
} from '../../lambda/core/fanout';
import { canonicalJson, opentrailEventKey } from '../../lambda/core/event-key';
import type { TrailConfig } from '../../lambda/core/config';
import { deliveryNoticeMessage } from '../../lambda/core/notices';
import { validateTrailConfigs } from '../../lambda/core/selectors';
import { completeRecord } from '../fixtures/records';

function eventOf(record: Record<string, unknown>) {
  return fanoutEventOf(JSON.stringify(record), record);
}

describe('the EventBridge entry and envelope of a record (docs/formats.md#eventbridge-envelopes)', () => {
  it.each([
    ['AwsApiCall', 's3.amazonaws.com', 'opentrail.s3', 'AWS API Call via CloudTrail'],
    [
      'AwsConsoleSignIn',
      'signin.amazonaws.com',
      'opentrail.signin',
      'AWS Console Sign In via CloudTrail',
    ],
    [
      'AwsConsoleSignIn',
      'sso.amazonaws.com',
      'opentrail.signin',
      'AWS Console Sign In via CloudTrail',
    ],
    ['AwsConsoleAction', 'ec2.amazonaws.com', 'opentrail.ec2', 'AWS Console Action via CloudTrail'],
    ['AwsServiceEvent', 'kms.amazonaws.com', 'opentrail.kms', 'AWS Service Event via CloudTrail'],
    [
      'AwsCloudTrailInsight',
      'cloudtrail.amazonaws.com',
      'opentrail.cloudtrail',
      'AWS Insight via CloudTrail',
    ],
    ['SomethingNew', 'orders.example.com', 'opentrail.orders', 'AWS API Call via CloudTrail'],
    [undefined, 'billing', 'opentrail.billing', 'AWS API Call via CloudTrail'],
  ])(
    'eventType %s from %s: source %s, detail-type %s',
    (eventType, eventSource, source, detailType) => {
      const record = completeRecord({ eventType, eventSource });
      const { entry, envelope } = eventOf(record);
      expect(entry.Source).toBe(source);
      expect(entry.DetailType).toBe(detailType);
      expect(envelope.source).toBe(source);
      expect(envelope['detail-type']).toBe(detailType);
    },
  );

  it('an Insight by eventCategory alone goes out as an Insight', () => {
    const { entry } = eventOf(
      completeRecord({ eventType: 'AwsApiCall', eventCategory: 'Insight' }),
    );
    expect([entry.Source, entry.DetailType]).toEqual([
      'opentrail.cloudtrail',
      DETAIL_TYPES.AwsCloudTrailInsight,
    ]);
  });

  it('Detail is the record text verbatim; Time is eventTime; Resources are the resource ARNs', () => {
    const record = completeRecord({
      eventTime: '2024-05-01T11:58:07Z',
      resources: [
        { ARN: 'arn:aws:s3:::bucket-a', type: 'AWS::S3::Bucket' },
        { ARNPrefix: 'arn:aws:s3:::bucket-b/' },
        { ARN: 'arn:aws:s3:::bucket-a', type: 'AWS::S3::Bucket' },
        { ARN: 'arn:aws:iam::111111111111:role/r' },
      ],
    });
    const text = ` ${JSON.stringify(record)}`;
    const { entry } = fanoutEventOf(text, record);
    expect(entry.Detail).toBe(text);
    expect(entry.Time).toBe('2024-05-01T11:58:07Z');
    expect(entry.Resources).toEqual(['arn:aws:s3:::bucket-a', 'arn:aws:iam::111111111111:role/r']);
  });

  it('the local envelope has exactly the docs/formats.md#eventbridge-envelopes keys, in order', () => {
    const record = completeRecord({ awsRegion: 'eu-west-3', recipientAccountId: '222233334444' });
    const { envelope } = eventOf(record);
    expect(Object.keys(envelope)).toEqual([
      'version',
      'id',
      'detail-type',
      'source',
      'account',
      'time',
      'region',
      'resources',
      'detail',
    ]);
    expect(envelope).toMatchObject({
      version: '0',
      id: opentrailEventKey({ detail: record }),
      account: '222233334444',
      region: 'eu-west-3',
      time: record.eventTime,
      resources: [],
      detail: record,
    });
  });
});

describe('opentrailEventKey: the key fan-out consumers drop repeats by', () => {
  const ID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';

  it('is the eventID, a colon and the hex SHA-256 of the RFC 8785 canonical JSON of detail', () => {
    const detail = { eventName: 'ListUsers', eventID: ID, b: [2, { z: 1, a: 'é' }] };
    const canonical = '{"b":[2,{"a":"é","z":1}],"eventID":"' + ID + '","eventName":"ListUsers"}';
    expect(canonicalJson(detail)).toBe(canonical);
    expect(opentrailEventKey({ detail })).toBe(
      `${ID}:${createHash('sha256').update(canonical, 'utf8').digest('hex')}`,
    );
  });

  it('is the same whatever the member order, at every depth (a redelivery keeps its key)', () => {
    const a = { eventID: ID, userIdentity: { type: 'Root', arn: 'x' }, eventName: 'A' };
    const b = { eventName: 'A', userIdentity: { arn: 'x', type: 'Root' }, eventID: ID };
    expect(opentrailEventKey({ detail: a })).toBe(opentrailEventKey({ detail: b }));
  });

  it('differs for a forged record that reuses a real eventID with other content', () => {
    const real = completeRecord({ eventID: ID, eventName: 'DeleteBucket' });
    const forged = { ...real, eventName: 'ListBuckets' };
    expect(opentrailEventKey({ detail: forged })).not.toBe(opentrailEventKey({ detail: real }));
    expect(opentrailEventKey({ detail: forged }).startsWith(`${ID}:`)).toBe(true);
  });

  it('sorts member names by UTF-16 code units, as RFC 8785 says (an astral name before U+FF5E)', () => {
    // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FF5E in UTF-16 order.
    expect(canonicalJson({ '\uff5e': 1, '\u{1f600}': 2, a: 3 })).toBe(
      '{"a":3,"\u{1f600}":2,"\uff5e":1}',
    );
  });

  it('refuses a detail that is not a JSON object', () => {
    expect(() => opentrailEventKey({ detail: 'text' })).toThrow(/detail must be the record/);
  });
});

describe('entry size as EventBridge counts it', () => {
  it.each([
    [
      'ascii',
      {
        Source: 'opentrail.s3',
        DetailType: 'AWS API Call via CloudTrail',
        Detail: '{"a":1}',
        Time: 'x',
        Resources: [],
      },
      14 + 12 + 27 + 7,
    ],
    [
      'multibyte detail and resources',
      { Source: 's', DetailType: 'd', Detail: '{"é":"€"}', Time: '', Resources: ['arn:é', 'r'] },
      14 + 1 + 1 + 12 + 6 + 1,
    ],
  ])('%s', (_name, entry, expected) => {
    expect(entrySizeBytes(entry)).toBe(expected);
  });
});

describe('PutEvents batching', () => {
  const sized = (sizes: number[]) => sizes.map((sizeBytes, i) => ({ i, sizeBytes }));
  const shape = (batches: { i: number }[][]) => batches.map((b) => b.map((e) => e.i));

  it.each([
    ['25 small entries: 10, 10, 5', Array.from({ length: 25 }, () => 100), [10, 10, 5]],
    ['256 KB reached before 10 entries', [100_000, 100_000, 100_000, 10], [2, 2]],
    ['exactly 256 KB fits one call', [MAX_ENTRY_BYTES - 10, 10], [2]],
    ['over 256 KB alone is never placed', [10, MAX_ENTRY_BYTES + 1, 10], [2]],
    ['nothing', [], []],
  ] as [string, number[], number[]][])('%s', (_name, sizes, counts) => {
    const batches = batchForPutEvents(sized(sizes));
    expect(batches.map((b) => b.length)).toEqual(counts);
    for (const batch of batches) {
      expect(batch.length).toBeLessThanOrEqual(10);
      expect(batch.reduce((s, e) => s + e.sizeBytes, 0)).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
    }
  });

  it('keeps stream order', () => {
    expect(shape(batchForPutEvents(sized([1, 2, 3])))).toEqual([[0, 1, 2]]);
  });
});

describe('CloudTrail-style rule patterns on the opentrail bus', () => {
  it('turns aws.<service> sources into opentrail.<service>, keeping the rest', () => {
    const pattern = {
      source: ['aws.s3'],
      'detail-type': ['AWS API Call via CloudTrail'],
      detail: { eventName: ['DeleteBucket'] },
    };
    expect(toOpentrailPattern(pattern)).toEqual({
      source: ['opentrail.s3'],
      'detail-type': ['AWS API Call via CloudTrail'],
      detail: { eventName: ['DeleteBucket'] },
    });
    expect(pattern.source).toEqual(['aws.s3']);
  });

  it.each([
    [
      ['aws.signin', 'aws.iam'],
      ['opentrail.signin', 'opentrail.iam'],
    ],
    [[{ prefix: 'aws.' }], [{ prefix: 'opentrail.' }]],
    [[{ prefix: 'aws.ec' }], [{ prefix: 'opentrail.ec' }]],
    [[{ 'anything-but': ['aws.kms'] }], [{ 'anything-but': ['opentrail.kms'] }]],
    [['opentrail.orders'], ['opentrail.orders']],
    ['aws.s3', ['opentrail.s3']],
  ])('source %j becomes %j', (source, expected) => {
    expect(toOpentrailPattern({ source }).source).toEqual(expected);
  });

  it('leaves a pattern without source as it is', () => {
    expect(toOpentrailPattern({ detail: { eventName: ['X'] } })).toEqual({
      detail: { eventName: ['X'] },
    });
  });
});

describe('SNS delivery notice (docs/formats.md#delivery-notices)', () => {
  it('is {"s3Bucket","s3ObjectKey":[key]}', () => {
    expect(deliveryNoticeMessage('b', 'AWSLogs/1/CloudTrail/r/k.json.gz')).toBe(
      '{"s3Bucket":"b","s3ObjectKey":["AWSLogs/1/CloudTrail/r/k.json.gz"]}',
    );
  });
});

describe('trail delivery settings (validateTrailConfigs)', () => {
  it.each([
    [{ deliveryNotices: {} }, []],
    [{ deliveryNotices: { topicArn: 'arn:aws:sns:us-east-1:123456789012:notices' } }, []],
    [{ cloudWatchLogs: { logGroupName: '/opentrail/audit', retentionDays: 90 } }, []],
    [
      { deliveryNotices: { topicArn: 'notices' } },
      [/deliveryNotices.topicArn "notices" must be an SNS topic ARN/],
    ],
    [{ cloudWatchLogs: { retentionDays: 42 } }, [/retentionDays 42 must be one of 1, 3, 5/]],
    [{ cloudWatchLogs: { logGroupName: 'bad name' } }, [/logGroupName "bad name" must be/]],
    [{ cloudWatchLogs: { kmsKeyArn: 'alias/x' } }, [/kmsKeyArn "alias\/x" must be a KMS key ARN/]],
  ] as [Partial<TrailConfig>, RegExp[]][])('%j', (settings, expected) => {
    const errors = validateTrailConfigs([{ name: 'audit', ...settings }], 5);
    expect(errors).toHaveLength(expected.length);
    expected.forEach((pattern, i) => expect(errors[i]).toMatch(pattern));
  });
});
