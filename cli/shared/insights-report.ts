/**
 * The backtest's HTML report: one self-contained page (inline CSS and SVG, no script, no
 * http(s) reference), one chart per series that raised an Insight: calls per minute against
 * the baseline's expected rate and the 2× start margin, Insight windows shaded.
 *
 * The expected rate is recomputed from the series' own counts with the detector's baseline
 * code (lambda/core/insights-baseline.ts), so the band is the one the detector judged against.
 */
import {
  addCalls,
  baselineFor,
  emptySlots,
  MINUTES_PER_HOUR,
} from '../../lambda/core/insights-baseline';
import type { SeriesTrace } from '../../lambda/core/insights-backtest';
import { MINUTE_MS, seriesId, type SeriesKey } from '../../lambda/core/insights-counts';
import type { InsightRecord } from '../../lambda/core/insights-record';
import { MARGIN } from '../../lambda/core/insights-rules';

const WIDTH = 960;
const HEIGHT = 220;
const PAD = 36;
/** Minutes shown around the Insights of a series (before the first, after the last). */
const CONTEXT_MINUTES = 6 * 60;

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function keyOf(record: InsightRecord): string {
  const d = record.insightDetails;
  const key: SeriesKey = {
    account: record.recipientAccountId,
    region: record.awsRegion,
    eventSource: d.eventSource,
    eventName: d.eventName,
    insightType: d.insightType,
    ...(d.errorCode !== undefined ? { errorCode: d.errorCode } : {}),
  };
  return seriesId(key);
}

function minuteOf(eventTime: string): number {
  return Date.parse(eventTime) / MINUTE_MS;
}

function chart(trace: SeriesTrace, records: readonly InsightRecord[], sinceMinute: number): string {
  const windows: [number, number][] = [];
  const starts = new Map<string, number>();
  for (const r of records) {
    if (r.insightDetails.state === 'Start') starts.set(r.sharedEventID, minuteOf(r.eventTime));
    else {
      const start = starts.get(r.sharedEventID);
      if (start !== undefined) {
        windows.push([start, minuteOf(r.eventTime)]);
        starts.delete(r.sharedEventID);
      }
    }
  }
  const minutes = [...trace.calls.keys()];
  const last = Math.max(...minutes);
  for (const start of starts.values()) windows.push([start, last + 1]);
  const from = Math.max(
    Math.min(...windows.map((w) => w[0])) - CONTEXT_MINUTES,
    Math.min(...minutes),
  );
  const to = Math.min(Math.max(...windows.map((w) => w[1])) + CONTEXT_MINUTES, last + 1);

  // Replay the counts through the baseline to get the expected rate of every shown minute.
  const slots = emptySlots();
  const sinceHour = Math.floor(sinceMinute / MINUTES_PER_HOUR);
  const ordered = minutes.filter((m) => m < to).sort((a, b) => a - b);
  const expected: number[] = [];
  const calls: number[] = [];
  let next = 0;
  for (let m = from; m < to; m += 1) {
    while (next < ordered.length && ordered[next]! < m) {
      const earlier = ordered[next]!;
      addCalls(slots, earlier, trace.calls.get(earlier)!, 0);
      next += 1;
    }
    expected.push(baselineFor(slots, Math.floor(m / MINUTES_PER_HOUR), sinceHour).rate);
    calls.push(trace.calls.get(m) ?? 0);
  }
  const top = Math.max(1, ...calls, ...expected.map((e) => e * MARGIN));
  const x = (i: number): number => PAD + (i / Math.max(1, to - from - 1)) * (WIDTH - 2 * PAD);
  const y = (v: number): number => HEIGHT - PAD - (v / top) * (HEIGHT - 2 * PAD);
  const line = (values: readonly number[]): string =>
    values.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('');
  const band =
    expected
      .map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(v * MARGIN).toFixed(1)}`)
      .join('') +
    expected
      .map((v, i) => [i, v] as const)
      .reverse()
      .map(([i, v]) => `L${x(i).toFixed(1)},${y(v).toFixed(1)}`)
      .join('') +
    'Z';
  const shaded = windows
    .map(([a, b]) => {
      const x0 = x(Math.max(0, a - from));
      const x1 = x(Math.min(to - from - 1, b - from));
      return `<rect class="insight" x="${x0.toFixed(1)}" y="${PAD}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${HEIGHT - 2 * PAD}"/>`;
    })
    .join('');
  const time = (m: number): string =>
    new Date(m * MINUTE_MS).toISOString().slice(0, 16).replace('T', ' ');
  const k = trace.key;
  const title = `${k.eventSource} ${k.eventName} — ${k.insightType}${k.errorCode ? ` ${k.errorCode}` : ''} (${k.account}, ${k.region})`;
  return `<section>
<h2>${escapeHtml(title)}</h2>
<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(title)}">
${shaded}
<path class="band" d="${band}"/>
<path class="expected" d="${line(expected)}"/>
<path class="calls" d="${line(calls)}"/>
<line class="axis" x1="${PAD}" y1="${HEIGHT - PAD}" x2="${WIDTH - PAD}" y2="${HEIGHT - PAD}"/>
<text x="${PAD}" y="${HEIGHT - 8}">${time(from)} UTC</text>
<text x="${WIDTH - PAD}" y="${HEIGHT - 8}" text-anchor="end">${time(to)} UTC</text>
<text x="4" y="${PAD - 8}">${top.toFixed(top < 10 ? 2 : 0)} calls/min</text>
</svg>
<p>${windows.length} Insight window(s): ${windows.map(([a, b]) => `${time(a)} – ${time(b)}`).join('; ')}</p>
</section>`;
}

/** The report page. `sinceMinute` is when the backtest's counting began. */
export function renderReport(
  traces: readonly SeriesTrace[],
  records: readonly InsightRecord[],
  sinceMinute: number,
): string {
  const byKey = new Map<string, InsightRecord[]>();
  for (const r of records) byKey.set(keyOf(r), [...(byKey.get(keyOf(r)) ?? []), r]);
  const sections = traces
    .map((trace) => chart(trace, byKey.get(seriesId(trace.key)) ?? [], sinceMinute))
    .join('\n');
  const starts = records.filter((r) => r.insightDetails.state === 'Start').length;
  // Inline SVG in HTML needs no xmlns, so the page holds no http(s) string at all.
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>opentrail insights backtest</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
svg { width: 100%; max-width: ${WIDTH}px; background: #fafafa; }
.calls { fill: none; stroke: #1f5fbf; stroke-width: 1; }
.expected { fill: none; stroke: #555; stroke-dasharray: 4 3; }
.band { fill: #999; fill-opacity: 0.2; stroke: none; }
.insight { fill: #e8590c; fill-opacity: 0.25; }
.axis { stroke: #888; }
text { font-size: 11px; fill: #444; }
</style>
</head>
<body>
<h1>Insights backtest</h1>
<p>${starts} Insight(s) on ${traces.length} series. Blue: calls per minute; dashed: the baseline's
expected rate; grey band: from the expected rate to the ${MARGIN}× start margin; orange: Insight windows.</p>
${sections}
</body>
</html>
`;
}
