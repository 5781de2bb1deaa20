/**
 * Live Insights (docs/design.md#insights): counting in the packager's path and the scheduled
 * detector that judges each minute and puts its Insights records into the stream.
 *
 * Counting. The packager counts the records of a log file it writes (or completes) for the
 * first trail that keeps each record, just before it marks the file delivered. A file's content
 * is fixed once its manifest row exists and each record lands in one delivered file per trail,
 * so the file's key is the idempotency marker: every (series, minute) count of the file is one
 * UpdateItem ADD conditioned on the marker not being in the item yet. A retry, a bisected retry
 * or a redrive rewrites (or completes) the same file and finds its marker; a resend is dropped
 * by deduplication before it reaches a file. So each (eventID, contentHash) counts once.
 *
 * Lateness. A record counts "on time" for minute M when its file's delivery minute (the key's
 * stamp) is at most M + 4, one minute before M is judged at M + 5, so that packager lag does not
 * lose it; later records count in the partition of their delivery minute and feed the baseline
 * only when the detector reaches that minute. Pure: no SDK, no I/O.
 */
import { createHash } from 'node:crypto';
import { inParallel } from './concurrency';
import {
  ATTRIBUTES,
  MinuteAggregator,
  MINUTE_MS,
  seriesId,
  type AttributeCounts,
  type CountableRecord,
  type InsightType,
  type MinuteCount,
  type SeriesKey,
} from './insights-counts';
import { InsightsDetector, JUDGE_DELAY_MINUTES } from './insights-detector';
import type { InsightRecord } from './insights-record';
import type { SeriesSnapshot } from './insights-series';
import type { PutRecordResult, RecordStream } from './ports';

/** Minutes after M by which a record must be delivered to count on time for M. */
export const ON_TIME_MINUTES = JUDGE_DELAY_MINUTES - 1;

/**
 * Attribution values kept per attribute per (series, minute, file): the top 5 are what an
 * Insight reports, and the item bound below depends on it.
 */
export const VALUES_PER_FILE = 5;

/** Attribution values are cut to this many characters in counts (a userAgent may be long). */
export const MAX_VALUE_CHARS = 256;

/** The Insights table: see tables.ts. */
export { INSIGHTS_TABLE } from './tables';

/** Where a count is stored: on time (judged) or late (baseline only). */
export interface CountPlacement {
  readonly count: MinuteCount;
  /** The minute whose run reads it: M for on-time counts, the delivery minute for late ones. */
  readonly readAt: number;
  readonly late: boolean;
}

/** The counter table, as counting and the scheduled detector see it. */
export interface InsightCountStore {
  /**
   * Adds one count of one file, once per (count, marker): "added", or "counted" when the marker
   * is already in the item (a retry). Never splits a count; may use an overflow item.
   */
  add(placement: CountPlacement, marker: string): Promise<'added' | 'counted'>;
  /**
   * Every count item read at `minute` (on-time counts of M, late counts delivered in M), as
   * stored: overflow items of one counter are separate entries.
   */
  countsAt(minute: number): Promise<{ onTime: MinuteCount[]; late: MinuteCount[] }>;
}

/** The detector's state between runs. */
export interface InsightStateStore {
  /** The last minute judged and when counting began; undefined before the first run. */
  cursor(): Promise<{ readonly judged: number; readonly sinceMs: number } | undefined>;
  saveCursor(cursor: { readonly judged: number; readonly sinceMs: number }): Promise<void>;
  series(): Promise<SeriesSnapshot[]>;
  saveSeries(series: readonly SeriesSnapshot[]): Promise<void>;
  deleteSeries(ids: readonly string[]): Promise<void>;
}

/**
 * Where warm-up reads history: write management calls (ReadOnly=false) in [fromMs, toMs),
 * newest first. It may stop early (a read budget): then it says so, having read everything
 * newer than the last record it passed.
 */
export interface InsightHistorySource {
  writeCalls(
    fromMs: number,
    toMs: number,
    onPage: (records: readonly CountableRecord[]) => void,
  ): Promise<{ readonly complete: boolean }>;
}

/** A short, stable marker for a log file (`bucket/key`): 18 base64url characters. */
export function fileMarker(objectId: string): string {
  return createHash('sha256').update(objectId).digest('base64url').slice(0, 18);
}

