/**
 * `npm run bench [-- --quick]`: throughput and latency of the write path, each figure printed
 * beside a baseline measured in the same run (so the ratio means something on any machine),
 * and written to bench/results.json with the machine's facts. It reports; it never fails on
 * speed (only on wrong results: lost or refused records).
 *
 * 1. Packager: packageBatch on batches of 1,000 stream records, (a) with in-memory ports (the
 *    packager's own CPU cost), (b) with the real adapters against the embedded emulators.
 *    Baseline: JSON.stringify + gzipSync of the same records, batch by batch.
 * 2. Ingest: putAuditEvents on 100-entry request bodies, (a) into an in-memory stream,
 *    (b) over HTTP into the embedded runtime (ingest component only) and kinesalite.
 *    Baseline: JSON.parse of the bodies and of every eventData.
 * 3. Replay latency: the 310 real records through a fresh embedded runtime (all default
 *    components, as `npm start`), from the last accepted request until every record is in a
 *    delivered log file. Baseline: flush-seconds.
 *
 * Everything runs in this one process, emulators included: (b) figures and the replay share
 * one JavaScript thread between the code under test and the emulators, as `npm start` does.
 */
import './quiet'; // before anything that loads a Lambda handler module
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { putEvents } from '../cli/put-events';
import { runDigestSignerBench } from './digest-signer';
import { runFanoutBench } from './fanout';
import type { BenchFigure } from './lib';
import { runHistoryBench } from './history';
import { runInsightsBench } from './insights';
import { runValidateLogsBench } from './validate-logs';
import type { Progress } from '../cli/shared/progress';
import { DEFAULT_DEDUP_WINDOW_SECONDS, DEFAULT_TRAIL } from '../lambda/core/config';
import { putAuditEvents, type PutAuditEventsResult } from '../lambda/core/ingest';
import { packageBatch, type PackagerDeps, type StreamBatch } from '../lambda/core/packager';
import { documentClient, DynamoDedupStore, DynamoManifestStore } from '../lambda/adapters/dynamodb';
import { S3ObjectStore } from '../lambda/adapters/s3';
import { DEFAULT_COMPONENTS } from '../local/components';
import { ingestComponent } from '../local/components/ingest';
import { LOCAL_DEFAULTS } from '../local/runtime';
import { CLOUDTRAIL_DATA } from '../test/fixtures/cloudtrail-data';
import {
  MemoryDedupStore,
  MemoryManifestStore,
  MemoryMetrics,
  MemoryObjectStore,
  MemoryRecordStream,
} from '../test/fixtures/memory-ports';
import { clientsFor, destroyClients } from '../test/support/emulator-clients';
import { checkLogFiles } from '../test/support/log-check';
import {
  alternate,
  figure,
  freshRuntime,
  inParallel,
  machineFacts,
  median,
  medianRate,
  normaliseAll,
  peakRssMiB,
  progress,
  realRecords,
  requestBodies,
  sleep,
  streamBatches,
  syntheticRecordTexts,
  table,
  timed,
  waitForDelivered,
  type Figure,
} from './lib';

const USAGE = 'usage: npm run bench [-- --quick]';

interface Settings {
  readonly mode: 'full' | 'quick';
  /** Synthetic records for figures 1 and 2. */
  readonly records: number;
  /** Timed passes of each in-memory figure and of its baseline (alternating). */
  readonly passes: number;
  /** Replays (figure 3), each on a fresh runtime. */
  readonly replays: number;
}

const FULL: Settings = { mode: 'full', records: 20_000, passes: 5, replays: 3 };
const QUICK: Settings = { mode: 'quick', records: 4_000, passes: 3, replays: 1 };

/** Lambda's batch size on the event-source mapping, and the runtime's default. */
const STREAM_BATCH = 1_000;
/** The embedded runtime's shard count: batches of different shards are packaged at once. */
const SHARDS = 2;
const REQUEST_ENTRIES = 100;
/** Requests in flight at once, as `opentrail put-events` does by default. */
const HTTP_CONCURRENCY = 4;
const REPLAY_FLUSH_SECONDS = 2;
/** Not a speed threshold: a guard so that lost records end the run instead of hanging it. */
const DELIVERY_GUARD_MS = 180_000;

// Sinks the baselines write to, so no engine can elide their work.
let sink = 0;

// ---------------------------------------------------------------------------------------------
// 1. Packager

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

