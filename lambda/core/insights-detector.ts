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
 */
import { createHash } from 'node:crypto';
import { formatIsoSeconds } from './contracts';
import {
  addCalls,
  addGap,
  baselineFor,
  emptySlots,
  HOURS_PER_WEEK,
  logPoissonTail,
  MINUTES_PER_HOUR,
  type Baseline,
  type Slots,
} from './insights-baseline';
import {
  ATTRIBUTES,
  emptyAttributions,
  INSIGHT_TYPES,
  mergeAttributions,
  MINUTE_MS,
  seriesId,
  trimAttributions,
  type AttributeCounts,
  type InsightType,
  type MinuteCount,
  type SeriesKey,
} from './insights-counts';

export const JUDGE_DELAY_MINUTES = 5;
export const MIN_BASELINE_HOURS = 24;
/**
 * The margin: a rate must at least double. Diurnal estimates from one week are off by tens of
 * per cent from day to day; a doubling is well clear of that, and the Poisson test below keeps
 * low-volume series (where doubling is noise) quiet.
 */
export const MARGIN = 2;
/** Added to the margin while the baseline is short (24 h → 3×, 7 days → 2×). */
const WARM_UP_MARGIN = 1;
/**
 * ln of the per-window false-alarm probability. 1e-7 per window: 3 windows × 10,080 minutes
 * × 100 series is 3 million tests a week, mostly overlapping; the bench measures the result.
 */
export const LOG_ALPHA = Math.log(1e-7);
/** A spike needs at least this many calls in its window: two stray calls are not an Insight. */
export const MIN_CALLS = 10;
const WINDOWS = [1, 5, 15] as const;
const END_MARGIN = 1.5;
const END_LOG_ALPHA = Math.log(0.01);
const END_EXPECTED_CALLS = 10;
const END_MIN_WINDOW = 3;
const END_MAX_WINDOW = 10;
/** Minutes kept per series for the windows and start/end dating. */
const RECENT_MINUTES = 16;
const TOP_ATTRIBUTIONS = 5;
const MINUTES_PER_DAY = 1440;
const DAYS_PER_WEEK = 7;
/** Distinct values kept per attribute per day for baseline attributions. */
const MAX_VALUES_PER_DAY = 50;
const MINUTES_PER_WEEK = HOURS_PER_WEEK * MINUTES_PER_HOUR;

export interface InsightsDetectorOptions {
  /** Epoch ms from which counts exist (when counting began, or the warm-up seed's start). */
  readonly sinceMs: number;
  /** @default both */
  readonly insightTypes?: readonly InsightType[];
  /** @default '1.11' */
  readonly eventVersion?: string;
}

export interface InsightRecord {
  readonly eventVersion: string;
  readonly eventTime: string;
  readonly awsRegion: string;
  readonly eventID: string;
  readonly eventType: 'AwsCloudTrailInsight';
  readonly recipientAccountId: string;
  readonly sharedEventID: string;
  readonly insightDetails: {
    readonly state: 'Start' | 'End';
    readonly eventSource: string;
    readonly eventName: string;
    readonly insightType: InsightType;
    readonly errorCode?: string;
    readonly insightContext: {
      readonly statistics: {
        readonly baseline: { readonly average: number };
        readonly insight: { readonly average: number };
        readonly insightDuration: number;
        readonly baselineDuration: number;
      };
      readonly attributions: readonly {
        readonly attribute: string;
        readonly insight: readonly { readonly value: string; readonly average: number }[];
        readonly baseline: readonly { readonly value: string; readonly average: number }[];
      }[];
    };
  };
  readonly eventCategory: 'Insight';
}

export interface RecentMinute {
  calls: number;
  rate: number;
  attributions: AttributeCounts;
}

export interface OpenInsight {
  readonly kind: 'spike' | 'drop';
  readonly start: number;
  readonly sharedEventID: string;
  readonly baselineRate: number;
  readonly baselineMinutes: number;
  readonly baselineAttributions: AttributeCounts;
  calls: number;
  readonly attributions: AttributeCounts;
}

