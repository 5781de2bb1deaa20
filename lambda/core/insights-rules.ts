/**
 * The spike and drop rules of the Insights detector (docs/formats.md#how-opentrail-raises-insights;
 * in words at the top of insights-detector.ts) over one series' state: whether an Insight starts
 * at a minute and from which minute, and when an open one ends.
 */
import { logPoissonTail, type Baseline } from './insights-baseline';
import { emptyAttributions, mergeAttributions } from './insights-counts';
import { uuidFrom, type OpenInsight } from './insights-record';
import { baselineAttributions, type SeriesState } from './insights-series';

/**
 * The margin: a rate must at least double. Diurnal estimates from one week are off by tens of
 * per cent from day to day; a doubling is well clear of that, and the Poisson test below keeps
 * low-volume series (where doubling is noise) quiet.
 */
export const MARGIN = 2;
/** Added to the margin while the baseline is short (24 h → 3×, 7 days → 2×). */
export const WARM_UP_MARGIN = 1;
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

function windowSum(
  state: SeriesState,
  from: number,
  to: number,
  sinceMinute: number,
): { calls: number; expected: number } {
  let calls = 0;
  let expected = 0;
  for (let m = Math.max(from, sinceMinute); m <= to; m += 1) {
    const r = state.recent.get(m);
    if (!r) continue;
    calls += r.calls;
    expected += r.rate;
  }
  return { calls, expected };
}

/** The spike that starts at `minute`, dated back to its first elevated minute, if any. */
export function spikeStart(
  state: SeriesState,
  minute: number,
  baseline: Baseline,
  margin: number,
  logAlpha: number,
  sinceMinute: number,
): OpenInsight | undefined {
  const phi = baseline.dispersion;
  for (const width of WINDOWS) {
    const from = Math.max(minute - width + 1, state.lastEnd ?? -Infinity);
    const { calls, expected } = windowSum(state, from, minute, sinceMinute);
    if (calls < MIN_CALLS || calls < margin * expected) continue;
    if (logPoissonTail(calls / phi, expected / phi) > logAlpha) continue;
    // Date the start at the first minute from which the rest of the window is elevated.
    let start = minute;
    for (let m = from; m < minute; m += 1) {
      const r = state.recent.get(m);
      if (!r || r.calls <= r.rate) continue;
      const rest = windowSum(state, m, minute, sinceMinute);
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
      baselineAttributions: baselineAttributions(state, minute),
      calls: 0,
      attributions: emptyAttributions(),
    };
    for (let m = start; m <= minute; m += 1) {
      const r = state.recent.get(m);
      if (!r) continue;
      open.calls += r.calls;
      mergeAttributions(open.attributions, r.attributions);
    }
    return open;
  }
  return undefined;
}

/** The drop of a steady series silent for `silence` minutes, if it is longer than its gaps. */
export function dropStart(
  state: SeriesState,
  minute: number,
  baseline: Baseline,
  silence: number,
): OpenInsight | undefined {
  if (state.key.insightType !== 'ApiCallRateInsight' || !baseline.steady) return undefined;
  const { gapMin, gapMax } = baseline.steady;
  // Minute resolution costs ±1 minute; a jittery schedule shows its jitter in the gap spread.
  const tolerance = Math.max(2, gapMax - gapMin + 1);
  if (silence <= gapMax + tolerance) return undefined;
  const start = state.lastCall! + gapMax;
  return {
    kind: 'drop',
    start,
    sharedEventID: uuidFrom(`${state.id}|${start}|drop`),
    baselineRate: baseline.weekRate,
    baselineMinutes: baseline.minutes,
    baselineAttributions: baselineAttributions(state, minute),
    calls: 0,
    attributions: emptyAttributions(),
  };
}

/**
 * The minute at which the open Insight ends, if it ends at `minute`: a drop with the next call,
 * a spike when its last few minutes are no longer clearly elevated (its counts from the end on
 * are taken back out of it).
 */
export function openInsightEnd(
  state: SeriesState,
  minute: number,
  baseline: Baseline,
  sinceMinute: number,
): number | undefined {
  const open = state.open!;
  const recent = state.recent.get(minute)!;
  if (open.kind === 'drop') {
    return recent.calls > 0 || !baseline.steady ? minute : undefined;
  }
  open.calls += recent.calls;
  mergeAttributions(open.attributions, recent.attributions);
  const rate = Math.max(recent.rate, Number.MIN_VALUE);
  const width = Math.min(
    END_MAX_WINDOW,
    Math.max(END_MIN_WINDOW, Math.ceil(END_EXPECTED_CALLS / rate)),
  );
  const from = Math.max(minute - width + 1, open.start);
  if (minute - from + 1 < END_MIN_WINDOW) return undefined;
  const { calls, expected } = windowSum(state, from, minute, sinceMinute);
  const phi = baseline.dispersion;
  const calm =
    calls <= END_MARGIN * expected || logPoissonTail(calls / phi, expected / phi) > END_LOG_ALPHA;
  if (!calm) return undefined;
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
  return Math.max(end, open.start + 1);
}
