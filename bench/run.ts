/**
 * `npm run bench [-- --quick] [--area NAME]...`: throughput and latency of the write path, each figure printed
 * beside a baseline measured in the same run (so the ratio means something on any machine),
 * and written to bench/results.json with the machine's facts. It reports; it never fails on
 * speed (only on wrong results: lost or refused records).
 *
 * 1. Packager: packageBatch on batches of 1,000 stream records, stamped as ingest stores them,
 *    (a) with in-memory ports (the packager's own CPU cost; wall and CPU, and the compressed
 *    bytes per record, so a cheaper gzip level shows as S3 bytes), (b) with the real adapters
 *    against the embedded emulators. Baseline: JSON.stringify + gzipSync at the packager's
 *    level of the same records, batch by batch.
 * 2. Ingest: putAuditEvents on 100-entry request bodies, (a) into an in-memory stream,
 *    (b) over HTTP into the embedded runtime (ingest component only) and kinesalite.
 *    Baseline: JSON.parse of the bodies and of every eventData.
 * 3. Replay latency: the 310 real records through a fresh embedded runtime (all default
 *    components, as `npm start`), from the last accepted request until every record is in a
 *    delivered log file. Baseline: flush-seconds.
 *
 * Areas 1-3 live in bench/packager.ts, ingest.ts and replay.ts; the others in their own modules.
 * `--area NAME` (repeatable) runs only those areas, e.g. `--area fanout`.
 *
 * The code under test runs in this process; the emulators run in child processes of their
 * own, as `npm start` runs them (local/emulator-process.ts). The throughput area runs
 * `opentrail local` itself in a child process (bench/throughput.ts).
 */
import './quiet'; // before anything that loads a Lambda handler module
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runCostBench } from './cost';
import { loadPrices } from './cost-prices';
import { runDigestSignerBench } from './digest-signer';
import { runFanoutBench } from './fanout';
import { runHistoryBench } from './history';
import { runInsightsBench } from './insights';
import { ingestFigures } from './ingest';
import {
  figure,
  machineFacts,
  peakRssMiB,
  progress,
  realRecords,
  syntheticRecordTexts,
  table,
  type BenchFigure,
  type Figure,
} from './lib';
import { packagerFigures } from './packager';
import { replayFigure } from './replay';
import {
  FULL,
  HTTP_CONCURRENCY,
  QUICK,
  REPLAY_FLUSH_SECONDS,
  REQUEST_ENTRIES,
  SHARDS,
  sink,
  STREAM_BATCH,
} from './settings';
import { runScaleBench } from './scale';
import { runThroughputBench } from './throughput';
import { runValidateLogsBench } from './validate-logs';

const WRITE_PATH_AREAS = ['packager', 'ingest', 'replay'] as const;
const OTHER_AREAS = [
  'validate-logs',
  'digest-signer',
  'history',
  'fanout',
  'insights',
  'cost',
  'scale',
  'throughput',
] as const;
const AREAS: readonly string[] = [...WRITE_PATH_AREAS, ...OTHER_AREAS];
const USAGE = `usage: npm run bench [-- --quick] [--prices FILE] [--area <${AREAS.join('|')}>]...`;

/**
 * `--quick`, any `--area NAME` (repeatable; none: every area) and `--prices FILE` (the cost
 * area's price table; default bench/prices/us-east-1.json).
 */
function parseArgs(args: readonly string[]): {
  quick: boolean;
  areas: Set<string>;
  prices?: string;
} {
  const areas = new Set<string>();
  let quick = false;
  let prices: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(
        `${USAGE}\n  --quick         fewer records and passes\n` +
          `  --area NAME     run only this area (repeatable)\n` +
          `  --prices FILE   price table of the cost area (default bench/prices/us-east-1.json)\n`,
      );
      process.exit(0);
    }
    if (arg === '--quick') quick = true;
    else if (arg === '--area') {
      const area = args[++i];
      if (area === undefined || !AREAS.includes(area))
        throw new Error(
          `--area must be one of ${AREAS.join(', ')}; got ${area ?? 'nothing'}\n${USAGE}`,
        );
      areas.add(area);
    } else if (arg === '--prices') {
      prices = args[++i];
      if (prices === undefined || prices.startsWith('--'))
        throw new Error(
          `--prices needs a file, e.g. --prices bench/prices/us-east-1.json\n${USAGE}`,
        );
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  return {
    quick,
    areas: areas.size > 0 ? areas : new Set(AREAS),
    ...(prices === undefined ? {} : { prices }),
  };
}

