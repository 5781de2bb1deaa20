/**
 * The packager files Insights records per trail as CloudTrail does: under CloudTrail-Insight,
 * for the trails whose insightSelectors name the record's type (every type when a trail has
 * none), whatever the trail's event selectors.
 */
import { gunzipSync } from 'node:zlib';
import { packageBatch } from '../../lambda/core/packager';
import type { TrailConfig } from '../../lambda/core/config';
import { toStreamBatch } from '../../lambda/handlers/packager';
import { batchOf } from '../fixtures/kinesis-events';
import {
  MemoryDedupStore,
  MemoryManifestStore,
  MemoryMetrics,
  MemoryObjectStore,
} from '../fixtures/memory-ports';

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

function insight(type: string, id: string): string {
  return JSON.stringify({
    eventVersion: '1.11',
    eventTime: '2026-01-05T09:50:00Z',
    awsRegion: 'us-east-1',
    eventID: id,
    eventType: 'AwsCloudTrailInsight',
    recipientAccountId: '123456789012',
    sharedEventID: `shared-${id}`,
    insightDetails: {
      state: 'Start',
      eventSource: 'iam.amazonaws.com',
      eventName: 'CreateUser',
      insightType: type,
    },
    eventCategory: 'Insight',
  });
}

it('files each Insights record for the trails that select its type, under CloudTrail-Insight', async () => {
  const trails: TrailConfig[] = [
    { name: 'all', prefix: 'all', eventSelectors: [{ ReadWriteType: 'ReadOnly' }] },
    { name: 'calls', prefix: 'calls', insightSelectors: [{ InsightType: 'ApiCallRateInsight' }] },
    { name: 'none', prefix: 'none', insightSelectors: [] },
  ];
  const objects = new MemoryObjectStore();
  await packageBatch(
    toStreamBatch(
      batchOf(
        'shardId-000000000000',
        [insight('ApiCallRateInsight', 'c1'), insight('ApiErrorRateInsight', 'e1')],
        0,
        T0,
      ),
    ),
    {
      trails,
      bucket: 'logs',
      objects,
      manifest: new MemoryManifestStore(),
      dedup: new MemoryDedupStore(),
      metrics: new MemoryMetrics(),
      dedupWindowMs: 86_400_000,
      now: () => T0,
    },
  );

  const keys = objects.keys();
  expect(keys.every((k) => k.includes('/CloudTrail-Insight/'))).toBe(true);
  const filed = (prefix: string): string[] =>
    keys
      .filter((k) => k.startsWith(`logs/${prefix}/`))
      .flatMap((k) => {
        const body = gunzipSync(objects.objects.get(k)!);
        return (JSON.parse(body.toString()) as { Records: { eventID: string }[] }).Records.map(
          (r) => r.eventID,
        );
      })
      .sort();
  expect(filed('all')).toEqual(['c1', 'e1']);
  expect(filed('calls')).toEqual(['c1']);
  expect(filed('none')).toEqual([]);
});
