/**
 * Insights benchmark (issue 12). Reports, never judges:
 *
 * 1. Detection on labelled scenarios (test/fixtures/insights-scenarios.ts: 100 keys, 4
 *    simulated weeks) on seeds never used for tuning (tuning used 1, 2 and 11): Start delay
 *    after onset and End delay after end (minutes of data; delivery adds the fixed 5-minute
 *    judging delay), the share of labelled anomalies detected, per kind, and false Insights
 *    per simulated week per 100 keys.
 * 2. Backtest throughput: CloudTrail records as `{"Records":[...]}` texts of 1,000 records
 *    through JSON.parse + counting + detector (InsightsBacktest), beside a JSON.parse-only
 *    pass over the same texts. The texts are generated on the fly (generation is not timed),
 *    so memory stays flat.
 */
import { performance } from 'node:perf_hooks';
import { InsightsBacktest } from '../lambda/core/insights-backtest';
import type { CountableRecord } from '../lambda/core/insights-counts';
import { evaluate, type Detection } from '../test/fixtures/insights-evaluate';
import { generateScenario, recordsOf } from '../test/fixtures/insights-scenarios';
import type { BenchFigure } from './lib';

const EVALUATION_SEEDS = [101, 202, 303];
const RECORDS_PER_TEXT = 1_000;

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function describe(label: string, detections: readonly Detection[]): string {
  const hit = detections.filter((d) => d.insight);
  const starts = hit.map((d) => d.startDelay!);
  const ends = hit.flatMap((d) => (d.endDelay === undefined ? [] : [d.endDelay]));
  return (
    `${label}: ${hit.length}/${detections.length} detected, Start delay p50 ${percentile(starts, 50)} ` +
    `max ${starts.length ? Math.max(...starts) : NaN}, End delay p50 ${percentile(ends, 50)} max ${ends.length ? Math.max(...ends) : NaN} min`
  );
}

/** Texts of `{"Records":[...]}` from a scenario's traffic, `total` records in all. */
function* recordTexts(total: number): Generator<string> {
  // These keys make about 2.3 million records a week.
  const scenario = generateScenario(404, {
    weeks: Math.max(2, Math.ceil(total / 2_000_000) + 1),
    only: (k) => /^(poisson-10-|poisson-1-|diurnal-2-|periodic-|sparse-)/.test(k.name),
  });
  let serial = 0;
  let batch: object[] = [];
  let produced = 0;
  for (const { counts } of scenario.minutes()) {
    for (const count of counts) {
      if (count.key.insightType !== 'ApiCallRateInsight') continue;
      for (const record of recordsOf(count, () => (serial += 1))) {
        batch.push(record);
        produced += 1;
        if (batch.length === RECORDS_PER_TEXT) {
          yield JSON.stringify({ Records: batch });
          batch = [];
        }
        if (produced >= total) {
          if (batch.length > 0) yield JSON.stringify({ Records: batch });
          return;
        }
      }
    }
  }
  if (batch.length > 0) yield JSON.stringify({ Records: batch });
}

export function backtestThroughput(total: number): {
  backtest: number;
  parse: number;
  insights: number;
  /** Wall time of the backtest pass, generation of its input included. */
  wallSeconds: number;
  /** Peak resident set size over both passes (sampled after every text). */
  peakRssMb: number;
} {
  let peakRss = process.memoryUsage().rss;
  const sample = (): void => {
    const rss = process.memoryUsage().rss;
    if (rss > peakRss) peakRss = rss;
  };
  let sink = 0;
  let parseMs = 0;
  for (const text of recordTexts(total)) {
    const t0 = performance.now();
    const parsed = JSON.parse(text) as { Records: unknown[] };
    sink += parsed.Records.length;
    parseMs += performance.now() - t0;
    sample();
  }
  const backtest = new InsightsBacktest();
  let backtestMs = 0;
  const wall0 = performance.now();
  for (const text of recordTexts(total)) {
    const t0 = performance.now();
    const parsed = JSON.parse(text) as { Records: CountableRecord[] };
    backtest.addBatch(parsed.Records);
    backtestMs += performance.now() - t0;
    sample();
  }
  const t0 = performance.now();
  backtest.finish();
  backtestMs += performance.now() - t0;
  if (sink !== total || backtest.events !== total)
    throw new Error(`read ${sink} and ${backtest.events} records of ${total}`);
  return {
    backtest: total / (backtestMs / 1000),
    parse: total / (parseMs / 1000),
    insights: backtest.records.length,
    wallSeconds: (performance.now() - wall0) / 1000,
    peakRssMb: peakRss / 2 ** 20,
  };
}