async function packagerFigures(settings: Settings, texts: readonly string[]): Promise<Figure[]> {
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
      sink += gzipSync(JSON.stringify({ Records: records })).length;
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

// ---------------------------------------------------------------------------------------------
// 2. Ingest

function checkAccepted(result: PutAuditEventsResult, body: string): void {
  if (result.failed.length > 0)
    throw new Error(
      `PutAuditEvents refused ${result.failed.length} entries: ${JSON.stringify(result.failed[0])}`,
    );
  const entries = (JSON.parse(body) as { auditEvents: unknown[] }).auditEvents.length;
  if (result.successful.length !== entries)
    throw new Error(`PutAuditEvents accepted ${result.successful.length} of ${entries} entries`);
}

async function ingestFigures(settings: Settings, texts: readonly string[]): Promise<Figure[]> {
  const bodies = requestBodies(texts, REQUEST_ENTRIES);
  const n = texts.length;
  const subject = async (): Promise<void> => {
    const deps = {
      stream: new MemoryRecordStream(),
      accountId: LOCAL_DEFAULTS.accountId,
      now: Date.now,
      newEventId: randomUUID,
      sleep,
    };
    for (const body of bodies) {
      const result = await putAuditEvents(body, {}, deps);
      if (result.failed.length > 0) checkAccepted(result, body);
    }
  };
  const baseline = (): void => {
    for (const body of bodies) {
      const request = JSON.parse(body) as { auditEvents: { eventData: string }[] };
      for (const entry of request.auditEvents)
        sink += Object.keys(JSON.parse(entry.eventData) as object).length;
    }
  };

  progress(
    `2a ingest, in-memory stream: warm-up, then ${settings.passes} passes of ${bodies.length} requests`,
  );
  await subject();
  baseline();
  const memory = await alternate(settings.passes, subject, baseline);
  const baselineRate = medianRate(n, memory.baseline);
  const baselineWhat = 'JSON.parse of bodies + each eventData';
  const figures = [
    figure({
      id: 'ingest.memory',
      title: '2a ingest, in-memory stream',
      unit: 'records/s',
      value: medianRate(n, memory.subject),
      baseline: { what: baselineWhat, value: baselineRate },
      detail: {
        records: n,
        requests: bodies.length,
        samples: memory.subject,
        baselineSamples: memory.baseline,
      },
    }),
  ];

  progress('2b ingest over HTTP into kinesalite: starting the embedded runtime');
  // The ingest component alone: nothing consumes the stream meanwhile, so the figure is the
  // API's and kinesalite's, not shared with the packager and the other consumers.
  const runtime = await freshRuntime({ flushSeconds: 60, components: [ingestComponent] });
  try {
    const url = `${runtime.endpoints.api}/PutAuditEvents`;
    const post = async (body: string): Promise<void> => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body,
      });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${text}`);
      checkAccepted(JSON.parse(text) as PutAuditEventsResult, body);
    };
    const warmupTexts = syntheticRecordTexts(realRecords(), 5 * REQUEST_ENTRIES, 'warm-up');
    await inParallel(requestBodies(warmupTexts, REQUEST_ENTRIES), HTTP_CONCURRENCY, post);
    progress(
      `2b ingest over HTTP into kinesalite: ${bodies.length} requests, ${HTTP_CONCURRENCY} in flight`,
    );
    const sample = await timed(() => inParallel(bodies, HTTP_CONCURRENCY, post));
    figures.push(
      figure({
        id: 'ingest.http',
        title: '2b ingest, HTTP API -> kinesalite',
        unit: 'records/s',
        value: n / sample.seconds,
        baseline: { what: baselineWhat, value: baselineRate },
        detail: {
          records: n,
          requests: bodies.length,
          concurrency: HTTP_CONCURRENCY,
          samples: [sample],
          cpuPerWallSecond: sample.cpuSeconds / sample.seconds,
          components: ['ingest'],
          note: 'baseline as in 2a; kinesalite runs in this process',
        },
      }),
    );
  } finally {
    await runtime.close();
  }
  return figures;
}

// ---------------------------------------------------------------------------------------------
// 3. Replay latency

/**
 * One replay on a fresh runtime with every default component (what `npm start` runs): seconds
 * from the last accepted request until all records are in delivered log files.
 */
async function replayOnce(expected: number): Promise<{ seconds: number; files: number }> {
  const runtime = await freshRuntime({ flushSeconds: REPLAY_FLUSH_SECONDS });
  try {
    // putEvents reports its counts after every response: note when the last one was accepted.
    let accepted = 0;
    let lastAcceptedAt = 0;
    const tracker: Progress = {
      start: () => undefined,
      setTotal: () => undefined,
      increment: () => undefined,
      stop: () => undefined,
      update: (payload) => {
        const now = Number(payload.accepted);
        if (now > accepted) {
          accepted = now;
          lastAcceptedAt = performance.now();
        }
      },
    };
    const report = await putEvents({
      inputs: [CLOUDTRAIL_DATA],
      endpoint: runtime.endpoints.api,
      progress: tracker,
    });
    if (report.accepted !== expected || report.failed !== 0)
      throw new Error(`replay: ${report.accepted} accepted, ${report.failed} failed`);
    const doneAt = await waitForDelivered(runtime, expected, {
      intervalMs: 100,
      timeoutMs: DELIVERY_GUARD_MS,
    });
    if (doneAt === undefined) throw new Error('replay: not every record reached a log file');
    // Then check what was filed, as the e2e test does (outside the measured span).
    const clients = clientsFor(runtime.endpoints);
    try {
      const check = await checkLogFiles(clients, runtime.endpoints);
      const ids = new Set(check.records.map((r) => r.record.eventID));
      if (check.problems.length > 0 || check.records.length !== expected || ids.size !== expected)
        throw new Error(
          `replay: ${check.records.length} records filed (${ids.size} distinct): ${check.problems.join('; ')}`,
        );
      return { seconds: (doneAt - lastAcceptedAt) / 1000, files: check.keys.length };
    } finally {
      destroyClients(clients);
    }
  } finally {
    await runtime.close();
  }
}

async function replayFigure(settings: Settings, expected: number): Promise<Figure> {
  const runs: { seconds: number; files: number }[] = [];
  for (let i = 1; i <= settings.replays; i++) {
    progress(
      `3  replay of ${expected} real records, flush-seconds ${REPLAY_FLUSH_SECONDS} (${i}/${settings.replays})`,
    );
    runs.push(await replayOnce(expected));
  }
  return figure({
    id: 'replay.latency',
    title: '3  replay: last accepted -> all in log files',
    unit: 's',
    value: median(runs.map((r) => r.seconds)),
    baseline: { what: 'flush-seconds', value: REPLAY_FLUSH_SECONDS },
    detail: {
      records: expected,
      runs,
      acceptanceBoundSeconds: REPLAY_FLUSH_SECONDS + 10,
      components: DEFAULT_COMPONENTS.map((c) => c.name),
      pollIntervalMs: 100,
    },
  });
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--quick');
  if (unknown.length > 0) throw new Error(`unknown argument ${unknown[0]!}\n${USAGE}`);
  const settings = args.includes('--quick') ? QUICK : FULL;
  const began = performance.now();
  const rssAtStart = process.memoryUsage().rss / 2 ** 20;
  const machine = machineFacts();
  progress(
    `${settings.mode} run on ${String(machine.cpuModel)} x${String(machine.cores)}, node ${process.version}`,
  );

  const real = realRecords();
  const texts = syntheticRecordTexts(real, settings.records, 'bench');
  progress(`generated ${texts.length} distinct records from ${real.length} real ones`);

  const figures = [
    ...(await packagerFigures(settings, texts)),
    ...(await ingestFigures(settings, texts)),
    await replayFigure(settings, real.length),
  ];
  // The other areas' benches: validate-logs (issue 3), event history (issue 4), fan-out (5),
  // digest signing at 1,000 and 50,000 log files per period (issue 9), Insights (12).
  const quick = settings.mode === 'quick';
  const areaFigures: BenchFigure[] = [];
  for (const [area, run] of [
    ['validate-logs', runValidateLogsBench],
    ['digest-signer', runDigestSignerBench],
    ['history', runHistoryBench],
    ['fanout', runFanoutBench],
    ['insights', runInsightsBench],
  ] as const) {
    progress(`${area} bench`);
    areaFigures.push(...(await run({ quick, log: (line) => progress(`${area}: ${line}`) })));
  }
  for (const f of areaFigures.filter((f) => f.baseline)) {
    figures.push(
      figure({
        id: f.name.toLowerCase().replace(/[^a-z0-9]+/g, '-'),
        title: f.name,
        unit: f.unit,
        value: f.value,
        baseline: { what: f.baseline!.name, value: f.baseline!.value },
        detail: f.notes ? { notes: f.notes } : {},
      }),
    );
  }
  const others = areaFigures.filter((f) => !f.baseline);
  const peak = peakRssMiB();
  const seconds = (performance.now() - began) / 1000;

  const out = process.stdout;
  out.write(
    `opentrail bench (${settings.mode}): node ${process.version}, ${String(machine.cpuModel)}, ${String(machine.cores)} cores\n\n`,
  );
  out.write(`${table(figures)}\n\n`);
  for (const f of others) {
    out.write(
      `${f.name}: ${f.value.toLocaleString('en-US', { maximumFractionDigits: 2 })} ${f.unit}${f.notes ? ` (${f.notes})` : ''}\n`,
    );
  }
  if (others.length > 0) out.write('\n');
  out.write(
    `peak RSS of the bench process: ${peak.toFixed(0)} MiB (${rssAtStart.toFixed(0)} MiB at start); ` +
      `replay acceptance bound: flush-seconds + 10 = ${REPLAY_FLUSH_SECONDS + 10} s; run took ${seconds.toFixed(0)} s\n`,
  );

  const results = {
    generatedAt: new Date().toISOString(),
    mode: settings.mode,
    machine,
    settings: {
      ...settings,
      streamBatch: STREAM_BATCH,
      shards: SHARDS,
      requestEntries: REQUEST_ENTRIES,
      httpConcurrency: HTTP_CONCURRENCY,
      replayFlushSeconds: REPLAY_FLUSH_SECONDS,
    },
    figures,
    otherFigures: others,
    peakRss: { value: peak, unit: 'MiB', atStart: rssAtStart },
    durationSeconds: seconds,
    note: 'ratio = value / baseline; baselines are measured in the same run, nothing is a threshold',
  };
  const path = join(__dirname, 'results.json');
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
  progress(`wrote ${path} (baseline checksum ${sink})`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
