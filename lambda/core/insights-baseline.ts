/**
 * The 7-day baseline of one Insights series (docs/formats.md#how-opentrail-raises-insights),
 * kept as 168 hour-of-week slots so that judging a minute reads one small state, never 10,080
 * minute counters.
 *
 * Slot `h % 168` holds the epoch hour `h` it describes, the sum and sum of squares of its
 * minute counts, and the shortest and longest gap between calls that ended in it. Writing
 * hour `h` overwrites hour `h - 168`, which is exactly the hour leaving the window, so the
 * window moves without a sweep. Pure: no SDK, no I/O.
 */

export const HOURS_PER_WEEK = 168;
export const MINUTES_PER_HOUR = 60;
const HOURS_PER_DAY = 24;
/** Hours each side of the judged hour-of-day pooled from every day (diurnal smoothing). */
const NEIGHBOUR_HOURS = 1;
/** A series called at least once in this share of its baseline hours may raise a drop. */
const STEADY_HOUR_SHARE = 0.95;
/** Longest normal gap, in minutes, for which a drop to zero is watched (6 hours). */
const MAX_STEADY_GAP_MINUTES = 360;
/** Floor of a rate: one call a week, so a never-seen series still has a finite baseline. */
export const RATE_FLOOR_PER_MINUTE = 1 / (HOURS_PER_WEEK * MINUTES_PER_HOUR);
/** The diurnal estimate never goes below this share of the weekly rate (sparse keys). */
const WEEKLY_RATE_SHARE_FLOOR = 0.25;
/** Quasi-Poisson dispersion is capped so one clumpy week cannot blind a series. */
const MAX_DISPERSION = 20;

export interface HourSlot {
  hour: number;
  sum: number;
  sumsq: number;
  /** Minutes with at least one call. */
  active: number;
  /** Shortest and longest gap between calls that ended in this hour (minutes), 0 when none. */
  gapMin: number;
  gapMax: number;
}

export type Slots = (HourSlot | null)[];

export function emptySlots(): Slots {
  return new Array<HourSlot | null>(HOURS_PER_WEEK).fill(null);
}

/** The slot of `hour`, reset when it still holds the hour a week before; null when older. */
export function slotFor(slots: Slots, hour: number): HourSlot | null {
  const index = hour % HOURS_PER_WEEK;
  const slot = slots[index];
  if (slot && slot.hour === hour) return slot;
  if (slot && slot.hour > hour) return null; // more than 7 days old: outside every window
  const fresh: HourSlot = { hour, sum: 0, sumsq: 0, active: 0, gapMin: 0, gapMax: 0 };
  slots[index] = fresh;
  return fresh;
}

/**
 * Adds `delta` calls to minute `minute`, whose count was `before`. Sums stay exact; the sum of
 * squares is exact too when `before` is the minute's count so far.
 */
export function addCalls(slots: Slots, minute: number, delta: number, before: number): void {
  const slot = slotFor(slots, Math.floor(minute / MINUTES_PER_HOUR));
  if (!slot || delta === 0) return;
  slot.sum += delta;
  slot.sumsq += (before + delta) ** 2 - before ** 2;
  if (before === 0) slot.active += 1;
}

export function addGap(slots: Slots, minute: number, gap: number): void {
  const slot = slotFor(slots, Math.floor(minute / MINUTES_PER_HOUR));
  if (!slot || gap <= 0) return;
  slot.gapMin = slot.gapMin === 0 ? gap : Math.min(slot.gapMin, gap);
  slot.gapMax = Math.max(slot.gapMax, gap);
}

export interface Baseline {
  /** Expected calls per minute for the judged hour-of-day. */
  readonly rate: number;
  /** Mean calls per minute over the whole window. */
  readonly weekRate: number;
  /** Variance over mean of minute counts, ≥ 1 (1 = Poisson). */
  readonly dispersion: number;
  /** Minutes of baseline behind this estimate (≤ 10,080). */
  readonly minutes: number;
  /** Longest and shortest normal gap when the series is steady enough to watch for a drop. */
  readonly steady?: { readonly gapMin: number; readonly gapMax: number };
}

function inWindow(slots: Slots, hour: number): HourSlot | null {
  const slot = slots[hour % HOURS_PER_WEEK];
  return slot && slot.hour === hour ? slot : null;
}

