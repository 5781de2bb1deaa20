/**
 * validate-logs throughput and memory: a generated, signed chain of log files (real CloudTrail
 * records with new eventIDs, so sizes and compressibility are real), each figure beside a
 * baseline measured in the same run.
 *
 * - Online: validateLogs with its worker pool (as the CLI runs it) against the embedded S3 behind
 *   a proxy that adds 20 ms to every request (a region away, as S3 is from a laptop; both run
 *   in a child process, so they take no CPU from the process measured), beside a
 *   one-request-at-a-time reader through the same proxy: each digest, then each of its log files,
 *   fetched, gunzipped and hashed in turn (how the AWS CLI walks a chain).
 * - Offline (--local-dir): beside a two-process gunzip + SHA-256 of the same files (each process
 *   reads, gunzips and hashes half of them in turn; the machine's two cores).
 * - Peak RSS of `opentrail validate-logs --local-dir` in its own process, for chains of 1,000 and
 *   10,000 small log files: memory must not grow with the chain.
 */
import { spawn } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createClients, destroyClients } from '../lambda/adapters/clients';
import { S3ObjectReader } from '../lambda/adapters/s3-object-reader';
import { fingerprintOfPublicKey } from '../lambda/core/digest-format';
import { DEFAULT_VALIDATE_CONCURRENCY, validateLogs } from '../lambda/core/digest-validate';
import type { ObjectReader } from '../lambda/core/ports';
import { LocalDirReader } from '../cli/shared/local-dir-reader';
import { defaultWorkers, LogFileWorkerPool } from '../cli/shared/validate-workers';
import { ensureBucket, startEmulators, type EmulatorCredentials } from '../local/emulators';
import {
  buildChain,
  CHAIN_KEY,
  CHAIN_PUBLIC_PEM,
  dirSink,
  s3Sink,
  writeAll,
  type BuiltChain,
} from '../test/fixtures/validate-chain';
import { startTcpDelayProxy } from '../test/support/tcp-delay-proxy';
import { alternate, median, realRecords, syntheticRecordTexts } from './lib';
import type { BenchFigure } from './lib';

const BUCKET = 'validate-bench';
const CHAIN_START = Date.UTC(2024, 2, 5, 0, 0, 0);
const HOUR_MS = 3_600_000;
const LOGS_PER_PERIOD = 10;
/** Added to every request by the proxy in front of the embedded S3. */
const PROXY_DELAY_MS = 20;
/** Processes of the offline baseline. */
const BASELINE_PROCESSES = 2;
/** Chain lengths whose peak RSS is measured. */
const RSS_CHAIN_FILES = [1_000, 10_000] as const;

/**
 * In a child process (so the S3 emulator and the proxy do not share the measured process's
 * thread, as real S3 would not): the embedded S3 and a TCP proxy in front of it that delays
 * each request (test/support/tcp-delay-proxy.ts); prints `{"s3","proxyPort","credentials"}` as
 * one JSON line and stops when its stdin ends.
 */
export async function serveS3BehindProxy(dataDir: string, delayMs: number): Promise<void> {
  const emulators = await startEmulators({ dataDir });
  const proxy = await startTcpDelayProxy(
    { host: '127.0.0.1', port: Number(new URL(emulators.s3Endpoint).port) },
    delayMs,
  );
  process.stdout.write(
    `${JSON.stringify({ s3: emulators.s3Endpoint, proxyPort: proxy.port, credentials: emulators.credentials })}\n`,
  );
  process.stdin.resume();
  process.stdin.on('end', () => {
    void proxy
      .close()
      .then(() => emulators.close())
      .then(() => process.exit(0));
  });
}

/** Starts {@link serveS3BehindProxy} in a child process; `stop` ends it. */
async function s3BehindProxyProcess(
  dataDir: string,
  delayMs: number,
): Promise<{
  s3: string;
  proxyPort: number;
  credentials: EmulatorCredentials;
  stop: () => Promise<void>;
}> {
  const child = spawn(
    process.execPath,
    [
      '--require',
      require.resolve('tsx/cjs'),
      '-e',
      `require(${JSON.stringify(__filename)}).serveS3BehindProxy(${JSON.stringify(dataDir)}, ${delayMs})`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  type Served = { s3: string; proxyPort: number; credentials: EmulatorCredentials };
  const endpoints = await new Promise<Served>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.indexOf('\n');
      if (line >= 0) resolve(JSON.parse(out.slice(0, line)) as Served);
    });
    child.on('exit', (code) => reject(new Error(`the S3 child process exited (${code})`)));
  });
  return {
    ...endpoints,
    stop: async () => {
      child.stdin.end();
      await exited;
    },
  };
}