interface SeriesState {
  readonly key: SeriesKey;
  readonly id: string;
  readonly slots: Slots;
  readonly recent: Map<number, RecentMinute>;
  readonly days: Map<number, AttributeCounts>;
  lastCall?: number;
  /** The End minute of the last Insight: a new one never reaches back before it. */
  lastEnd?: number;
  open?: OpenInsight;
  cached?: { hour: number; baseline: Baseline };
  /** The last minute this series was judged (a restored series may be ahead of the run). */
  judged?: number;
  /** The records this series raised since the run it was restored for began (re-raised on a rerun). */
  raised?: InsightRecord[];
}

/**
 * One series' detector state, as the scheduled detector stores it between runs (JSON-safe):
 * the 168 hour-of-week slots, the last 16 minutes, 8 days of attributions, the open Insight,
 * the last minute judged and the records raised then.
 */
export interface SeriesSnapshot {
  readonly id: string;
  readonly key: SeriesKey;
  readonly judged?: number;
  readonly slots: Slots;
  readonly recent: readonly [number, RecentMinute][];
  readonly days: readonly [number, AttributeCounts][];
  readonly lastCall?: number;
  readonly lastEnd?: number;
  readonly open?: OpenInsight;
  readonly raised?: readonly InsightRecord[];
}

/** Summary figures of a detector run. */
export interface InsightsStats {
  series: number;
  judgedMinutes: number;
  lateCounts: number;
}

