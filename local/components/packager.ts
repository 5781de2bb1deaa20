import { DEFAULT_DEDUP_WINDOW_SECONDS } from '../../lambda/core/config';
import type { ObjectStore } from '../../lambda/core/ports';
import { DynamoDedupStore, DynamoManifestStore } from '../../lambda/adapters/dynamodb';
import { S3ObjectStore } from '../../lambda/adapters/s3';
import { createPackagerHandler } from '../../lambda/handlers/packager';
import { DynamoDigestChainStore } from '../../lambda/adapters/dynamodb-digests';
import type { RuntimeComponent } from '../runtime-context';
import { LocalDeliveryNotifier } from '../fanout-files';
import { localTopicArn } from './fanout';
import { DIGEST_CHAIN_TABLE, ensureChainTable } from './digest';
import { DynamoInsightCountStore } from '../../lambda/adapters/insights-dynamodb';
import { ensureInsightsTable, LOCAL_INSIGHTS_TABLE } from './insights';

/** Test hook: a pause before every log-file write, so a test can kill a batch half way. */
function delayed(store: ObjectStore, delayMs: number): ObjectStore {
  if (delayMs <= 0) return store;
  return {
    putIfAbsent: async (object) => {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return store.putIfAbsent(object);
    },
    get: (bucket, key) => store.get(bucket, key),
  };
}

/** The packager on its own stream consumer; the batching window is --flush-seconds. */
export const packagerComponent: RuntimeComponent = {
  name: 'packager',
  start: async (context) => {
    const { options, names } = context;
    const delayMs = options.s3WriteDelayMs ?? Number(process.env.OPENTRAIL_FAULT_S3_DELAY_MS ?? 0);
    const packager = createPackagerHandler({
      trails: context.trails,
      bucket: names.bucket,
      objects: delayed(new S3ObjectStore(context.clients.s3), delayMs),
      manifest: new DynamoManifestStore(context.documents, names.manifestTable),
      dedup: new DynamoDedupStore(context.documents, names.dedupTable),
      metrics: context.metrics,
      dedupWindowMs: (options.dedupWindowSeconds ?? DEFAULT_DEDUP_WINDOW_SECONDS) * 1000,
      now: Date.now,
      // SNS delivery notices to <data-dir>/sns/notifications.jsonl, for every trail.
      notifier: new LocalDeliveryNotifier(context.dataDir, (name) => {
        const trail = context.trails.find((t) => t.name === name);
        return trail && localTopicArn(trail, context.region, context.accountId);
      }),
      streams: new DynamoDigestChainStore(context.documents, DIGEST_CHAIN_TABLE),
      // Insights counters (docs/design.md#insights), when `--insights` is on.
      ...(options.insights
        ? { insightCounts: new DynamoInsightCountStore(context.documents, LOCAL_INSIGHTS_TABLE) }
        : {}),
    });
    if (options.insights) await ensureInsightsTable(context.clients.dynamodb);
    // The stream registry must exist before the first batch (the digest component reads it).
    await ensureChainTable(context.clients.dynamodb);
    return context.consumer({
      name: 'packager',
      invoke: packager,
      batchSize: options.batchSize ?? names.batchSize,
      batchWindowMs: options.flushSeconds * 1000,
    });
  },
};