async function main(): Promise<void> {
  const parsed = parseArgs(process.argv.slice(2));
  // A wrong price table fails now, not after the areas before the cost area have run.
  if (parsed.prices !== undefined) loadPrices(parsed.prices);
  const settings = parsed.quick ? QUICK : FULL;
  const runs = (area: string): boolean => parsed.areas.has(area);
  const began = performance.now();
  const rssAtStart = process.memoryUsage().rss / 2 ** 20;
  const machine = machineFacts();
  progress(
    `${settings.mode} run on ${String(machine.cpuModel)} x${String(machine.cores)}, node ${process.version}`,
  );

  const real = realRecords();
  const texts = syntheticRecordTexts(real, settings.records, 'bench');
  progress(`generated ${texts.length} distinct records from ${real.length} real ones`);

  const figures: Figure[] = [
    ...(runs('packager') ? await packagerFigures(settings, texts) : []),
    ...(runs('ingest') ? await ingestFigures(settings, texts) : []),
    ...(runs('replay') ? [await replayFigure(settings, real.length)] : []),
  ];
  // The other areas' benches: validate-logs (issue 3), event history (issue 4), fan-out (5),
  // digest signing at 1,000 and 50,000 log files per period (issue 9), Insights (12), cost
  // per million events and the hottest partition keys at 10,000 events/s (14), and a replay's
  // events/s through the embedded runtime beside its emulators' caps (14, bench/throughput.ts).
  const quick = settings.mode === 'quick';
  const areaFigures: BenchFigure[] = [];
  for (const [area, run] of [
    ['validate-logs', runValidateLogsBench],
    ['digest-signer', runDigestSignerBench],
    ['history', runHistoryBench],
    ['fanout', runFanoutBench],
    ['insights', runInsightsBench],
    ['cost', runCostBench],
    ['scale', runScaleBench],
    ['throughput', runThroughputBench],
  ] as const) {
    if (!runs(area)) continue;
    progress(`${area} bench`);
    areaFigures.push(
      ...(await run({
        quick,
        log: (line) => progress(`${area}: ${line}`),
        ...(parsed.prices === undefined ? {} : { pricesPath: parsed.prices }),
      })),
    );
  }
  for (const f of areaFigures.filter((f) => f.baseline)) {
    figures.push(
      figure({
        id: f.name.toLowerCase().replace(/[^a-z0-9]+/g, '-'),
        title: f.name,
        unit: f.unit,
        value: f.value,
        baseline: { what: f.baseline!.name, value: f.baseline!.value },
        detail: f.notes ? { notes: f.notes } : {},
      }),
    );
  }
  const others = areaFigures.filter((f) => !f.baseline);
  const peak = peakRssMiB();
  const seconds = (performance.now() - began) / 1000;

  const out = process.stdout;
  out.write(
    `opentrail bench (${settings.mode}): node ${process.version}, ${String(machine.cpuModel)}, ${String(machine.cores)} cores\n\n`,
  );
  out.write(`${table(figures)}\n\n`);
  for (const f of others) {
    out.write(
      `${f.name}: ${f.value.toLocaleString('en-US', { maximumFractionDigits: 2 })} ${f.unit}${f.notes ? ` (${f.notes})` : ''}\n`,
    );
  }
  if (others.length > 0) out.write('\n');
  out.write(
    `peak RSS of the bench process: ${peak.toFixed(0)} MiB (${rssAtStart.toFixed(0)} MiB at start); ` +
      `replay acceptance bound: flush-seconds + 10 = ${REPLAY_FLUSH_SECONDS + 10} s; run took ${seconds.toFixed(0)} s\n`,
  );

  const results = {
    generatedAt: new Date().toISOString(),
    mode: settings.mode,
    machine,
    settings: {
      ...settings,
      streamBatch: STREAM_BATCH,
      shards: SHARDS,
      requestEntries: REQUEST_ENTRIES,
      httpConcurrency: HTTP_CONCURRENCY,
      replayFlushSeconds: REPLAY_FLUSH_SECONDS,
    },
    figures,
    otherFigures: others,
    peakRss: { value: peak, unit: 'MiB', atStart: rssAtStart },
    durationSeconds: seconds,
    note: 'ratio = value / baseline; baselines are measured in the same run, nothing is a threshold',
  };
  const path = join(__dirname, 'results.json');
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
  progress(`wrote ${path} (baseline checksum ${sink.value})`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
