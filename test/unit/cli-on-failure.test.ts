import { failedBucketsFromOutputs, resolveRedriveSettings } from '../../cli/redrive';
import {
  copySource,
  decodeFailedBatch,
  parseEndpointsFile,
  redrivenKey,
} from '../../cli/shared/on-failure';

const STREAM_ARN = 'arn:aws:kinesis:us-east-1:000000000000:stream/opentrail';

function kinesisEvent(records: { data: string; partitionKey: string }[]) {
  return {
    Records: records.map((r, i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: r.partitionKey,
        sequenceNumber: `4959${i}`,
        data: Buffer.from(r.data).toString('base64'),
      },
      eventSource: 'aws:kinesis',
      eventID: `shardId-000000000000:4959${i}`,
      eventSourceARN: STREAM_ARN,
    })),
  };
}

function onFailureObject(payload: unknown): string {
  return JSON.stringify({
    requestContext: {
      requestId: 'r',
      functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:packager',
      condition: 'RetryAttemptsExhausted',
      approximateInvokeCount: 3,
    },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    version: '1.0',
    timestamp: '2024-05-01T12:00:00.000Z',
    KinesisBatchInfo: {
      shardId: 'shardId-000000000000',
      startSequenceNumber: '49590',
      endSequenceNumber: '49591',
      approximateArrivalOfFirstRecord: '2024-05-01T11:59:00.000Z',
      approximateArrivalOfLastRecord: '2024-05-01T11:59:01.000Z',
      batchSize: 2,
      streamArn: STREAM_ARN,
    },
    payload,
  });
}

describe('redrive helpers', () => {
  it('moves an object under redriven/ and encodes its copy source', () => {
    expect(redrivenKey('aws/lambda/a b/1')).toBe('redriven/aws/lambda/a b/1');
    expect(copySource('failed', 'aws/lambda/a b+c/ü')).toBe('failed/aws/lambda/a%20b%2Bc/%C3%BC');
  });

  it('reads the fields redrive uses from endpoints.json', () => {
    const text = JSON.stringify({
      api: 'http://127.0.0.1:1',
      s3: 'http://127.0.0.1:2',
      kinesis: 'http://127.0.0.1:3',
      region: 'us-east-1',
      failedBucket: 'fb',
      stream: 's',
      lambda: 'http://127.0.0.1:1',
      accountId: '1',
    });
    expect(parseEndpointsFile(text, 'e.json')).toEqual({
      s3: 'http://127.0.0.1:2',
      kinesis: 'http://127.0.0.1:3',
      region: 'us-east-1',
      failedBucket: 'fb',
      stream: 's',
      lambda: 'http://127.0.0.1:1',
    });
    expect(() => parseEndpointsFile('{"s3": 5}', 'e.json')).toThrow(
      '--endpoints e.json: field s3 must be a non-empty string',
    );
    expect(() => parseEndpointsFile('[', 'e.json')).toThrow('--endpoints e.json is not JSON');
  });

  const noFlags = { prefix: '', dryRun: false, force: false };
  const file = {
    s3: 'http://127.0.0.1:2',
    kinesis: 'http://127.0.0.1:3',
    lambda: 'http://127.0.0.1:1',
    region: 'eu-west-1',
    failedBucket: 'fb',
    stream: 's',
    accessKeyId: 'OTLKEY',
    secretAccessKey: 'secret',
  };

  it("takes settings from the endpoints file, with the runtime's access key for its endpoints", () => {
    expect(resolveRedriveSettings(noFlags, file, {})).toEqual({
      buckets: ['fb'],
      prefix: '',
      region: 'eu-west-1',
      s3Endpoint: 'http://127.0.0.1:2',
      kinesisEndpoint: 'http://127.0.0.1:3',
      lambdaEndpoint: 'http://127.0.0.1:1',
      credentials: { accessKeyId: 'OTLKEY', secretAccessKey: 'secret' },
    });
  });

  it('uses the standard credential chain for a loopback endpoint the endpoints file does not name', () => {
    const settings = resolveRedriveSettings(
      { ...noFlags, s3Endpoint: 'http://127.0.0.1:9000' },
      file,
      {},
    );

    expect(settings).toEqual(expect.objectContaining({ s3Endpoint: 'http://127.0.0.1:9000' }));
    expect(settings).not.toHaveProperty('credentials');
  });

  it('lets flags win over the endpoints file, and reads every bucket given', () => {
    const settings = resolveRedriveSettings(
      {
        ...noFlags,
        bucket: ['b2', 'b3'],
        region: 'us-west-2',
        s3Endpoint: 'https://s3.example.com',
      },
      file,
      {},
      ['out1'],
    );
    expect(settings).toEqual(
      expect.objectContaining({
        buckets: ['b2', 'b3', 'out1', 'fb'],
        region: 'us-west-2',
        s3Endpoint: 'https://s3.example.com',
      }),
    );
    expect(settings).not.toHaveProperty('credentials');
  });

  it('names the missing flag', () => {
    expect(resolveRedriveSettings(noFlags, {}, {})).toBe(
      'no failed-records bucket: pass --endpoints FILE (embedded runtime), --outputs FILE (cdk deploy --outputs-file) or --bucket',
    );
    expect(resolveRedriveSettings({ ...noFlags, bucket: ['b'] }, {}, {})).toBe(
      '--region is required (or AWS_REGION, or --endpoints FILE with a region)',
    );
    expect(
      resolveRedriveSettings({ ...noFlags, bucket: ['b'] }, {}, { AWS_REGION: 'ap-south-1' }),
    ).toEqual(expect.objectContaining({ region: 'ap-south-1' }));
  });

  it("finds every consumer's failed-records bucket in a cdk deploy --outputs-file", () => {
    const outputs = JSON.stringify({
      Opentrail: {
        FailedRecordsBucketName: 'packager-failed',
        IndexerFailedRecordsBucketName: 'indexer-failed',
        PublisherFailedRecordsBucketName: 'publisher-failed',
        LogBucketName: 'logs',
      },
    });
    expect(failedBucketsFromOutputs(outputs, 'o.json')).toEqual([
      'packager-failed',
      'indexer-failed',
      'publisher-failed',
    ]);
    expect(() => failedBucketsFromOutputs('{"S":{"LogBucketName":"l"}}', 'o.json')).toThrow(
      '--outputs o.json names no *FailedRecordsBucketName output',
    );
  });
});

