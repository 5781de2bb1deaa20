/** Bench area 1, the packager (see bench/run.ts for what each figure measures). */
import './quiet'; // before anything that loads a Lambda handler module

import { gzipSync } from 'node:zlib';

import { DEFAULT_DEDUP_WINDOW_SECONDS, DEFAULT_TRAIL } from '../lambda/core/config';

import { packageBatch, type PackagerDeps, type StreamBatch } from '../lambda/core/packager';
import { documentClient, DynamoDedupStore, DynamoManifestStore } from '../lambda/adapters/dynamodb';
import { S3ObjectStore } from '../lambda/adapters/s3';

import {
  MemoryDedupStore,
  MemoryManifestStore,
  MemoryMetrics,
  MemoryObjectStore,
} from '../test/fixtures/memory-ports';
import { clientsFor, destroyClients } from '../test/support/emulator-clients';

import {
  alternate,
  figure,
  freshRuntime,
  medianRate,
  normaliseAll,
  progress,
  realRecords,
  streamBatches,
  syntheticRecordTexts,
  timed,
  type Figure,
} from './lib';
import { SHARDS, sink, STREAM_BATCH, type Settings } from './settings';

function memoryPackagerDeps(): PackagerDeps {
  return {
    trails: [DEFAULT_TRAIL],
    bucket: 'opentrail-logs',
    objects: new MemoryObjectStore(),
    manifest: new MemoryManifestStore(),
    dedup: new MemoryDedupStore(),
    metrics: new MemoryMetrics(),
    dedupWindowMs: DEFAULT_DEDUP_WINDOW_SECONDS * 1000,
    now: Date.now,
  };
}

/**
 * Packages every batch as the event-source mapping would: one batch at a time per shard, the
 * shards at once. Throws unless every record lands in exactly one file (one trail, no
 * duplicates among distinct eventIDs). Resolves with the number of files written.
 */
async function packageAll(byShard: readonly StreamBatch[][], deps: PackagerDeps): Promise<number> {
  let files = 0;
  await Promise.all(
    byShard.map(async (batches) => {
      for (const batch of batches) {
        const result = await packageBatch(batch, deps);
        const filed = result.files.reduce((sum, f) => sum + f.records, 0);
        if (filed !== batch.records.length || result.duplicates !== 0)
          throw new Error(
            `batch of ${batch.records.length} filed ${filed} records, ${result.duplicates} duplicates`,
          );
        files += result.files.length;
      }
    }),
  );
  return files;
}

export async function packagerFigures(
  settings: Settings,
  texts: readonly string[],
): Promise<Figure[]> {
  const normalised = normaliseAll(texts);
  const byShard = streamBatches(normalised, {
    batchSize: STREAM_BATCH,
    shards: SHARDS,
    arrivalMs: Date.now(),
  });
  const batches = byShard.flat();
  // The baseline's input: each batch's records as objects (parsing is not part of it).
  const objectBatches = batches.map((b) =>
    b.records.map((r) => JSON.parse(Buffer.from(r.data).toString('utf8')) as unknown),
  );
  const n = normalised.length;
  let files = 0;
  const subject = async (): Promise<void> => {
    files = await packageAll(byShard, memoryPackagerDeps()); // fresh ports: no dedup hits
  };
  const baseline = (): void => {
    for (const records of objectBatches)
      sink.value += gzipSync(JSON.stringify({ Records: records })).length;
  };

  progress(`1a packager, in-memory ports: warm-up, then ${settings.passes} passes of ${n} records`);
  await subject();
  baseline();
  const memory = await alternate(settings.passes, subject, baseline);
  const baselineRate = medianRate(n, memory.baseline);
  const baselineWhat = 'JSON.stringify+gzipSync per batch';
  const figures = [
    figure({
      id: 'packager.memory',
      title: '1a packager, in-memory ports',
      unit: 'records/s',
      value: medianRate(n, memory.subject),
      baseline: { what: baselineWhat, value: baselineRate },
      detail: {
        records: n,
        batches: batches.length,
        files,
        samples: memory.subject,
        baselineSamples: memory.baseline,
      },
    }),
  ];

  progress('1b packager, real adapters on the emulators: starting the embedded runtime');
  // No components: only the emulators with the runtime's buckets, tables and stream. (The
  // runtime's table creation is not exported; startRuntime is the way to get the tables.)
  const runtime = await freshRuntime({ flushSeconds: 60, components: [] });
  const clients = clientsFor(runtime.endpoints);
  try {
    const documents = documentClient(clients.dynamodb);
    const deps: PackagerDeps = {
      ...memoryPackagerDeps(),
      bucket: runtime.endpoints.bucket,
      objects: new S3ObjectStore(clients.s3),
      manifest: new DynamoManifestStore(documents, runtime.endpoints.manifestTable),
      dedup: new DynamoDedupStore(documents, runtime.endpoints.dedupTable),
    };
    // Warm-up on other eventIDs and sequence numbers, so the timed pass meets neither its
    // own dedup claims nor its own file keys.
    const warmupRecords = normaliseAll(
      syntheticRecordTexts(realRecords(), STREAM_BATCH, 'warm-up'),
    );
    const warmup = streamBatches(warmupRecords, {
      batchSize: STREAM_BATCH,
      shards: 1,
      arrivalMs: Date.now(),
      firstSequence: 1e9,
    });
    await packageAll(warmup, deps);
    progress(`1b packager, real adapters on the emulators: one pass of ${n} records`);
    let written = 0;
    const sample = await timed(async () => {
      written = await packageAll(byShard, deps);
    });
    figures.push(
      figure({
        id: 'packager.emulators',
        title: '1b packager, real adapters + emulators',
        unit: 'records/s',
        value: n / sample.seconds,
        baseline: { what: baselineWhat, value: baselineRate },
        detail: {
          records: n,
          batches: batches.length,
          files: written,
          samples: [sample],
          cpuPerWallSecond: sample.cpuSeconds / sample.seconds,
          note: 'baseline as in 1a; the emulators run in this process',
        },
      }),
    );
  } finally {
    destroyClients(clients);
    await runtime.close();
  }
  return figures;
}