function cut(counts: AttributeCounts): AttributeCounts {
  const out = {} as AttributeCounts;
  for (const attribute of ATTRIBUTES) {
    const merged: Record<string, number> = {};
    for (const [value, n] of Object.entries(counts[attribute])) {
      const short = value.length > MAX_VALUE_CHARS ? value.slice(0, MAX_VALUE_CHARS) : value;
      merged[short] = (merged[short] ?? 0) + n;
    }
    out[attribute] = Object.fromEntries(
      Object.entries(merged)
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, VALUES_PER_FILE),
    );
  }
  return out;
}

/**
 * The counts of one log file's records: one per (series, minute), placed on time or late by
 * the file's delivery minute.
 */
export function fileCounts(
  records: readonly CountableRecord[],
  deliveryMinute: number,
): CountPlacement[] {
  const aggregator = new MinuteAggregator();
  for (const record of records) aggregator.add(record);
  return aggregator.drain().map((count) => {
    const late = deliveryMinute > count.minute + ON_TIME_MINUTES;
    return {
      count: { ...count, attributions: cut(count.attributions) },
      readAt: late ? deliveryMinute : count.minute,
      late,
    };
  });
}

/** Counts one file's records once (see the module comment); returns the writes made. */
export async function countLogFile(
  store: InsightCountStore,
  objectId: string,
  records: readonly CountableRecord[],
  deliveryMinute: number,
  concurrency = 16,
): Promise<number> {
  const placements = fileCounts(records, deliveryMinute);
  const marker = fileMarker(objectId);
  await inParallel(placements, concurrency, async (placement) => {
    await store.add(placement, marker);
  });
  return placements.length;
}

/** Raised records could not all be put: the run is repeated (its records are kept). */
export class InsightsDeliveryError extends Error {
  override readonly name = 'InsightsDeliveryError';
}

export interface ScheduledDetectorDeps {
  readonly counts: InsightCountStore;
  readonly state: InsightStateStore;
  readonly stream: RecordStream;
  /** Insight types the deployment detects (the union over its trails). */
  readonly insightTypes: readonly InsightType[];
  readonly now: () => number;
  /** Seeds the baseline on the first run (warm-up). @default - no seed: 24 h to warm up */
  readonly history?: InsightHistorySource;
  /** Days of history seeded on the first run. @default 90 */
  readonly seedDays?: number;
  /** Minutes judged at most per run, when catching up after an outage. @default 15 */
  readonly maxMinutesPerRun?: number;
}

export interface ScheduledRunResult {
  readonly judged: readonly number[];
  readonly records: readonly InsightRecord[];
  readonly seeded?: { readonly fromMs: number; readonly counts: number };
  /** Series states read (one item each per run). */
  readonly seriesRead: number;
}

const MAX_PUT_RECORDS = 500;
const DAY_MS = 86_400_000;

/** Puts records into the stream, partitioned by eventID like ingest; throws on any failure. */
async function putAll(stream: RecordStream, records: readonly InsightRecord[]): Promise<void> {
  for (let i = 0; i < records.length; i += MAX_PUT_RECORDS) {
    const chunk = records.slice(i, i + MAX_PUT_RECORDS);
    const results: PutRecordResult[] = await stream.putRecords(
      chunk.map((record) => ({
        partitionKey: record.eventID,
        data: Buffer.from(JSON.stringify(record), 'utf8'),
      })),
    );
    const failed = results.filter((r) => !r.ok);
    if (failed.length > 0 || results.length !== chunk.length) {
      const first = failed[0] as { errorCode?: string } | undefined;
      throw new InsightsDeliveryError(
        `${failed.length || chunk.length - results.length} of ${chunk.length} Insights records were not put into the stream (${first?.errorCode ?? 'missing results'}); the minute is judged again on the next run`,
      );
    }
  }
}

/** Seeds the baseline from history; returns the counts seeded and the first minute seen. */
async function seed(
  deps: { history: InsightHistorySource; insightTypes: readonly InsightType[] },
  fromMs: number,
  throughMs: number,
): Promise<{ counts: MinuteCount[]; sinceMs: number | undefined }> {
  const aggregator = new MinuteAggregator();
  const { complete } = await deps.history.writeCalls(fromMs, throughMs + MINUTE_MS, (records) => {
    for (const record of records) aggregator.add(record);
  });
  let counts = aggregator.drain().filter((c) => c.minute <= throughMs / MINUTE_MS);
  // A read cut short leaves its oldest minute partly read: the baseline starts after it.
  const oldest = counts[0]?.minute;
  if (!complete && oldest !== undefined) counts = counts.filter((c) => c.minute > oldest);
  const first = counts[0]?.minute;
  return { counts, sinceMs: first === undefined ? undefined : first * MINUTE_MS };
}