async function getObject(s3: S3Client, key: string): Promise<Buffer> {
  const response = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

/** The offline baseline: `processes` Node processes, each gunzipping and hashing its share. */
async function gunzipHashProcesses(files: readonly string[], processes: number): Promise<void> {
  const script =
    "const{readFileSync}=require('node:fs');const{gunzipSync}=require('node:zlib');" +
    "const{createHash}=require('node:crypto');let n=0;" +
    "for(const f of JSON.parse(readFileSync(0,'utf8'))){" +
    "createHash('sha256').update(gunzipSync(readFileSync(f))).digest('hex');n++}" +
    'process.stdout.write(String(n))';
  const shares = Array.from({ length: processes }, (_, i) =>
    files.filter((_, j) => j % processes === i),
  );
  const counts = await Promise.all(
    shares.map(
      (share) =>
        new Promise<number>((resolve, reject) => {
          const child = spawn(process.execPath, ['-e', script], {
            stdio: ['pipe', 'pipe', 'inherit'],
          });
          let out = '';
          child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
          child.on('error', reject);
          child.on('exit', (code) =>
            code === 0 ? resolve(Number(out)) : reject(new Error(`baseline exited ${code}`)),
          );
          child.stdin.end(JSON.stringify(share));
        }),
    ),
  );
  if (counts.reduce((a, b) => a + b, 0) !== files.length)
    throw new Error(`validate-logs bench: the baseline hashed ${counts.join('+')} files`);
}

/**
 * Peak RSS (MiB) of `opentrail validate-logs --local-dir` in its own process over a chain of
 * `files` small log files (10 per hourly digest).
 */
async function validateLogsPeakRss(work: string, files: number): Promise<number> {
  const periods = files / LOGS_PER_PERIOD;
  const chain = buildChain({
    bucket: BUCKET,
    startMs: CHAIN_START,
    periods,
    logsPerPeriod: LOGS_PER_PERIOD,
  });
  const dir = join(work, `rss-${files}`);
  await writeAll(dirSink(dir), chain.objects);
  const keyFile = join(work, 'key.pem');
  writeFileSync(keyFile, CHAIN_PUBLIC_PEM);
  const bin = join(__dirname, '..', 'bin', 'opentrail.js');
  // The CLI as a user runs it; at exit the process prints its own peak RSS (threads included):
  // VmHWM, the peak of its own address space. getrusage's maxRSS (the fallback off Linux) also
  // counts the forked copy of this process from before exec, whose RSS grows with the chain.
  const script =
    "process.on('exit',()=>{let k=process.resourceUsage().maxRSS;try{k=+/VmHWM:\\s*(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status','utf8'))[1]}catch{}" +
    "process.stderr.write('\\nMAXRSS '+k+'\\n')});" +
    `process.argv.splice(1,0,'opentrail');require(${JSON.stringify(bin)})`;
  const args = [
    'validate-logs',
    '--local-dir',
    dir,
    '--s3-bucket',
    BUCKET,
    '--public-key',
    keyFile,
    '--start-time',
    new Date(CHAIN_START).toISOString(),
    '--end-time',
    new Date(CHAIN_START + periods * HOUR_MS).toISOString(),
  ];
  const { code, stdout, stderr } = await new Promise<{
    code: number | null;
    stdout: string;
    stderr: string;
  }>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, '--', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (exit) => resolve({ code: exit, stdout: out, stderr: err }));
  });
  rmSync(dir, { recursive: true, force: true });
  const rss = /MAXRSS (\d+)/.exec(stderr);
  if (code !== 0 || !rss || !stdout.includes(`${files}/${files} log files valid`))
    throw new Error(
      `validate-logs bench: the ${files}-file run failed (exit ${code})\n${stdout}${stderr}`,
    );
  return Number(rss[1]) / 1024;
}

