/**
 * `opentrail insights backtest FILE|DIR…`: the Insights detector
 * (docs/formats.md#how-opentrail-raises-insights) over recorded events, read as put-events
 * reads them (CloudTrail log files, `{"Records":[...]}`, arrays, JSON Lines, gzip or not; a
 * directory walked in path order, one file in memory at a time). Prints the Insights records it
 * would have raised: `--output json` writes exactly `{"Records":[...]}` on stdout, `table` one
 * line per Insight; notes and the progress bar go to stderr. `--report FILE.html` writes a
 * self-contained page.
 */
import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { InsightsBacktest } from '../lambda/core/insights-backtest';
import { MAX_FUTURE_SKEW_MS } from '../lambda/core/records';
import { INSIGHT_TYPES, MINUTE_MS, type InsightType } from '../lambda/core/insights-counts';
import type { InsightRecord } from '../lambda/core/insights-record';
import { renderReport } from './shared/insights-report';
import {
  alignedTable,
  errorMessage,
  formatCounts,
  PROCESS_STREAMS,
  type OutputStreams,
} from './shared/output';
import { createProgress, type Progress } from './shared/progress';
import {
  InputError,
  planInputs,
  readPlannedInputs,
  type InputRecord,
} from './shared/record-reader';

export interface BacktestFlags {
  readonly output: 'json' | 'table';
  readonly report?: string;
  readonly insightType?: readonly InsightType[];
}

function tableLines(records: readonly InsightRecord[]): string[] {
  const starts = records.filter((r) => r.insightDetails.state === 'Start');
  const ends = new Map(
    records
      .filter((r) => r.insightDetails.state === 'End')
      .map((r) => [r.sharedEventID, r] as const),
  );
  const rows = starts.map((start) => {
    const d = start.insightDetails;
    const end = ends.get(start.sharedEventID);
    const stats = (end ?? start).insightDetails.insightContext.statistics;
    const who = d.insightContext.attributions[0]?.insight[0]?.value ?? '';
    return [
      start.eventTime,
      end?.eventTime ?? '(open)',
      d.insightType,
      `${d.eventSource} ${d.eventName}${d.errorCode ? ` ${d.errorCode}` : ''}`,
      String(stats.baseline.average),
      String(stats.insight.average),
      String(stats.insightDuration),
      who,
    ];
  });
  const header = [
    'START',
    'END',
    'TYPE',
    'API',
    'BASELINE/MIN',
    'INSIGHT/MIN',
    'MINUTES',
    'TOP IDENTITY',
  ];
  return alignedTable(header, rows);
}

/** Runs the backtest; resolves with the exit code. */
export async function runBacktest(
  inputs: readonly string[],
  flags: BacktestFlags,
  out: OutputStreams = PROCESS_STREAMS,
  progress: Progress = createProgress(
    'insights backtest {bar} {value}/{total} files | {events} events | {insights} Insights | eta {eta_formatted}',
  ),
  now: () => number = Date.now,
): Promise<number> {
  let plan;
  try {
    plan = await planInputs(inputs);
  } catch (error) {
    if (error instanceof InputError) {
      out.stderr.write(`opentrail insights backtest: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const backtest = new InsightsBacktest({
    keepSeries: flags.report !== undefined,
    notAfterMs: now() + MAX_FUTURE_SKEW_MS,
    ...(flags.insightType ? { insightTypes: flags.insightType } : {}),
  });
  const skipped: Record<string, number> = {};
  let failures = 0;
  let batch: InputRecord['value'][] = [];
  progress.start(plan.files.length, { events: 0, insights: 0 });
  for await (const event of readPlannedInputs(plan)) {
    switch (event.kind) {
      case 'record':
        batch.push(event.record.value);
        break;
      case 'skip':
        skipped[event.reason] = (skipped[event.reason] ?? 0) + event.count;
        break;
      case 'invalid-record':
        failures += 1;
        out.stderr.write(`${event.source} ${event.position}: ${event.errorMessage}\n`);
        break;
      case 'file-error':
        failures += 1;
        out.stderr.write(`${event.errorMessage}\n`);
        break;
      case 'file-done':
        backtest.addBatch(batch);
        batch = [];
        progress.increment(1, { events: backtest.events, insights: backtest.records.length });
        break;
    }
  }
  backtest.finish();
  progress.stop();
  const records = backtest.records;
  if (flags.output === 'json') out.stdout.write(`${JSON.stringify({ Records: records })}\n`);
  else out.stdout.write(`${tableLines(records).join('\n')}\n`);
  const starts = records.filter((r) => r.insightDetails.state === 'Start').length;
  out.stderr.write(
    `read ${backtest.events} records (${backtest.counted} counted, ${backtest.duplicates} duplicate eventIDs` +
      `, ${backtest.future} more than 15 minutes in the future)` +
      ` from ${plan.files.length} files; ${starts} Insights` +
      (Object.keys(skipped).length > 0 ? `; skipped ${formatCounts(skipped)}` : '') +
      '\n',
  );
  if (flags.report !== undefined) {
    const since = Number.isFinite(backtest.firstMs) ? Math.floor(backtest.firstMs / MINUTE_MS) : 0;
    await writeFile(flags.report, renderReport(backtest.tracesWithInsights(), records, since));
    out.stderr.write(`report written to ${flags.report}\n`);
  }
  return failures > 0 ? 1 : 0;
}

export function register(program: Command): void {
  const insights = program
    .command('insights')
    .description('Insights (unusual API call and error rates) over your own events');
  insights
    .command('backtest')
    .description('run the Insights detector over recorded events and print the Insights it raises')
    .argument(
      '<inputs...>',
      'files or directories of CloudTrail records (gzip or not); - for stdin',
    )
    .addOption(
      new Option(
        '--output <format>',
        'json: exactly {"Records":[...]} on stdout; table: one line per Insight',
      )
        .choices(['json', 'table'])
        .default('table'),
    )
    .option(
      '--report <file>',
      'also write a self-contained HTML page charting each series with an Insight',
    )
    .addOption(
      new Option('--insight-type <type...>', 'the insight types to raise (default: both)').choices([
        ...INSIGHT_TYPES,
      ]),
    )
    .addHelpText(
      'after',
      `
Events are judged by eventTime in the order read: minute M is judged once an event of M + 5
minutes or later has been read, and nothing is judged before 24 hours of events. A record whose
eventID was already read (within 2 hours of eventTime) counts once; records more than 15
minutes in the future are skipped, as ingest refuses them. Exit 1 when a file or
record could not be read, 2 when an input does not exist.`,
    )
    .action(async (inputs: string[], flags: BacktestFlags) => {
      try {
        process.exitCode = await runBacktest(inputs, flags);
      } catch (error) {
        process.stderr.write(`opentrail insights backtest: ${errorMessage(error)}\n`);
        process.exitCode = 1;
      }
    });
}
