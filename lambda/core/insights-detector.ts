/**
 * The Insights detector (docs/formats.md#how-opentrail-raises-insights): minute counts in,
 * CloudTrail Insights records (docs/formats.md#insights-events) out. The same code runs in the
 * backtest and is meant for the scheduled detector.
 *
 * Minute M is judged once the clock passes M + 5 minutes (`JUDGE_DELAY_MINUTES`); counts for a
 * minute already judged feed the baseline only. A series is judged once 24 hours of baseline
 * exist, with a wider margin until it has the full 7 days.
 *
 * - Spike (call or error rate up): over the last 1, 5 or 15 minutes, the count is at least
 *   `MARGIN` times the baseline expectation, at least `MIN_CALLS`, and less likely than
 *   e^LOG_ALPHA under a Poisson law scaled by the series' own dispersion. It ends when the
 *   last few minutes (enough for 10 expected calls, 3 to 10) are no longer clearly elevated.
 * - Drop (call rate to zero): a steady series (called in ≥ 95 % of its baseline hours, longest
 *   gap ≤ 6 hours) stays silent longer than its longest normal gap plus a tolerance; it ends
 *   with the next call.
 *
 * Record IDs are derived from the series and start minute, so judging the same counts again
 * yields the same records (the stream's deduplication drops the repeats). Pure: no SDK, no I/O.
 * The rules in code: insights-rules.ts; the records: insights-record.ts; a series' state:
 * insights-series.ts.
 */
import {
  addCalls,
  addGap,
  baselineFor,
  emptySlots,
  HOURS_PER_WEEK,
  MINUTES_PER_HOUR,
  type Baseline,
} from './insights-baseline';
import {
  emptyAttributions,
  INSIGHT_TYPES,
  mergeAttributions,
  MINUTE_MS,
  seriesId,
  type InsightType,
  type MinuteCount,
  type SeriesKey,
} from './insights-counts';
import { insightRecord, type InsightRecord, type OpenInsight } from './insights-record';
import {
  dropStart,
  LOG_ALPHA,
  MARGIN,
  openInsightEnd,
  spikeStart,
  WARM_UP_MARGIN,
} from './insights-rules';
import {
  addDay,
  seriesFromSnapshot,
  snapshotOf,
  type SeriesSnapshot,
  type SeriesState,
} from './insights-series';

export const JUDGE_DELAY_MINUTES = 5;
export const MIN_BASELINE_HOURS = 24;
/** Minutes kept per series for the windows and start/end dating. */
const RECENT_MINUTES = 16;
const MINUTES_PER_WEEK = HOURS_PER_WEEK * MINUTES_PER_HOUR;

export interface InsightsDetectorOptions {
  /** Epoch ms from which counts exist (when counting began, or the warm-up seed's start). */
  readonly sinceMs: number;
  /** @default both */
  readonly insightTypes?: readonly InsightType[];
  /** @default '1.11' */
  readonly eventVersion?: string;
}

/** Summary figures of a detector run. */
export interface InsightsStats {
  series: number;
  judgedMinutes: number;
  lateCounts: number;
}

export class InsightsDetector {
  private readonly series = new Map<string, SeriesState>();
  private readonly sinceMinute: number;
  private readonly types: ReadonlySet<InsightType>;
  private readonly eventVersion: string;
  /** The last minute judged; undefined until the first count arrives. */
  private judged: number | undefined;
  private newest: number | undefined;
  readonly stats: InsightsStats = { series: 0, judgedMinutes: 0, lateCounts: 0 };

  constructor(options: InsightsDetectorOptions) {
    this.sinceMinute = Math.floor(options.sinceMs / MINUTE_MS);
    this.types = new Set(options.insightTypes ?? INSIGHT_TYPES);
    this.eventVersion = options.eventVersion ?? '1.11';
  }

  /** The last minute judged, if any. */
  get judgedThrough(): number | undefined {
    return this.judged;
  }