export function runInsightsBench(options: {
  quick: boolean;
  log: (line: string) => void;
  /** Records through the backtest. @default 300,000 quick, else 2,000,000 */
  events?: number;
}): Promise<BenchFigure[]> {
  const seeds = options.quick ? EVALUATION_SEEDS.slice(0, 1) : EVALUATION_SEEDS;
  const all: Detection[] = [];
  let falseInsights = 0;
  let weeks = 0;
  let keys = 0;
  for (const seed of seeds) {
    const scenario = generateScenario(seed, { weeks: 4 });
    const result = evaluate(scenario);
    all.push(...result.detections);
    falseInsights += result.falseInsights.length;
    weeks += scenario.weeks;
    keys = scenario.keys.length;
    options.log(
      `seed ${seed}: ${result.insights.length} Insights, ${result.falseInsights.length} false, ` +
        `${result.detections.filter((d) => d.insight).length}/${result.detections.length} anomalies detected`,
    );
  }
  const kinds = new Map<string, Detection[]>();
  for (const d of all) {
    const a = d.anomaly;
    const label =
      a.kind === 'spike' ? `spike x${a.factor} ${a.minutes} min at ${a.rate}/min` : a.kind;
    kinds.set(label, [...(kinds.get(label) ?? []), d]);
  }
  for (const [label, detections] of [...kinds].sort()) options.log(describe(label, detections));

  const hit = all.filter((d) => d.insight);
  const startDelays = hit.map((d) => d.startDelay!);
  const endDelays = hit.flatMap((d) => (d.endDelay === undefined ? [] : [d.endDelay]));
  const perWeekPer100 = (falseInsights / weeks) * (100 / keys);
  const total = options.events ?? (options.quick ? 300_000 : 2_000_000);
  const speed = backtestThroughput(total);
  options.log(
    `backtest ${Math.round(speed.backtest)} events/s, JSON.parse only ${Math.round(speed.parse)} events/s, ${speed.insights} Insights; ` +
      `${total.toLocaleString('en-US')} events in ${speed.wallSeconds.toFixed(1)} s wall (generation included), peak RSS ${Math.round(speed.peakRssMb)} MB`,
  );
  const seedNote = `seeds ${seeds.join(', ')} (not used for tuning), ${keys} keys, ${weeks} simulated weeks`;
  return Promise.resolve([
    {
      name: 'insights Start delay after onset (p50 of detected anomalies)',
      value: percentile(startDelays, 50),
      unit: 'min',
      baseline: { name: 'issue target', value: 5 },
      notes: `p90 ${percentile(startDelays, 90)}, max ${Math.max(...startDelays)}; ${hit.length}/${all.length} anomalies detected; ${seedNote}; delivery adds the 5-minute judging delay`,
    },
    {
      name: 'insights End delay after end (p50 of detected anomalies)',
      value: percentile(endDelays, 50),
      unit: 'min',
      baseline: { name: 'issue target', value: 10 },
      notes: `p90 ${percentile(endDelays, 90)}, max ${Math.max(...endDelays)}; ${seedNote}`,
    },
    {
      name: 'insights false Insights per simulated week per 100 keys',
      value: perWeekPer100,
      unit: 'per week per 100 keys',
      baseline: { name: 'issue target', value: 1 },
      notes: `${falseInsights} false Insights; ${seedNote}`,
    },
    {
      name: 'insights backtest throughput (parse + count + detect)',
      value: speed.backtest,
      unit: 'events/s',
      baseline: { name: 'JSON.parse only, same texts', value: speed.parse },
      notes: `${total.toLocaleString('en-US')} records in texts of ${RECORDS_PER_TEXT}; ${speed.wallSeconds.toFixed(1)} s wall with generation; peak RSS ${Math.round(speed.peakRssMb)} MB`,
    },
  ]);
}

/** `tsx bench/insights.ts [--quick] [--events N]`: N records through the backtest (e.g. 10000000). */
if (require.main === module) {
  const at = process.argv.indexOf('--events');
  const events = at >= 0 ? Number(process.argv[at + 1]) : undefined;
  if (events !== undefined && !(Number.isInteger(events) && events > 0)) {
    process.stderr.write(`--events must be a positive integer, got ${process.argv[at + 1]}\n`);
    process.exit(1);
  }
  runInsightsBench({
    quick: process.argv.includes('--quick'),
    ...(events !== undefined ? { events } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  })
    .then((figures) => process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`))
    .catch((error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exitCode = 1;
    });
}
