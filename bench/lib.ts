/**
 * Shared helpers of the benchmark (bench/run.ts): synthetic records made from the real
 * CloudTrail fixtures, the shapes Lambda and API clients deliver them in, timing, and output.
 *
 * Nothing here judges speed: figures are reported beside baselines measured in the same run.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { arch, cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AuditBatcher, requestBody } from '../cli/shared/audit-batcher';
import type { StreamBatch, StreamRecord } from '../lambda/core/packager-types';
import type { Stamp } from '../lambda/core/provenance';
import type { PutAuditEventsResult } from '../lambda/core/ingest';
import { normaliseRecord, type NormalisedRecord } from '../lambda/core/records';
import { LOCAL_DEFAULTS, startRuntime, type Runtime, type RuntimeOptions } from '../local/runtime';
import { fixtureRecords } from '../test/fixtures/cloudtrail-data';
import { destroyClients, manifestRows, clientsFor } from '../test/support/emulator-clients';

// ---------------------------------------------------------------------------------------------
// Progress (stderr; stdout carries the table only)

const started = performance.now();

/**
 * One progress line on stderr, stamped with the seconds since the start, the RSS now and the
 * peak RSS so far (so a jump in the peak points at the step before).
 */
export function progress(message: string): void {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  const rss = (process.memoryUsage().rss / 2 ** 20).toFixed(0);
  process.stderr.write(
    `[bench ${seconds}s rss ${rss}/${peakRssMiB().toFixed(0)} MiB] ${message}\n`,
  );
}

// ---------------------------------------------------------------------------------------------
// Records

/** Small seeded PRNG (mulberry32): the same seed gives the same records on every run. */
function prng(seed: string): () => number {
  let state = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A UUID-shaped eventID (36 characters, like the real ones) derived from `seed` and `n`. */
function eventIdFor(seed: string, n: number): string {
  const h = createHash('sha256').update(`${seed}:${n}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The real records of test/fixtures/cloudtrail-data (310 of them). */
export function realRecords(): Record<string, unknown>[] {
  return fixtureRecords().map(({ record }) => record);
}

/**
 * `count` distinct records: each a real record (drawn at random, with replacement, so the mix
 * of accounts, regions, event kinds and sizes follows the real data) with a new eventID in the
 * same place, so its size and key order stay as real. Returned as producer JSON texts.
 */
export function syntheticRecordTexts(
  templates: readonly Record<string, unknown>[],
  count: number,
  seed: string,
): string[] {
  const random = prng(seed);
  return Array.from({ length: count }, (_, n) => {
    const template = templates[Math.floor(random() * templates.length)]!;
    return JSON.stringify({ ...template, eventID: eventIdFor(seed, n) });
  });
}

/**
 * What the ingest side stores for each text (normaliseRecord), as PutAuditEvents would; with the
 * provenance stamp of `stamp` when given (every record ingest stores carries one).
 */
export function normaliseAll(texts: readonly string[], stamp?: Stamp): NormalisedRecord[] {
  const context = {
    accountId: LOCAL_DEFAULTS.accountId,
    nowMs: Date.now(),
    newEventId: () => {
      throw new Error('bench records all carry an eventID');
    },
    ...(stamp !== undefined ? { stamp } : {}),
  };
  return texts.map((text) => normaliseRecord(text, context));
}

/** A Kinesis-shaped sequence number (56 digits), increasing per shard. */
function sequenceNumber(shard: number, n: number): string {
  return `4965${String(shard).padStart(4, '0')}${String(n).padStart(48, '0')}`;
}

/**
 * The records as the packager Lambda receives them: spread over `shards` shards (record i to
 * shard i mod shards, standing in for the partition-key hash), then cut into batches of
 * `batchSize` per shard, in stream order. Arrival times step 1 ms per record from `arrivalMs`.
 * Sequence numbers count from `firstSequence` (default 1): sets of batches packaged into the
 * same bucket need disjoint ranges, since a file's key derives from its batch's bounds.
 */
export function streamBatches(
  records: readonly Pick<NormalisedRecord, 'eventID' | 'text'>[],
  options: { batchSize: number; shards: number; arrivalMs: number; firstSequence?: number },
): StreamBatch[][] {
  const perShard: StreamRecord[][] = Array.from({ length: options.shards }, () => []);
  records.forEach((record, i) => {
    const shard = i % options.shards;
    const own = perShard[shard]!;
    own.push({
      sequenceNumber: sequenceNumber(shard, (options.firstSequence ?? 1) + own.length),
      partitionKey: record.eventID,
      data: Buffer.from(record.text, 'utf8'),
      arrivalMs: options.arrivalMs + i,
    });
  });
  return perShard.map((shardRecords, shard) => {
    const batches: StreamBatch[] = [];
    for (let i = 0; i < shardRecords.length; i += options.batchSize) {
      batches.push({
        shardId: `shardId-${String(shard).padStart(12, '0')}`,
        records: shardRecords.slice(i, i + options.batchSize),
      });
    }
    return batches;
  });
}

/**
 * PutAuditEvents request bodies of up to `entries` entries each, built by the CLI's own
 * batcher (entry ids from eventIDs, eventDataChecksum set, 1 MiB request limit honoured).
 */
export function requestBodies(texts: readonly string[], entries: number): string[] {
  const batcher = new AuditBatcher({ maxEntries: entries });
  const bodies: string[] = [];
  texts.forEach((text, n) => {
    const eventID = (JSON.parse(text) as { eventID: string }).eventID;
    const added = batcher.add({ source: 'bench', position: `#${n}`, text, eventID }, n + 1);
    if (added.tooLarge) throw new Error(`record #${n} is too large for one request`);
    if (added.flushed) bodies.push(requestBody(added.flushed.entries));
  });
  const last = batcher.flush();
  if (last) bodies.push(requestBody(last.entries));
  return bodies;
}