  /**
   * A detector restored from stored series (the scheduled detector's state between runs),
   * judged through `judged`. A series whose own `judged` is later was judged by a run that
   * stopped before it recorded its progress: it is not judged again for those minutes.
   */
  static restore(
    options: InsightsDetectorOptions,
    judged: number,
    snapshots: readonly SeriesSnapshot[],
  ): InsightsDetector {
    const detector = new InsightsDetector(options);
    detector.judged = judged;
    for (const snap of snapshots) {
      const state = seriesFromSnapshot(snap, judged);
      detector.series.set(state.id, state);
    }
    detector.stats.series = detector.series.size;
    return detector;
  }

  /** The state of every series, for storing between runs. */
  snapshot(): SeriesSnapshot[] {
    return [...this.series.values()].map(snapshotOf);
  }

  /** The last minute a series was judged (undefined: never, or not known here). */
  seriesJudged(key: SeriesKey): number | undefined {
    return this.series.get(seriesId(key))?.judged;
  }

  /** Ids of series known at some point and forgotten since (silent for a week). */
  readonly forgotten = new Set<string>();

  private stateFor(key: SeriesKey): SeriesState {
    const id = seriesId(key);
    let state = this.series.get(id);
    if (!state) {
      state = { key, id, slots: emptySlots(), recent: new Map(), days: new Map() };
      this.series.set(id, state);
      this.stats.series += 1;
    }
    return state;
  }

  /**
   * Warm-up (docs/formats.md#how-opentrail-raises-insights): minute counts from the event
   * history, up to and including the minute of `throughMs`, go straight into the baseline —
   * gaps between calls included — and are never judged, so an old anomaly raises nothing.
   * Judging resumes with the minute after. `sinceMs` should be the start of the history read.
   */
  seed(counts: readonly MinuteCount[], throughMs: number): void {
    const through = Math.floor(throughMs / MINUTE_MS);
    const ordered = counts
      .filter((c) => c.minute <= through && c.calls > 0 && this.types.has(c.key.insightType))
      .sort((a, b) => a.minute - b.minute);
    for (const count of ordered) {
      const state = this.stateFor(count.key);
      addCalls(state.slots, count.minute, count.calls, 0);
      if (state.lastCall !== undefined && count.minute > state.lastCall)
        addGap(state.slots, count.minute, count.minute - state.lastCall);
      if (state.lastCall === undefined || count.minute > state.lastCall)
        state.lastCall = count.minute;
      addDay(state, count.minute, count.attributions);
    }
    this.judged = Math.max(this.judged ?? through, through);
  }

  /** Adds one minute count. Counts for judged minutes feed the baseline only. */
  add(count: MinuteCount): void {
    if (!this.types.has(count.key.insightType) || count.calls <= 0) return;
    const state = this.stateFor(count.key);
    if (this.newest === undefined || count.minute > this.newest) this.newest = count.minute;
    if (this.judged === undefined) this.judged = count.minute - 1;
    if (count.minute > this.judged) {
      let recent = state.recent.get(count.minute);
      if (!recent) {
        recent = { calls: 0, rate: 0, attributions: emptyAttributions() };
        state.recent.set(count.minute, recent);
      }
      recent.calls += count.calls;
      mergeAttributions(recent.attributions, count.attributions);
      return;
    }
    // Late: baseline only.
    this.stats.lateCounts += 1;
    const before = state.recent.get(count.minute)?.calls ?? 0;
    addCalls(state.slots, count.minute, count.calls, before);
    addDay(state, count.minute, count.attributions);
  }

  /** Judges every minute M with M + 5 ≤ the minute of `nowMs`; returns the records raised. */
  advance(nowMs: number): InsightRecord[] {
    return this.judgeThrough(Math.floor(nowMs / MINUTE_MS) - JUDGE_DELAY_MINUTES);
  }

