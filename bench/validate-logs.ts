/**
 * validate-logs throughput: a generated, signed chain of log files (real CloudTrail records
 * with new eventIDs, so sizes and compressibility are real), validated online (against the
 * embedded s3rver) and offline (a local directory), beside a baseline measured in the same run:
 * gunzip + SHA-256 of the same files read from the local directory sequentially, in one
 * process (no digests, no signatures, no concurrency).
 */
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { createClients, destroyClients } from '../lambda/adapters/clients';
import { S3ObjectReader } from '../lambda/adapters/s3-object-reader';
import { fingerprintOfPublicKey } from '../lambda/core/digest-format';
import { validateLogs } from '../lambda/core/digest-validate';
import type { ObjectReader } from '../lambda/core/ports';
import { LocalDirReader } from '../cli/shared/local-dir-reader';
import { ensureBucket, startEmulators } from '../local/emulators';
import { buildChain, CHAIN_KEY, dirSink, s3Sink, writeAll } from '../test/fixtures/validate-chain';
import { alternate, median, realRecords, syntheticRecordTexts } from './lib';
import type { BenchFigure } from './lib';

const BUCKET = 'validate-bench';
const CHAIN_START = Date.UTC(2024, 2, 5, 0, 0, 0);
const LOGS_PER_PERIOD = 10;

export async function runValidateLogsBench(options: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<BenchFigure[]> {
  const files = options.quick ? 1_000 : 3_000;
  const recordsPerFile = options.quick ? 40 : 60;
  const passes = options.quick ? 3 : 5;
  const periods = Math.ceil(files / LOGS_PER_PERIOD);
  const pool = syntheticRecordTexts(realRecords(), 2_000, 'validate-bench');
  const chain = buildChain({
    bucket: BUCKET,
    startMs: CHAIN_START,
    periods,
    logsPerPeriod: LOGS_PER_PERIOD,
    recordTexts: (period, file) => {
      const from = ((period * LOGS_PER_PERIOD + file) * recordsPerFile) % pool.length;
      return Array.from({ length: recordsPerFile }, (_, i) => pool[(from + i) % pool.length]!);
    },
  });
  const logCount = chain.logKeys.length;
  const megabytes = chain.uncompressedBytes / 1e6;
  const compressed = chain.objects
    .filter((o) => chain.logKeys.includes(o.key))
    .reduce((n, o) => n + o.body.length, 0);
  options.log(
    `validate-logs: ${periods} digests, ${logCount} log files, ${megabytes.toFixed(1)} MB uncompressed (${(compressed / 1e6).toFixed(1)} MB gzip)`,
  );

  const work = mkdtempSync(join(tmpdir(), 'opentrail-bench-validate-'));
  const emulators = await startEmulators({ dataDir: join(work, 'emulators') });
  const clients = createClients({
    region: 'us-east-1',
    s3Endpoint: emulators.s3Endpoint,
    credentials: emulators.credentials,
  });
  try {
    const dir = join(work, 'copy');
    await ensureBucket(clients.s3, BUCKET);
    await writeAll(s3Sink(clients.s3, BUCKET), chain.objects);
    await writeAll(dirSink(dir), chain.objects);
    options.log('validate-logs: chain written to the embedded S3 and a local directory');

    const der = createPublicKey(CHAIN_KEY).export({ type: 'pkcs1', format: 'der' });
    const publicKeys = new Map([[fingerprintOfPublicKey(der), der]]);
    const validate = async (reader: ObjectReader): Promise<void> => {
      const summary = await validateLogs({
        reader,
        bucket: BUCKET,
        startMs: CHAIN_START,
        endMs: CHAIN_START + periods * 3_600_000,
        nowMs: Date.now(),
        publicKeys,
        onResult: () => undefined,
      });
      if (summary.logs.valid !== logCount || summary.digests.valid !== periods)
        throw new Error(`validate-logs bench: unexpected summary ${JSON.stringify(summary)}`);
    };
    const baseline = async (): Promise<void> => {
      for (const key of chain.logKeys) {
        const bytes = await readFile(join(dir, ...key.split('/')));
        createHash('sha256').update(gunzipSync(bytes)).digest('hex');
      }
    };

    const figures: BenchFigure[] = [];
    for (const [mode, reader] of [
      ['offline (--local-dir)', new LocalDirReader(dir)],
      ['online (embedded S3)', new S3ObjectReader(clients.s3)],
    ] as const) {
      const samples = await alternate(
        passes,
        () => validate(reader),
        () => baseline(),
      );
      const seconds = median(samples.subject.map((s) => s.seconds));
      const baseSeconds = median(samples.baseline.map((s) => s.seconds));
      options.log(
        `validate-logs ${mode}: ${seconds.toFixed(2)} s vs baseline ${baseSeconds.toFixed(2)} s (median of ${passes})`,
      );
      const notes = `${logCount} log files, ${megabytes.toFixed(1)} MB uncompressed, ${periods} signed digests; concurrency 16; median of ${passes} passes alternated with the baseline; baseline reads the local copy`;
      figures.push(
        {
          name: `validate-logs ${mode}: uncompressed log data`,
          value: megabytes / seconds,
          unit: 'MB/s',
          baseline: {
            name: 'gunzip + SHA-256, sequential, one process',
            value: megabytes / baseSeconds,
          },
          notes,
        },
        {
          name: `validate-logs ${mode}: log files`,
          value: logCount / seconds,
          unit: 'files/s',
          baseline: {
            name: 'gunzip + SHA-256, sequential, one process',
            value: logCount / baseSeconds,
          },
          notes,
        },
      );
    }
    return figures;
  } finally {
    destroyClients(clients);
    await emulators.close();
    rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  void runValidateLogsBench({
    quick: process.argv.includes('--quick'),
    log: (line) => process.stderr.write(`${line}\n`),
  }).then((figures) => {
    for (const f of figures)
      process.stdout.write(
        `${f.name}: ${f.value.toFixed(1)} ${f.unit} (baseline ${f.baseline?.value.toFixed(1)} ${f.unit})\n`,
      );
  });
}