/**
 * One scheduled run: judges each minute M ≤ now − 5 not judged yet (oldest first, at most
 * `maxMinutesPerRun`), reading per minute the on-time counts of M and the late counts
 * delivered in M, and per series its one state item. Progress is stored in this order —
 * series states (with what each raised), records into the stream, then the cursor — so a run
 * that stops anywhere is repeated without judging a series twice or losing a record.
 */
export async function runScheduledDetector(
  deps: ScheduledDetectorDeps,
): Promise<ScheduledRunResult> {
  const nowMs = deps.now();
  const target = Math.floor(nowMs / MINUTE_MS) - JUDGE_DELAY_MINUTES;
  const cursor = await deps.state.cursor();
  if (cursor === undefined) {
    // Enabled now: the baseline starts with the oldest history seeded, else with the next minute.
    const throughMs = target * MINUTE_MS;
    const fromMs = throughMs - (deps.seedDays ?? 90) * DAY_MS;
    const seeded = deps.history
      ? await seed({ history: deps.history, insightTypes: deps.insightTypes }, fromMs, throughMs)
      : undefined;
    const sinceMs = seeded?.sinceMs ?? (target + 1) * MINUTE_MS;
    if (seeded && seeded.counts.length > 0) {
      const detector = new InsightsDetector({ sinceMs, insightTypes: deps.insightTypes });
      detector.seed(seeded.counts, throughMs);
      await deps.state.saveSeries(detector.snapshot());
    }
    await deps.state.saveCursor({ judged: target, sinceMs });
    return {
      judged: [],
      records: [],
      ...(seeded ? { seeded: { fromMs, counts: seeded.counts.length } } : {}),
      seriesRead: 0,
    };
  }
  if (cursor.judged >= target) return { judged: [], records: [], seriesRead: 0 };

  const snapshots = await deps.state.series();
  const detector = InsightsDetector.restore(
    { sinceMs: cursor.sinceMs, insightTypes: deps.insightTypes },
    cursor.judged,
    snapshots,
  );
  const last = Math.min(target, cursor.judged + (deps.maxMinutesPerRun ?? 15));
  const judged: number[] = [];
  const records: InsightRecord[] = [];
  for (let minute = cursor.judged + 1; minute <= last; minute += 1) {
    const stored = await deps.counts.countsAt(minute);
    // Overflow items of one counter are summed here.
    const onTime = sumCounts(stored.onTime);
    const late = sumCounts(stored.late);
    // A series a stopped run judged already has these counts in its state.
    const fresh = (count: MinuteCount): boolean =>
      (detector.seriesJudged(count.key) ?? -Infinity) < minute;
    // Decided before judging M, which marks every series judged through M.
    const lateFresh = late.filter((c) => fresh(c) && c.minute <= minute);
    for (const count of onTime.filter(fresh)) detector.add(count);
    records.push(...detector.advance((minute + JUDGE_DELAY_MINUTES) * MINUTE_MS));
    // Late counts feed the baseline only: the minutes they belong to are judged already.
    for (const count of lateFresh) detector.add(count);
    judged.push(minute);
  }
  await deps.state.saveSeries(detector.snapshot());
  if (detector.forgotten.size > 0) await deps.state.deleteSeries([...detector.forgotten]);
  await putAll(deps.stream, records);
  await deps.state.saveCursor({ judged: last, sinceMs: cursor.sinceMs });
  return { judged, records, seriesRead: snapshots.length };
}

/** Sums counts of the same (series, minute) (overflow items of one counter). */
export function sumCounts(counts: readonly MinuteCount[]): MinuteCount[] {
  const byId = new Map<
    string,
    { key: SeriesKey; minute: number; calls: number; attributions: AttributeCounts }
  >();
  for (const count of counts) {
    const id = `${count.minute}|${seriesId(count.key)}`;
    const entry = byId.get(id);
    if (!entry) {
      byId.set(id, { ...count, attributions: structuredClone(count.attributions) });
      continue;
    }
    entry.calls += count.calls;
    for (const attribute of ATTRIBUTES)
      for (const [value, n] of Object.entries(count.attributions[attribute]))
        entry.attributions[attribute][value] = (entry.attributions[attribute][value] ?? 0) + n;
  }
  return [...byId.values()];
}