export async function runValidateLogsBench(options: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<BenchFigure[]> {
  const files = options.quick ? 1_000 : 3_000;
  const recordsPerFile = options.quick ? 40 : 60;
  const passes = options.quick ? 3 : 5;
  const periods = Math.ceil(files / LOGS_PER_PERIOD);
  const pool = syntheticRecordTexts(realRecords(), 2_000, 'validate-bench');
  const chain: BuiltChain = buildChain({
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
  const logKeys = new Set(chain.logKeys);
  const compressed = chain.objects
    .filter((o) => logKeys.has(o.key))
    .reduce((n, o) => n + o.body.length, 0);
  const workers = defaultWorkers();
  options.log(
    `${periods} digests, ${logCount} log files, ${megabytes.toFixed(1)} MB uncompressed (${(compressed / 1e6).toFixed(1)} MB gzip); ${workers} workers`,
  );

  const work = mkdtempSync(join(tmpdir(), 'opentrail-bench-validate-'));
  const s3 = await s3BehindProxyProcess(join(work, 'emulators'), PROXY_DELAY_MS);
  const direct = createClients({
    region: 'us-east-1',
    s3Endpoint: s3.s3,
    credentials: s3.credentials,
    s3MaxSockets: DEFAULT_VALIDATE_CONCURRENCY,
  });
  // The same endpoint (Host and signature unchanged), every connection through the proxy.
  const slow = createClients({
    region: 'us-east-1',
    s3Endpoint: s3.s3,
    credentials: s3.credentials,
    connectViaPort: s3.proxyPort,
    s3MaxSockets: DEFAULT_VALIDATE_CONCURRENCY,
  });
  const workerPool = new LogFileWorkerPool(workers);
  try {
    const dir = join(work, 'copy');
    await ensureBucket(direct.s3, BUCKET);
    await writeAll(s3Sink(direct.s3, BUCKET), chain.objects);
    await writeAll(dirSink(dir), chain.objects);
    options.log('chain written to the embedded S3 and a local directory');

    const der = createPublicKey(CHAIN_KEY).export({ type: 'pkcs1', format: 'der' });
    const publicKeys = new Map([[fingerprintOfPublicKey(der), der]]);
    const validate = async (reader: ObjectReader): Promise<void> => {
      const summary = await validateLogs({
        reader,
        bucket: BUCKET,
        startMs: CHAIN_START,
        endMs: CHAIN_START + periods * HOUR_MS,
        nowMs: Date.now(),
        publicKeys,
        checkLogBytes: workerPool.check,
        onResult: () => undefined,
      });
      if (summary.logs.valid !== logCount || summary.digests.valid !== periods)
        throw new Error(`validate-logs bench: unexpected summary ${JSON.stringify(summary)}`);
    };
    const oneAtATime = async (): Promise<void> => {
      for (const digest of [...chain.digests].reverse()) {
        JSON.parse(gunzipSync(await getObject(slow.s3, digest.key)).toString('utf8'));
        for (const key of digest.logKeys)
          createHash('sha256')
            .update(gunzipSync(await getObject(slow.s3, key)))
            .digest('hex');
      }
    };
    const paths = chain.logKeys.map((key) => join(dir, ...key.split('/')));
    // Reads the files once, so both sides start from a warm page cache.
    await Promise.all(paths.map((path) => readFile(path)));

    const figures: BenchFigure[] = [];
    const notes = `${logCount} log files, ${megabytes.toFixed(1)} MB uncompressed, ${periods} signed digests; concurrency ${DEFAULT_VALIDATE_CONCURRENCY} (the CLI's default), ${workers} worker threads; median of ${passes} passes alternated with the baseline`;
    const rate = async (
      mode: string,
      baselineName: string,
      subject: () => Promise<void>,
      baseline: () => Promise<void>,
    ): Promise<number> => {
      const samples = await alternate(passes, subject, baseline);
      const seconds = median(samples.subject.map((s) => s.seconds));
      const baseSeconds = median(samples.baseline.map((s) => s.seconds));
      options.log(
        `${mode}: ${(logCount / seconds).toFixed(0)} files/s vs ${(logCount / baseSeconds).toFixed(0)} files/s (${baselineName}), ratio ${(baseSeconds / seconds).toFixed(2)}`,
      );
      figures.push({
        name: `validate-logs ${mode}: log files`,
        value: logCount / seconds,
        unit: 'files/s',
        baseline: { name: baselineName, value: logCount / baseSeconds },
        notes,
      });
      return logCount / baseSeconds;
    };
    const oneAtATimeRate = await rate(
      `online, ${PROXY_DELAY_MS} ms per request`,
      'one request at a time (how the AWS CLI walks), same proxy',
      () => validate(new S3ObjectReader(slow.s3)),
      oneAtATime,
    );
    // The same run straight against the embedded S3 (no proxy): the emulator's own ceiling,
    // which caps the online figure above when the machine is short of CPU.
    const directSeconds: number[] = [];
    for (let pass = 0; pass < passes; pass++) {
      const started = performance.now();
      await validate(new S3ObjectReader(direct.s3));
      directSeconds.push((performance.now() - started) / 1000);
    }
    const directRate = logCount / median(directSeconds);
    // Ten times the one-at-a-time reader is the goal; above this ceiling it cannot be met here.
    options.log(
      `online, no added latency (the embedded S3's ceiling): ${directRate.toFixed(0)} files/s; 10x the one-at-a-time reader: ${(10 * oneAtATimeRate).toFixed(0)} files/s`,
    );
    figures.push({
      name: 'validate-logs online, embedded S3 without the proxy: log files',
      value: directRate,
      unit: 'files/s',
      notes: `the ceiling the emulator (one process, one thread) puts on the online figure; ${notes}`,
    });
    await rate(
      'offline (--local-dir)',
      `gunzip + SHA-256 of the same files, ${BASELINE_PROCESSES} processes`,
      () => validate(new LocalDirReader(dir)),
      () => gunzipHashProcesses(paths, BASELINE_PROCESSES),
    );

    for (const count of RSS_CHAIN_FILES) {
      const rss = await validateLogsPeakRss(work, count);
      options.log(`peak RSS, ${count} log files: ${rss.toFixed(0)} MiB`);
      figures.push({
        name: `validate-logs --local-dir peak RSS, ${count.toLocaleString('en-US')} log files`,
        value: rss,
        unit: 'MiB',
        notes: `opentrail validate-logs in its own process (worker threads included), ${LOGS_PER_PERIOD} small log files per hourly digest, default --workers and --concurrency`,
      });
    }
    return figures;
  } finally {
    await workerPool.close();
    destroyClients(slow);
    destroyClients(direct);
    await s3.stop();
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
        `${f.name}: ${f.value.toFixed(1)} ${f.unit}${f.baseline ? ` (baseline ${f.baseline.value.toFixed(1)} ${f.unit})` : ''}\n`,
      );
  });
}