  /** At the end of recorded input: judges every minute seen, as if 5 more minutes passed. */
  finish(): InsightRecord[] {
    return this.newest === undefined ? [] : this.judgeThrough(this.newest);
  }

  private judgeThrough(target: number): InsightRecord[] {
    const out: InsightRecord[] = [];
    if (this.judged === undefined) return out;
    for (let minute = this.judged + 1; minute <= target; minute += 1) {
      for (const state of this.series.values()) {
        // Judged by an earlier run that stopped before recording its progress: its records
        // then are raised again, unchanged, and the stream's deduplication drops the repeats.
        if (state.judged !== undefined && state.judged >= minute) {
          if (state.judged === minute) out.push(...(state.raised ?? []));
          continue;
        }
        const before = out.length;
        this.judge(state, minute, out);
        state.judged = minute;
        if (out.length > before) state.raised = [...(state.raised ?? []), ...out.slice(before)];
      }
      this.judged = minute;
      this.stats.judgedMinutes += 1;
    }
    return out;
  }

  private baseline(state: SeriesState, hour: number): Baseline {
    if (state.cached?.hour !== hour)
      state.cached = {
        hour,
        baseline: baselineFor(state.slots, hour, Math.floor(this.sinceMinute / MINUTES_PER_HOUR)),
      };
    return state.cached.baseline;
  }

  private judge(state: SeriesState, minute: number, out: InsightRecord[]): void {
    let recent = state.recent.get(minute);
    if (!recent) {
      recent = { calls: 0, rate: 0, attributions: emptyAttributions() };
      state.recent.set(minute, recent);
    }
    const hour = Math.floor(minute / MINUTES_PER_HOUR);
    const baseline = this.baseline(state, hour);
    recent.rate = baseline.rate;
    const calls = recent.calls;
    const silence = state.lastCall === undefined ? undefined : minute - state.lastCall;
    addCalls(state.slots, minute, calls, 0);
    if (calls > 0) {
      if (silence !== undefined) addGap(state.slots, minute, silence);
      state.lastCall = minute;
      addDay(state, minute, recent.attributions);
    }
    const coverageHours = hour - Math.floor(this.sinceMinute / MINUTES_PER_HOUR);
    if (coverageHours >= MIN_BASELINE_HOURS) {
      const short =
        Math.max(0, HOURS_PER_WEEK - coverageHours) / (HOURS_PER_WEEK - MIN_BASELINE_HOURS);
      const margin = MARGIN + WARM_UP_MARGIN * short;
      const logAlpha = LOG_ALPHA * (1 + short);
      const open = state.open;
      if (open) {
        const end = openInsightEnd(state, minute, baseline, this.sinceMinute);
        if (end !== undefined) {
          state.open = undefined;
          state.lastEnd = end;
          out.push(this.record(state, open, 'End', end));
        }
      } else {
        const start =
          spikeStart(state, minute, baseline, margin, logAlpha, this.sinceMinute) ??
          (calls === 0 && silence !== undefined
            ? dropStart(state, minute, baseline, silence)
            : undefined);
        if (start) {
          state.open = start;
          out.push(this.record(state, start, 'Start', minute + 1));
        }
      }
    }
    state.recent.delete(minute - RECENT_MINUTES);
    // A series silent for a whole week has nothing left in its baseline: forget it.
    if (
      !state.open &&
      state.lastCall !== undefined &&
      minute - state.lastCall > MINUTES_PER_WEEK &&
      ![...state.recent.keys()].some((m) => m > minute)
    ) {
      this.series.delete(state.id);
      this.forgotten.add(state.id);
    }
  }

  /** A Start (dated at the insight's start, covering it up to `until`) or End record. */
  private record(
    state: SeriesState,
    open: OpenInsight,
    phase: 'Start' | 'End',
    until: number,
  ): InsightRecord {
    return insightRecord(state, open, phase, until, this.eventVersion);
  }
}
