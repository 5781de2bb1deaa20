/** Bench area 1, the packager (see bench/run.ts for what each figure measures). */
import './quiet'; // before anything that loads a Lambda handler module

import { gzipSync } from 'node:zlib';

import type { DedupItem, ManifestEntry } from '../lambda/core/ports';

import { DEFAULT_DEDUP_WINDOW_SECONDS, DEFAULT_TRAIL } from '../lambda/core/config';

import { packageBatch } from '../lambda/core/packager';
import { stampOf } from '../lambda/core/provenance';
import type { PackagerDeps, StreamBatch } from '../lambda/core/packager-types';
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
  median,
  medianRate,
  normaliseAll,
  progress,
  realRecords,
  streamBatches,
  syntheticRecordTexts,
  timed,
  type Figure,
} from './lib';
import { BENCH_CALLER } from './ingest';
import { SHARDS, sink, STREAM_BATCH, type Settings } from './settings';

/**
 * The test suite's dedup store without its emulation of DynamoDB's size limits (a marshall and
 * a byte count per put, about a sixth of the packager's CPU in a profile): DynamoDB checks those
 * on its own servers, so they are no part of the packager's cost. Versions are still checked.
 */
class UncheckedDedupStore extends MemoryDedupStore {
  override async put(item: DedupItem, expectedVer: number, expiresAt: number): Promise<boolean> {
    if ((this.items.get(item.eventId)?.ver ?? 0) !== expectedVer) return false;
    this.items.set(item.eventId, { ...item, ver: expectedVer + 1, expiresAt });
    return true;
  }
}

/**
 * The test suite's manifest without its emulation of DynamoDB's key checks (a marshall per
 * reserve, per log file): DynamoDB checks those on its own servers, as for the dedup store above.
 * A row once reserved keeps its hash, as the contract says.
 */
class UncheckedManifestStore extends MemoryManifestStore {
  override async reserve(entry: ManifestEntry): Promise<void> {
    const id = `${entry.bucket}/${entry.key}`;
    const existing = this.rows.get(id);
    if (existing === undefined) this.rows.set(id, { ...entry, state: 'pending' });
    else if (existing.sha256 !== entry.sha256) throw new Error(`manifest row ${id}: other sha256`);
  }
}

/** The gzip level of lambda/core/logfile.ts, which the baseline must share to be fair. */
const PACKAGER_GZIP_LEVEL = 6;

function memoryPackagerDeps(): PackagerDeps {
  return {
    trails: [DEFAULT_TRAIL],
    bucket: 'opentrail-logs',
    objects: new MemoryObjectStore(),
    manifest: new UncheckedManifestStore(),
    dedup: new UncheckedDedupStore(),
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
async function packageAll(
  byShard: readonly StreamBatch[][],
  deps: PackagerDeps,
): Promise<{ files: number; gzipBytes: number }> {
  let files = 0;
  let gzipBytes = 0;
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
  if (deps.objects instanceof MemoryObjectStore)
    for (const body of deps.objects.objects.values()) gzipBytes += body.byteLength;
  return { files, gzipBytes };
}

export async function packagerFigures(
  settings: Settings,
  texts: readonly string[],
): Promise<Figure[]> {
  // Stamped as ingest stores them: the packager reads the content hash the stamp carries.
  const stamp = stampOf(BENCH_CALLER);
  const normalised = normaliseAll(texts, stamp);
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
  let gzipBytes = 0;
  let baselineGzipBytes = 0;
  const subject = async (): Promise<void> => {
    ({ files, gzipBytes } = await packageAll(byShard, memoryPackagerDeps())); // fresh ports
  };
  const baseline = (): void => {
    baselineGzipBytes = 0;
    for (const records of objectBatches) {
      const body = gzipSync(JSON.stringify({ Records: records }), { level: PACKAGER_GZIP_LEVEL });
      baselineGzipBytes += body.length;
    }
    sink.value += baselineGzipBytes;
  };

  progress(`1a packager, in-memory ports: warm-up, then ${settings.passes} passes of ${n} records`);
  await subject();
  baseline();
  const memory = await alternate(settings.passes, subject, baseline);
  const baselineRate = medianRate(n, memory.baseline);
  const baselineWhat = `JSON.stringify+gzipSync (level ${PACKAGER_GZIP_LEVEL}) per batch`;
  const cpuRate = (samples: readonly { cpuSeconds: number }[]): number =>
    median(samples.map((sample) => n / sample.cpuSeconds));
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
  figures.push(
    figure({
      id: 'packager.memory.cpu',
      title: '1a packager, in-memory ports, per CPU second',
      unit: 'records/s',
      value: cpuRate(memory.subject),
      baseline: { what: `${baselineWhat}, per CPU second`, value: cpuRate(memory.baseline) },
      detail: { note: 'the CPU seconds of the same passes as 1a' },
    }),
    figure({
      id: 'packager.memory.compressed',
      title: '1a packager, compressed bytes per record',
      unit: 'B',
      value: gzipBytes / n,
      baseline: { what: baselineWhat, value: baselineGzipBytes / n },
      detail: { note: 'a cheaper gzip level would show here as S3 bytes, not pass for speed' },
    }),
  );

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
      stamp,
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
      ({ files: written } = await packageAll(byShard, deps));
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
          note: 'baseline as in 1a; the emulators run in child processes',
        },
      }),
    );
  } finally {
    destroyClients(clients);
    await runtime.close();
  }
  return figures;
}