function uuidFrom(text: string): string {
  const hex = createHash('sha256').update(text).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function minuteTime(minute: number): string {
  return formatIsoSeconds(minute * MINUTE_MS);
}

/** Averages as CloudTrail prints them: plain numbers, 8 significant digits. */
function average(value: number): number {
  return Number(value.toPrecision(8));
}

function top(
  counts: Record<string, number>,
  minutes: number,
): { value: string; average: number }[] {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, TOP_ATTRIBUTIONS)
    .map(([value, n]) => ({ value, average: average(minutes > 0 ? n / minutes : 0) }));
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
      const state: SeriesState = {
        key: snap.key,
        id: snap.id,
        slots: snap.slots.map((slot) => (slot ? { ...slot } : null)),
        recent: new Map(snap.recent.map(([m, r]) => [m, structuredClone(r)])),
        days: new Map(snap.days.map(([d, c]) => [d, structuredClone(c)])),
        ...(snap.lastCall !== undefined ? { lastCall: snap.lastCall } : {}),
        ...(snap.lastEnd !== undefined ? { lastEnd: snap.lastEnd } : {}),
        ...(snap.open ? { open: structuredClone(snap.open) } : {}),
        ...(snap.judged !== undefined ? { judged: snap.judged } : {}),
        // Records raised after `judged` only: those of earlier runs are in the stream already.
        ...(snap.raised && (snap.judged ?? -Infinity) > judged ? { raised: [...snap.raised] } : {}),
      };
      detector.series.set(state.id, state);
    }
    detector.stats.series = detector.series.size;
    return detector;
  }

  /** The state of every series, for storing between runs. */
  snapshot(): SeriesSnapshot[] {
    return [...this.series.values()].map((state) => ({
      id: state.id,
      key: state.key,
      ...(state.judged !== undefined ? { judged: state.judged } : {}),
      slots: state.slots,
      recent: [...state.recent.entries()],
      days: [...state.days.entries()],
      ...(state.lastCall !== undefined ? { lastCall: state.lastCall } : {}),
      ...(state.lastEnd !== undefined ? { lastEnd: state.lastEnd } : {}),
      ...(state.open ? { open: state.open } : {}),
      ...(state.raised ? { raised: state.raised } : {}),
    }));
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
      this.addDay(state, count.minute, count.attributions);
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
    this.addDay(state, count.minute, count.attributions);
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

  private addDay(state: SeriesState, minute: number, attributions: AttributeCounts): void {
    const day = Math.floor(minute / MINUTES_PER_DAY);
    let counts = state.days.get(day);
    if (!counts) {
      counts = emptyAttributions();
      state.days.set(day, counts);
      for (const [d, old] of state.days) {
        if (d < day - DAYS_PER_WEEK) state.days.delete(d);
        else if (d < day) trimAttributions(old, MAX_VALUES_PER_DAY);
      }
    }
    mergeAttributions(counts, attributions);
  }

  private baselineAttributions(state: SeriesState, minute: number): AttributeCounts {
    const day = Math.floor(minute / MINUTES_PER_DAY);
    const out = emptyAttributions();
    for (const [d, counts] of state.days)
      if (d >= day - DAYS_PER_WEEK && d < day) mergeAttributions(out, counts);
    return out;
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
      this.addDay(state, minute, recent.attributions);
    }
    const coverageHours = hour - Math.floor(this.sinceMinute / MINUTES_PER_HOUR);
    if (coverageHours >= MIN_BASELINE_HOURS) {
      const short =
        Math.max(0, HOURS_PER_WEEK - coverageHours) / (HOURS_PER_WEEK - MIN_BASELINE_HOURS);
      const margin = MARGIN + WARM_UP_MARGIN * short;
      const logAlpha = LOG_ALPHA * (1 + short);
      if (state.open) this.judgeOpen(state, minute, baseline, out);
      else {
        this.openSpike(state, minute, baseline, margin, logAlpha, out);
        if (!state.open && calls === 0 && silence !== undefined)
          this.openDrop(state, minute, baseline, silence, out);
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

  private window(
    state: SeriesState,
    from: number,
    to: number,
  ): { calls: number; expected: number } {
    let calls = 0;
    let expected = 0;
    for (let m = Math.max(from, this.sinceMinute); m <= to; m += 1) {
      const r = state.recent.get(m);
      if (!r) continue;
      calls += r.calls;
      expected += r.rate;
    }
    return { calls, expected };
  }

  private openSpike(
    state: SeriesState,
    minute: number,
    baseline: Baseline,
    margin: number,
    logAlpha: number,
    out: InsightRecord[],
  ): void {
    const phi = baseline.dispersion;
    for (const width of WINDOWS) {
      const from = Math.max(minute - width + 1, state.lastEnd ?? -Infinity);
      const { calls, expected } = this.window(state, from, minute);
      if (calls < MIN_CALLS || calls < margin * expected) continue;
      if (logPoissonTail(calls / phi, expected / phi) > logAlpha) continue;
      // Date the start at the first minute from which the rest of the window is elevated.
      let start = minute;
      for (let m = from; m < minute; m += 1) {
        const r = state.recent.get(m);
        if (!r || r.calls <= r.rate) continue;
        const rest = this.window(state, m, minute);
        if (rest.calls >= margin * rest.expected) {
          start = m;
          break;
        }
      }
      const open: OpenInsight = {
        kind: 'spike',
        start,
        sharedEventID: uuidFrom(`${state.id}|${start}|spike`),
        baselineRate: baseline.rate,
        baselineMinutes: baseline.minutes,
        baselineAttributions: this.baselineAttributions(state, minute),
        calls: 0,
        attributions: emptyAttributions(),
      };
      for (let m = start; m <= minute; m += 1) {
        const r = state.recent.get(m);
        if (!r) continue;
        open.calls += r.calls;
        mergeAttributions(open.attributions, r.attributions);
      }
      state.open = open;
      out.push(this.record(state, open, 'Start', minute + 1));
      return;
    }
  }

  private openDrop(
    state: SeriesState,
    minute: number,
    baseline: Baseline,
    silence: number,
    out: InsightRecord[],
  ): void {
    if (state.key.insightType !== 'ApiCallRateInsight' || !baseline.steady) return;
    const { gapMin, gapMax } = baseline.steady;
    // Minute resolution costs ±1 minute; a jittery schedule shows its jitter in the gap spread.
    const tolerance = Math.max(2, gapMax - gapMin + 1);
    if (silence <= gapMax + tolerance) return;
    const start = state.lastCall! + gapMax;
    const open: OpenInsight = {
      kind: 'drop',
      start,
      sharedEventID: uuidFrom(`${state.id}|${start}|drop`),
      baselineRate: baseline.weekRate,
      baselineMinutes: baseline.minutes,
      baselineAttributions: this.baselineAttributions(state, minute),
      calls: 0,
      attributions: emptyAttributions(),
    };
    state.open = open;
    out.push(this.record(state, open, 'Start', minute + 1));
  }

  private judgeOpen(
    state: SeriesState,
    minute: number,
    baseline: Baseline,
    out: InsightRecord[],
  ): void {
    const open = state.open!;
    const recent = state.recent.get(minute)!;
    if (open.kind === 'drop') {
      if (recent.calls > 0 || !baseline.steady) {
        state.open = undefined;
        state.lastEnd = minute;
        out.push(this.record(state, open, 'End', minute));
      }
      return;
    }
    open.calls += recent.calls;
    mergeAttributions(open.attributions, recent.attributions);
    const rate = Math.max(recent.rate, Number.MIN_VALUE);
    const width = Math.min(
      END_MAX_WINDOW,
      Math.max(END_MIN_WINDOW, Math.ceil(END_EXPECTED_CALLS / rate)),
    );
    const from = Math.max(minute - width + 1, open.start);
    if (minute - from + 1 < END_MIN_WINDOW) return;
    const { calls, expected } = this.window(state, from, minute);
    const phi = baseline.dispersion;
    const calm =
      calls <= END_MARGIN * expected || logPoissonTail(calls / phi, expected / phi) > END_LOG_ALPHA;
    if (!calm) return;
    // The insight ended after the last minute in the window that was still clearly elevated.
    let end = from;
    for (let m = minute; m >= from; m -= 1) {
      const r = state.recent.get(m);
      if (
        r &&
        r.calls > END_MARGIN * r.rate &&
        logPoissonTail(r.calls / phi, r.rate / phi) <= END_LOG_ALPHA
      ) {
        end = m + 1;
        break;
      }
    }
    for (let m = end; m <= minute; m += 1) {
      const r = state.recent.get(m);
      if (!r) continue;
      open.calls -= r.calls;
      mergeAttributions(open.attributions, r.attributions, -1);
    }
    state.open = undefined;
    state.lastEnd = Math.max(end, open.start + 1);
    out.push(this.record(state, open, 'End', state.lastEnd));
  }

  /** A Start (dated at the insight's start, covering it up to `until`) or End record. */
  private record(
    state: SeriesState,
    open: OpenInsight,
    phase: 'Start' | 'End',
    until: number,
  ): InsightRecord {
    const duration = Math.max(1, until - open.start);
    const key = state.key;
    return {
      eventVersion: this.eventVersion,
      eventTime: minuteTime(phase === 'Start' ? open.start : until),
      awsRegion: key.region,
      eventID: uuidFrom(`${state.id}|${open.start}|${open.kind}|${phase}`),
      eventType: 'AwsCloudTrailInsight',
      recipientAccountId: key.account,
      sharedEventID: open.sharedEventID,
      insightDetails: {
        state: phase,
        eventSource: key.eventSource,
        eventName: key.eventName,
        insightType: key.insightType,
        ...(key.errorCode !== undefined ? { errorCode: key.errorCode } : {}),
        insightContext: {
          statistics: {
            baseline: { average: average(open.baselineRate) },
            insight: { average: average(open.calls / duration) },
            insightDuration: duration,
            baselineDuration: open.baselineMinutes,
          },
          attributions: ATTRIBUTES.map((attribute) => ({
            attribute,
            insight: top(open.attributions[attribute], duration),
            baseline: top(open.baselineAttributions[attribute], open.baselineMinutes),
          })),
        },
      },
      eventCategory: 'Insight',
    };
  }
}
