import {
  replayFailedBatches,
  type FailedRecordsStore,
  type InvokeOutcome,
} from '../../cli/shared/redrive-replay';

const ARN = 'arn:aws:lambda:us-east-1:111122223333:function:opentrail-packager';
const SHARD = 'shardId-000000000000';

/** A Lambda S3 on-failure object carrying its batch (two records) as payload. */
function onFailureObject(first: number): string {
  const records = [first, first + 1].map((n) => ({
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: 'p',
      sequenceNumber: String(n),
      data: Buffer.from(`{"n":${n}}`).toString('base64'),
      approximateArrivalTimestamp: 1_700_000_000,
    },
    eventSource: 'aws:kinesis',
    eventID: `${SHARD}:${n}`,
  }));
  return JSON.stringify({
    requestContext: { functionArn: ARN },
    KinesisBatchInfo: {
      shardId: SHARD,
      startSequenceNumber: String(first),
      endSequenceNumber: String(first + 1),
      streamArn: 'arn:aws:kinesis:us-east-1:111122223333:stream/opentrail',
      approximateArrivalOfFirstRecord: '2023-11-14T22:13:20.000Z',
      batchSize: 2,
    },
    payload: JSON.stringify({ Records: records }),
  });
}

/** Objects in memory, listed in key order; `failCopy` makes copies of that key throw. */
function memoryStore(objects: Map<string, string>, failCopy?: string): FailedRecordsStore {
  return {
    list: async (_bucket, prefix, pageSize, token) => {
      const keys = [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
      const from = token ? Number(token) : 0;
      const page = keys.slice(from, from + pageSize);
      return from + pageSize < keys.length
        ? { keys: page, nextToken: String(from + pageSize) }
        : { keys: page };
    },
    read: async (_bucket, key) => objects.get(key) ?? '',
    copy: async (_bucket, from, to) => {
      if (from === failCopy) throw new Error('AccessDenied');
      objects.set(to, objects.get(from)!);
    },
    delete: async (_bucket, key) => {
      objects.delete(key);
    },
  };
}

describe('redrive replay over ports (no emulators)', () => {
  it('invokes the consumer with each batch, then moves the object to redriven/ (pages included)', async () => {
    const objects = new Map([1, 3, 5].map((n) => [`aws/lambda/k${n}`, onFailureObject(n)]));
    const originals = new Map(objects);
    const invoked: unknown[] = [];
    const report = await replayFailedBatches({
      store: memoryStore(objects),
      buckets: ['failed'],
      pageSize: 2,
      invoke: async (arn, event): Promise<InvokeOutcome> => {
        expect(arn).toBe(ARN);
        invoked.push(event);
        return { payload: null };
      },
    });
    expect(report).toMatchObject({ objects: 3, records: 6, failed: 0 });
    expect(invoked).toHaveLength(3);
    // What is really stored: every original, unchanged, under redriven/ and nothing else.
    expect([...objects.keys()].sort()).toEqual([
      'redriven/aws/lambda/k1',
      'redriven/aws/lambda/k3',
      'redriven/aws/lambda/k5',
    ]);
    for (const [key, text] of originals) expect(objects.get(`redriven/${key}`)).toBe(text);
  });

  it('leaves the object in place when the consumer fails or reports batch item failures', async () => {
    const objects = new Map([
      ['a', onFailureObject(1)],
      ['b', onFailureObject(3)],
    ]);
    const report = await replayFailedBatches({
      store: memoryStore(objects),
      buckets: ['failed'],
      invoke: async (_arn, event) =>
        JSON.stringify(event).includes(`${SHARD}:1"`)
          ? { functionError: 'Unhandled: boom', payload: null }
          : { payload: { batchItemFailures: [{ itemIdentifier: '3' }] } },
    });
    expect(report.failed).toBe(2);
    expect(report.failures.map((f) => [f.key, f.stage])).toEqual([
      ['a', 'invoke'],
      ['b', 'invoke'],
    ]);
    expect(report.failures[0]!.errorMessage).toContain('Unhandled: boom');
    expect(report.failures[1]!.errorMessage).toContain('1 records failed');
    expect([...objects.keys()].sort()).toEqual(['a', 'b']);
  });

  it('keeps the original when the copy fails after the consumer took the batch', async () => {
    const objects = new Map([['a', onFailureObject(1)]]);
    const report = await replayFailedBatches({
      store: memoryStore(objects, 'a'),
      buckets: ['failed'],
      invoke: async () => ({ payload: null }),
    });
    expect(report.failures).toEqual([expect.objectContaining({ key: 'a', stage: 'move' })]);
    expect(report.failures[0]!.errorMessage).toMatch(/2 records were replayed.*AccessDenied/);
    expect([...objects.keys()]).toEqual(['a']);
  });

  it('refuses --force without a way to read batches back', async () => {
    await expect(
      replayFailedBatches({
        store: memoryStore(new Map()),
        buckets: ['failed'],
        force: true,
        invoke: async () => ({ payload: null }),
      }),
    ).rejects.toThrow('--force reads batches back from the stream');
  });
});
