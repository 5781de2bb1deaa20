/**
 * What the packager says when a stream record cannot be filed: the batch fails with an error
 * that names the stream record and the rule it broke, so the operator reading the
 * failed-records bucket knows what to fix (docs/operations.md#redrive).
 */
import { DEFAULT_TRAIL } from '../../lambda/core/config';
import { packageBatch } from '../../lambda/core/packager';
import { UnprocessableRecordError, type PackagerDeps } from '../../lambda/core/packager-types';
import {
  MemoryDedupStore,
  MemoryManifestStore,
  MemoryMetrics,
  MemoryObjectStore,
} from '../fixtures/memory-ports';

function deps(objects: MemoryObjectStore): PackagerDeps {
  return {
    trails: [DEFAULT_TRAIL],
    bucket: 'log-bucket',
    objects,
    manifest: new MemoryManifestStore(),
    dedup: new MemoryDedupStore(),
    metrics: new MemoryMetrics(),
    dedupWindowMs: 24 * 3600_000,
    now: () => Date.UTC(2024, 4, 1),
  };
}

const VALID = {
  eventID: 'e1',
  eventTime: '2024-05-01T12:00:00Z',
  awsRegion: 'us-east-1',
  recipientAccountId: '111111111111',
};

describe('packageBatch refuses a stream record it cannot file, naming the record and the rule', () => {
  it.each<[string, string, string]>([
    ['text that is not JSON', '{"eventID":', 'data is not JSON'],
    ['JSON null', 'null', 'data is not a JSON object'],
    ['a JSON number', '5', 'data is not a JSON object'],
    ['a JSON string', '"e1"', 'data is not a JSON object'],
    ['a JSON array', '[{"eventID":"e1"}]', 'data is not a JSON object'],
    [
      'a record whose eventTime is a number',
      JSON.stringify({ ...VALID, eventTime: 1714564800 }),
      'eventTime is missing or not a string (records must come through PutAuditEvents)',
    ],
    [
      'a record whose awsRegion holds a slash',
      JSON.stringify({ ...VALID, awsRegion: '../x' }),
      'awsRegion and recipientAccountId must match',
    ],
  ])('%s', async (_name, data, reason) => {
    const objects = new MemoryObjectStore();
    const attempt = packageBatch(
      {
        shardId: 'shardId-000000000000',
        records: [
          { sequenceNumber: '4977', partitionKey: 'p', data: Buffer.from(data), arrivalMs: 0 },
        ],
      },
      deps(objects),
    );
    const error: unknown = await attempt.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnprocessableRecordError);
    expect(error).toMatchObject({ name: 'UnprocessableRecordError', sequenceNumber: '4977' });
    expect((error as Error).message).toContain(`stream record 4977: ${reason}`);
    expect(objects.keys()).toEqual([]);
  });
});
