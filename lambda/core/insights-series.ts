/**
 * One series' detector state, its stored form between runs (`SeriesSnapshot`), and the per-day
 * attribution counts its baseline attributions come from.
 */
import type { Baseline, Slots } from './insights-baseline';
import {
  emptyAttributions,
  mergeAttributions,
  trimAttributions,
  type AttributeCounts,
  type SeriesKey,
} from './insights-counts';
import type { InsightRecord, OpenInsight } from './insights-record';

const MINUTES_PER_DAY = 1440;
const DAYS_PER_WEEK = 7;
/** Distinct values kept per attribute per day for baseline attributions. */
const MAX_VALUES_PER_DAY = 50;

export interface RecentMinute {
  calls: number;
  rate: number;
  attributions: AttributeCounts;
}

export interface SeriesState {
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

/**
 * A series restored from its snapshot for a run that has judged through `judged`: the records
 * it raised are kept only when it was judged later than that (a run that stopped early).
 */
export function seriesFromSnapshot(snap: SeriesSnapshot, judged: number): SeriesState {
  return {
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
}

/** The state of a series, for storing between runs. */
export function snapshotOf(state: SeriesState): SeriesSnapshot {
  return {
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
  };
}

/** Adds a minute's attributions to its day; days older than a week are dropped. */
export function addDay(state: SeriesState, minute: number, attributions: AttributeCounts): void {
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

/** The attributions of the week before the day of `minute`. */
export function baselineAttributions(state: SeriesState, minute: number): AttributeCounts {
  const day = Math.floor(minute / MINUTES_PER_DAY);
  const out = emptyAttributions();
  for (const [d, counts] of state.days)
    if (d >= day - DAYS_PER_WEEK && d < day) mergeAttributions(out, counts);
  return out;
}