describe('failed batch decoding (what redrive replays)', () => {
  const replayable = (overrides: Record<string, unknown> = {}) => {
    const event = kinesisEvent([{ data: '{"eventID":"1"}', partitionKey: 'pk-1' }]);
    const record = event.Records[0]! as Record<string, unknown>;
    (record.kinesis as Record<string, unknown>).approximateArrivalTimestamp = 1_714_564_740;
    Object.assign(record.kinesis as Record<string, unknown>, overrides);
    return event;
  };

  it('returns the consumer, the original event unchanged and the first arrival', () => {
    const event = replayable();
    const batch = decodeFailedBatch(onFailureObject(JSON.stringify(event)));
    expect(batch).toEqual({
      functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:packager',
      info: {
        shardId: 'shardId-000000000000',
        startSequenceNumber: '49590',
        endSequenceNumber: '49591',
        streamArn: STREAM_ARN,
        firstArrivalMs: Date.parse('2024-05-01T11:59:00.000Z'),
      },
      event,
      records: 1,
    });
  });

  it('returns no event for an object without payload', () => {
    const batch = decodeFailedBatch(onFailureObject(null));
    expect(batch.event).toBeUndefined();
    expect(batch.records).toBe(2);
  });

  it.each<[string, unknown, string]>([
    [
      'a record without its arrival time',
      replayable({ approximateArrivalTimestamp: undefined }),
      'payload.Records[0].kinesis.approximateArrivalTimestamp must be a positive number',
    ],
    [
      'a record whose eventID is not its shard and sequence number',
      replayable({ sequenceNumber: '1' }),
      'payload.Records[0].eventID must be "shardId-000000000000:1"',
    ],
    ['an empty batch', { Records: [] }, 'with at least one record'],
  ])('refuses %s, naming the field', (_, payload, message) => {
    expect(() => decodeFailedBatch(onFailureObject(payload))).toThrow(message);
  });

  it('refuses an object that names no Lambda function', () => {
    const text = onFailureObject(JSON.stringify(replayable())).replace(
      'arn:aws:lambda:us-east-1:000000000000:function:packager',
      'packager',
    );
    expect(() => decodeFailedBatch(text)).toThrow(
      'requestContext.functionArn packager is not a Lambda function ARN',
    );
  });
});
