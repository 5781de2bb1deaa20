/**
 * The Insights backtest (docs/formats.md#how-opentrail-raises-insights): recorded events, in
 * the order read, through the same counting and detector as live traffic. The clock is the
 * newest eventTime seen, so minute M is judged once an event of M + 5 or later has been read;
 * older events then feed the baseline only, exactly as late arrivals do live. A record whose
 * eventID was read within the 2 hours of eventTime before it counts once (replays of a file
 * count once); older IDs are forgotten so memory stays bounded on long inputs.
 *
 * Keeps, per series, the per-minute counts and expected rates that the HTML report draws.
 * Pure: no SDK, no I/O.
 */
import {
  MinuteAggregator,
  MINUTE_MS,
  seriesId,
  type CountableRecord,
  type InsightType,
  type SeriesKey,
} from './insights-counts';
import { InsightsDetector } from './insights-detector';
import type { InsightRecord } from './insights-record';

const DEDUP_HOURS = 2;
const HOUR_MS = 3_600_000;

export interface BacktestOptions {
  /** @default both */
  readonly insightTypes?: readonly InsightType[];
  /** Keep per-minute series for a report. @default false */
  readonly keepSeries?: boolean;
  /**
   * Records with a later eventTime are skipped (counted in `future`), as ingest refuses them:
   * one bogus timestamp would otherwise move the clock years ahead. @default no limit
   */
  readonly notAfterMs?: number;
}

export interface SeriesTrace {
  readonly key: SeriesKey;
  /** Minute → calls counted on time. */
  readonly calls: Map<number, number>;
}

export class InsightsBacktest {
  private detector: InsightsDetector | undefined;
  private readonly aggregator = new MinuteAggregator();
  /** eventIDs read, by hour of eventTime (DEDUP_HOURS kept). */
  private readonly seen = new Map<number, Set<string>>();
  private readonly traces = new Map<string, SeriesTrace>();
  private clockMs = -Infinity;
  readonly records: InsightRecord[] = [];
  events = 0;
  counted = 0;
  duplicates = 0;
  future = 0;
  firstMs = Infinity;

  constructor(private readonly options: BacktestOptions = {}) {}

  /** Reads one batch of records (a log file, say); returns the Insights it raised. */
  addBatch(batch: readonly CountableRecord[]): InsightRecord[] {
    for (const record of batch) {
      this.events += 1;
      const ms = this.aggregator.timeOf(record.eventTime);
      if (ms === undefined) continue;
      if (this.options.notAfterMs !== undefined && ms > this.options.notAfterMs) {
        this.future += 1;
        continue;
      }
      const id = (record as { eventID?: unknown }).eventID;
      if (typeof id === 'string' && this.isDuplicate(id, ms)) {
        this.duplicates += 1;
        continue;
      }
      if (ms < this.firstMs) this.firstMs = ms;
      if (ms > this.clockMs) this.clockMs = ms;
      this.counted += this.aggregator.add(record, ms) > 0 ? 1 : 0;
    }
    const counts = this.aggregator.drain();
    if (counts.length === 0) return [];
    // Counting began with the first event read: the baseline starts there.
    this.detector ??= new InsightsDetector({
      sinceMs: Math.floor(this.firstMs / MINUTE_MS) * MINUTE_MS,
      ...(this.options.insightTypes ? { insightTypes: this.options.insightTypes } : {}),
    });
    const judged = this.detector.judgedThrough;
    for (const count of counts) {
      this.detector.add(count);
      if (this.options.keepSeries && (judged === undefined || count.minute > judged)) {
        const id = seriesId(count.key);
        let trace = this.traces.get(id);
        if (!trace) {
          trace = { key: count.key, calls: new Map() };
          this.traces.set(id, trace);
        }
        trace.calls.set(count.minute, (trace.calls.get(count.minute) ?? 0) + count.calls);
      }
    }
    const raised = this.detector.advance(this.clockMs);
    this.records.push(...raised);
    return raised;
  }

  private isDuplicate(id: string, ms: number): boolean {
    const hour = Math.floor(ms / HOUR_MS);
    for (let h = hour - DEDUP_HOURS; h <= hour + DEDUP_HOURS; h += 1)
      if (this.seen.get(h)?.has(id)) return true;
    let ids = this.seen.get(hour);
    if (!ids) {
      ids = new Set();
      this.seen.set(hour, ids);
      const newest = Math.max(...this.seen.keys());
      for (const h of this.seen.keys()) if (h < newest - DEDUP_HOURS) this.seen.delete(h);
    }
    ids.add(id);
    return false;
  }

  /** At the end of input: judges the minutes still pending. */
  finish(): InsightRecord[] {
    const raised = this.detector?.finish() ?? [];
    this.records.push(...raised);
    return raised;
  }

  /** Per-minute calls of the series that raised an Insight. */
  tracesWithInsights(): SeriesTrace[] {
    const ids = new Set(
      this.records.map((r) =>
        seriesId({
          account: r.recipientAccountId,
          region: r.awsRegion,
          eventSource: r.insightDetails.eventSource,
          eventName: r.insightDetails.eventName,
          insightType: r.insightDetails.insightType,
          ...(r.insightDetails.errorCode !== undefined
            ? { errorCode: r.insightDetails.errorCode }
            : {}),
        }),
      ),
    );
    return [...ids].flatMap((id) => {
      const trace = this.traces.get(id);
      return trace ? [trace] : [];
    });
  }
}