/**
 * The baseline for minutes of epoch hour `hour`: the 168 whole hours before it, those since
 * `sinceHour` (when counting began) only. The rate is the trimmed mean, over the days of the
 * window, of the same hour-of-day ± 1 hour, so that a diurnal series is compared with its own
 * time of day and one anomalous day in the window does not raise the bar for a week.
 */
export function baselineFor(slots: Slots, hour: number, sinceHour: number): Baseline {
  const first = Math.max(hour - HOURS_PER_WEEK, sinceHour);
  const hours = hour - first;
  if (hours <= 0) return { rate: RATE_FLOOR_PER_MINUTE, weekRate: 0, dispersion: 1, minutes: 0 };
  let weekSum = 0;
  let activeHours = 0;
  let gapMin = Infinity;
  let gapMax = 0;
  for (let h = first; h < hour; h += 1) {
    const slot = inWindow(slots, h);
    if (!slot) continue;
    weekSum += slot.sum;
    if (slot.sum > 0) activeHours += 1;
    if (slot.gapMax > 0) {
      gapMax = Math.max(gapMax, slot.gapMax);
      gapMin = Math.min(gapMin, slot.gapMin);
    }
  }
  const minutes = hours * MINUTES_PER_HOUR;
  const weekRate = weekSum / minutes;

  // Same hour-of-day ± NEIGHBOUR_HOURS on each earlier day in the window.
  const days: { sum: number; sumsq: number; minutes: number }[] = [];
  for (let back = HOURS_PER_DAY; back <= HOURS_PER_WEEK; back += HOURS_PER_DAY) {
    const day = { sum: 0, sumsq: 0, minutes: 0 };
    for (let d = -NEIGHBOUR_HOURS; d <= NEIGHBOUR_HOURS; d += 1) {
      const h = hour - back + d;
      if (h < first || h >= hour) continue;
      const slot = inWindow(slots, h);
      day.minutes += MINUTES_PER_HOUR;
      if (slot) {
        day.sum += slot.sum;
        day.sumsq += slot.sumsq;
      }
    }
    if (day.minutes > 0) days.push(day);
  }
  // Trim the busiest day when there are enough to spare one.
  if (days.length >= 3) {
    let busiest = 0;
    for (let i = 1; i < days.length; i += 1) if (days[i]!.sum > days[busiest]!.sum) busiest = i;
    days.splice(busiest, 1);
  }
  let sum = 0;
  let sumsq = 0;
  let pooled = 0;
  for (const day of days) {
    sum += day.sum;
    sumsq += day.sumsq;
    pooled += day.minutes;
  }
  const diurnal = pooled > 0 ? sum / pooled : weekRate;
  const rate = Math.max(diurnal, weekRate * WEEKLY_RATE_SHARE_FLOOR, RATE_FLOOR_PER_MINUTE);
  const mean = pooled > 0 ? sum / pooled : 0;
  const variance = pooled > 0 ? sumsq / pooled - mean * mean : 0;
  const dispersion = mean > 0 ? Math.min(MAX_DISPERSION, Math.max(1, variance / mean)) : 1;

  const steady =
    activeHours >= STEADY_HOUR_SHARE * hours && gapMax > 0 && gapMax <= MAX_STEADY_GAP_MINUTES
      ? { gapMin, gapMax }
      : undefined;
  return { rate, weekRate, dispersion, minutes, ...(steady ? { steady } : {}) };
}

/** ln k! by Stirling's series (exact table below 20). */
function logFactorial(k: number): number {
  if (k < 20) {
    let acc = 0;
    for (let i = 2; i <= k; i += 1) acc += Math.log(i);
    return acc;
  }
  return k * Math.log(k) - k + 0.5 * Math.log(2 * Math.PI * k) + 1 / (12 * k) - 1 / (360 * k ** 3);
}

/**
 * An upper bound of ln P(X ≥ k) for X ~ Poisson(mu), tight within a few per cent:
 * P(X ≥ k) ≤ P(X = k) · (k + 1) / (k + 1 − mu) for k + 1 > mu. Non-integer k (counts divided by
 * a dispersion) are rounded down, which only makes the bound larger (more cautious).
 */
export function logPoissonTail(k: number, mu: number): number {
  const n = Math.floor(k);
  if (n <= mu || n <= 0) return 0;
  const logPmf = -mu + n * Math.log(mu) - logFactorial(n);
  return Math.min(0, logPmf + Math.log((n + 1) / (n + 1 - mu)));
}