// ---------------------------------------------------------------------------------------------
// Timing

export interface Sample {
  /** Wall-clock seconds. */
  readonly seconds: number;
  /** CPU seconds of this process (user + system, all threads) over the same span. */
  readonly cpuSeconds: number;
}

/** Runs `work` once and times it. */
export async function timed(work: () => unknown): Promise<Sample> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await work();
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  return { seconds, cpuSeconds: (used.user + used.system) / 1e6 };
}

/**
 * Times `subject` and `baseline` in alternation, `passes` times each, so that drift in the
 * machine (other tenants, CPU frequency, GC state) falls on both alike.
 */
export async function alternate(
  passes: number,
  subject: () => unknown,
  baseline: () => unknown,
): Promise<{ subject: Sample[]; baseline: Sample[] }> {
  const result = { subject: [] as Sample[], baseline: [] as Sample[] };
  for (let pass = 0; pass < passes; pass++) {
    // Swap the order every pass: neither side always runs right after the other's garbage.
    const order =
      pass % 2 === 0 ? (['subject', 'baseline'] as const) : (['baseline', 'subject'] as const);
    for (const side of order)
      result[side].push(await timed(side === 'subject' ? subject : baseline));
  }
  return result;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median rate (items per second) over the samples, each sample having processed `items`. */
export function medianRate(items: number, samples: readonly Sample[]): number {
  return median(samples.map((s) => items / s.seconds));
}

export { inParallel } from '../lambda/core/concurrency';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The embedded runtime

/** The runtime on a fresh temporary data dir; `close` also removes the dir. */
export async function freshRuntime(
  options: Omit<RuntimeOptions, 'dataDir' | 'port'>,
): Promise<Runtime> {
  const dataDir = mkdtempSync(join(tmpdir(), 'opentrail-bench-'));
  try {
    const runtime = await startRuntime({ ...options, dataDir, port: 0 });
    return {
      ...runtime,
      close: async () => {
        await runtime.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Polls the delivery manifest every `intervalMs` until its delivered rows hold `records`
 * records; resolves with the performance.now() of the poll that saw it, or undefined after
 * `timeoutMs`. A manifest row is marked delivered only after its object is written.
 */
export async function waitForDelivered(
  runtime: Runtime,
  records: number,
  options: { intervalMs: number; timeoutMs: number },
): Promise<number | undefined> {
  const clients = clientsFor(runtime.endpoints);
  try {
    const deadline = performance.now() + options.timeoutMs;
    while (performance.now() < deadline) {
      if ((await deliveredRecords(clients, runtime)) >= records) return performance.now();
      await sleep(options.intervalMs);
    }
    return undefined;
  } finally {
    destroyClients(clients);
  }
}

/** Records in delivered log files, per the manifest. */
export async function deliveredRecords(
  clients: ReturnType<typeof clientsFor>,
  runtime: Runtime,
): Promise<number> {
  const rows = await manifestRows(clients, runtime.endpoints.manifestTable);
  return rows.filter((r) => r.state === 'delivered').reduce((sum, r) => sum + r.recordCount, 0);
}

// ---------------------------------------------------------------------------------------------
// Output

export interface Figure {
  /** Stable id, for comparing results.json across runs. */
  readonly id: string;
  readonly title: string;
  readonly unit: string;
  readonly value: number;
  readonly baseline: { readonly what: string; readonly value: number };
  /** value / baseline.value */
  readonly ratio: number;
  /** Samples, counts and anything else worth keeping. */
  readonly detail: Record<string, unknown>;
}

export function figure(f: Omit<Figure, 'ratio'>): Figure {
  return { ...f, ratio: f.value / f.baseline.value };
}

export function machineFacts(): Record<string, unknown> {
  const cores = cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${platform()} ${release()} ${arch()}`,
    cpuModel: cores[0]?.model.trim() ?? 'unknown',
    cores: cores.length,
    totalMemoryMiB: Math.round(totalmem() / 2 ** 20),
  };
}

/** Peak resident set size of this process so far, MiB. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function formatNumber(value: number, unit: string): string {
  const digits = unit === 's' || unit === 'MiB' ? (value < 100 ? 2 : 0) : value < 100 ? 1 : 0;
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** The figures as an aligned text table. */
export function table(figures: readonly Figure[]): string {
  const rows = [
    ['figure', 'value', 'baseline (same run)', 'baseline value', 'ratio'],
    ...figures.map((f) => [
      f.title,
      `${formatNumber(f.value, f.unit)} ${f.unit}`,
      f.baseline.what,
      `${formatNumber(f.baseline.value, f.unit)} ${f.unit}`,
      `${f.ratio.toFixed(2)}x`,
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const right = new Set([1, 3, 4]);
  const line = (r: string[]): string =>
    r
      .map((cell, c) => (right.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)]
    .join('\n')
    .replace(/ +$/gm, '');
}

/** A figure an area bench returns; bench/run.ts prints it beside its baseline, when it has one. */
export interface BenchFigure {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  notes?: string;
}

/** Throws unless PutAuditEvents accepted every entry of `body`. */
export function checkAccepted(result: PutAuditEventsResult, body: string): void {
  if (result.failed.length > 0)
    throw new Error(
      `PutAuditEvents refused ${result.failed.length} entries: ${JSON.stringify(result.failed[0])}`,
    );
  const entries = (JSON.parse(body) as { auditEvents: unknown[] }).auditEvents.length;
  if (result.successful.length !== entries)
    throw new Error(`PutAuditEvents accepted ${result.successful.length} of ${entries} entries`);
}

/** POSTs one PutAuditEvents body to `url`; throws unless every entry was accepted. */
export async function postAuditEvents(url: string, body: string): Promise<PutAuditEventsResult> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body,
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${text}`);
  const result = JSON.parse(text) as PutAuditEventsResult;
  checkAccepted(result, body);
  return result;
}
