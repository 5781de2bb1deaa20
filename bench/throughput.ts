/**
 * Bench area `throughput` (issue 14): how fast a replay goes through the embedded runtime, end
 * to end, read against what its emulators can do.
 *
 * 1. Replay: `opentrail local` in a child process (as `npm start`, with --flush-seconds 2),
 *    PRODUCERS concurrent producers send N real-size records (100,000; 10,000 with --quick)
 *    through PutAuditEvents in 100-entry requests. The figure is N divided by the seconds from
 *    the first request until every event is in a delivered log file (the manifest) AND indexed
 *    into event history (the indexer's checkpoint has passed the packager's on every shard).
 *    Then, outside the measured span, what is stored is counted: distinct eventIDs in the log
 *    files and in the history table, each of which must be N.
 * 2. Emulator caps, measured in the same run on fresh emulators started as the runtime starts
 *    them (local/emulators.ts), with CAP_CONCURRENCY requests in flight from this process:
 *    dynalite conditional PutItem/s (a dedup claim's shape), dynalite BatchWriteItem items/s
 *    (25 history-sized items a call), kinesalite PutRecords records/s (500 real records a call)
 *    and s3rver PutObject/s (a gzipped 1,000-record log file each).
 *
 * OPENTRAIL_BENCH_CPU_PROF=<dir> runs the runtime under `node --cpu-prof --cpu-prof-dir <dir>`:
 * the profile is written when the runtime stops (SIGTERM) at the end of the replay.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  CreateTableCommand,
  PutItemCommand,
  BatchWriteItemCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createClients, destroyClients, type Clients } from '../lambda/adapters/clients';
import { documentClient } from '../lambda/adapters/dynamodb';
import type { Endpoints } from '../lambda/core/contracts';
import { ensureBucket, startEmulators } from '../local/emulators';
import { clientsFor, getObject, listKeys, manifestRows } from '../test/support/emulator-clients';
import {
  inParallel,
  postAuditEvents,
  progress,
  realRecords,
  requestBodies,
  sleep,
  syntheticRecordTexts,
  type BenchFigure,
} from './lib';
import { DELIVERY_GUARD_MS, REQUEST_ENTRIES } from './settings';

const CLI = join(__dirname, '..', 'bin', 'opentrail.js');
/** Concurrent PutAuditEvents producers. */
const PRODUCERS = 4;
const FLUSH_SECONDS = 2;
/** Requests in flight while a cap is measured. */
const CAP_CONCURRENCY = 16;
const HISTORY_TABLE_NAME = 'opentrail-history';

interface RuntimeChild {
  readonly endpoints: Endpoints;
  readonly dataDir: string;
  /** SIGTERM, then resolves once the process has exited (its profile written). */
  stop(): Promise<void>;
}

async function startRuntimeChild(dataDir: string): Promise<RuntimeChild> {
  const profileDir = process.env.OPENTRAIL_BENCH_CPU_PROF;
  const child = spawn(
    process.execPath,
    [
      ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
      CLI,
      'local',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--flush-seconds',
      String(FLUSH_SECONDS),
      '--status-every',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: process.env },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = performance.now() + 60_000;
  while (!/opentrail listening on /.test(output)) {
    if (child.exitCode !== null || performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`runtime did not start:\n${output}`);
    }
    await sleep(50);
  }
  const endpoints = JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')) as Endpoints;
  return {
    endpoints,
    dataDir,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

type Shards = Record<string, { lastSequenceNumber?: string; inFlight?: unknown }>;

async function checkpoints(dataDir: string, consumer: string): Promise<Shards> {
  try {
    const text = await readFile(join(dataDir, 'checkpoints', `${consumer}.json`), 'utf8');
    return (JSON.parse(text) as { shards: Shards }).shards;
  } catch {
    return {};
  }
}

/** The indexer has caught up with the packager on every shard, and neither has a batch open. */
async function indexerCaughtUp(dataDir: string): Promise<boolean> {
  const packager = await checkpoints(dataDir, 'packager');
  const indexer = await checkpoints(dataDir, 'indexer');
  const shards = Object.keys(packager);
  if (shards.length === 0) return false;
  return shards.every((shard) => {
    const done = packager[shard]!;
    const indexed = indexer[shard];
    if (done.inFlight !== undefined || indexed === undefined || indexed.inFlight !== undefined)
      return false;
    return BigInt(indexed.lastSequenceNumber ?? '0') >= BigInt(done.lastSequenceNumber ?? '0');
  });
}

/** Distinct eventIDs in the delivered log files. */
async function eventIdsInLogFiles(clients: Clients, endpoints: Endpoints): Promise<number> {
  const ids = new Set<string>();
  const keys = (await listKeys(clients, endpoints.bucket)).filter(
    (key) => key.includes('/CloudTrail/') && key.endsWith('.json.gz'),
  );
  await inParallel(keys, 8, async (key) => {
    const file = JSON.parse(
      gunzipSync(await getObject(clients, endpoints.bucket, key)).toString('utf8'),
    ) as { Records: { eventID: string }[] };
    for (const record of file.Records) ids.add(record.eventID);
  });
  return ids.size;
}

/** Distinct eventIDs with a record item (`E#<eventID>`) in the history table. */
async function eventIdsInHistory(clients: Clients): Promise<number> {
  const documents = documentClient(clients.dynamodb);
  const ids = new Set<string>();
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({
        TableName: HISTORY_TABLE_NAME,
        ProjectionExpression: 'pk',
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      const pk = item.pk as string;
      if (pk.startsWith('E#')) ids.add(pk);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return ids.size;
}

async function replay(texts: readonly string[]): Promise<BenchFigure[]> {
  const n = texts.length;
  const bodies = requestBodies(texts, REQUEST_ENTRIES);
  const dataDir = mkdtempSync(join(tmpdir(), 'opentrail-bench-'));
  try {
    const runtime = await startRuntimeChild(dataDir);
    const clients = clientsFor(runtime.endpoints);
    try {
      const url = `${runtime.endpoints.api}/PutAuditEvents`;
      let accepted = 0;
      progress(`throughput: ${n} records in ${bodies.length} requests, ${PRODUCERS} producers`);
      const began = performance.now();
      const sending = inParallel(bodies, PRODUCERS, async (body) => {
        const result = await postAuditEvents(url, body);
        accepted += result.successful.length;
      });
      let sentAt = 0;
      void sending.then(() => (sentAt = performance.now())).catch(() => undefined);
      let deliveredAt = 0;
      let lastReport = began;
      // Not a speed threshold: only a pipeline that stops moving ends the run.
      let progressAt = began;
      let lastDelivered = -1;
      for (;;) {
        if (performance.now() - progressAt > DELIVERY_GUARD_MS)
          throw new Error(
            `throughput: nothing more was delivered for ${DELIVERY_GUARD_MS / 1000} s (${lastDelivered} of ${n})`,
          );
        await Promise.race([sending, sleep(500)]);
        const delivered = (await manifestRows(clients, runtime.endpoints.manifestTable))
          .filter((row) => row.state === 'delivered')
          .reduce((sum, row) => sum + row.recordCount, 0);
        if (delivered !== lastDelivered) {
          lastDelivered = delivered;
          progressAt = performance.now();
        }
        if (delivered >= n && deliveredAt === 0) deliveredAt = performance.now();
        if (deliveredAt > 0 && (await indexerCaughtUp(dataDir))) break;
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          progress(`throughput: ${accepted} accepted, ${delivered} in log files`);
        }
      }
      await sending;
      const doneAt = performance.now();
      const seconds = (doneAt - began) / 1000;
      progress('throughput: counting what is stored');
      const [inLogs, inHistory] = [
        await eventIdsInLogFiles(clients, runtime.endpoints),
        await eventIdsInHistory(clients),
      ];
      if (inLogs !== n || inHistory !== n)
        throw new Error(
          `throughput: ${inLogs} events in log files, ${inHistory} in history, of ${n}`,
        );
      const rate = n / seconds;
      progress(
        `throughput: ${rate.toFixed(0)} events/s end to end (${seconds.toFixed(1)} s); ` +
          `accepted at ${(n / ((sentAt - began) / 1000)).toFixed(0)}/s, ` +
          `in log files after ${((deliveredAt - began) / 1000).toFixed(1)} s`,
      );
      return [
        {
          name: 'throughput: replay into the embedded runtime, until in log files and history',
          value: rate,
          unit: 'events/s',
          notes:
            `${n} events, ${PRODUCERS} producers, --flush-seconds ${FLUSH_SECONDS}; ${seconds.toFixed(1)} s; ` +
            `all accepted after ${((sentAt - began) / 1000).toFixed(1)} s, ` +
            `all in log files after ${((deliveredAt - began) / 1000).toFixed(1)} s; ` +
            `stored: ${inLogs} in log files, ${inHistory} in history`,
        },
      ];
    } finally {
      destroyClients(clients);
      await runtime.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Operations per second of `count` calls of `call`, CAP_CONCURRENCY in flight. */
async function rate(count: number, perCall: number, call: (i: number) => Promise<void>) {
  const calls = Array.from({ length: Math.ceil(count / perCall) }, (_, i) => i);
  const began = performance.now();
  await inParallel(calls, CAP_CONCURRENCY, call);
  return (calls.length * perCall) / ((performance.now() - began) / 1000);
}

async function emulatorCaps(texts: readonly string[], quick: boolean): Promise<BenchFigure[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'opentrail-bench-caps-'));
  const emulators = await startEmulators({ dataDir });
  const clients = createClients({
    region: 'us-east-1',
    s3Endpoint: emulators.s3Endpoint,
    dynamodbEndpoint: emulators.dynamodbEndpoint,
    kinesisEndpoint: emulators.kinesisEndpoint,
    credentials: emulators.credentials,
  });
  const scale = quick ? 1 : 3;
  try {
    for (const name of ['claims', 'history']) {
      await clients.dynamodb.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [
            { AttributeName: 'pk', AttributeType: 'S' },
            { AttributeName: 'sk', AttributeType: 'S' },
          ],
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
        }),
      );
    }
    await clients.kinesis.send(new CreateStreamCommand({ StreamName: 'caps', ShardCount: 2 }));
    await ensureBucket(clients.s3, 'caps');
    await sleep(200);

    progress('throughput: emulator caps');
    // A dedup claim: the eventID, one claim naming record, batch, arrival and object.
    const claim = (i: number) => ({
      pk: { S: `e-${i}` },
      sk: { S: '-' },
      claims: {
        L: [
          {
            S: `0123456789abcdef|opentrail|shardId-000000000000:4965${String(i).padStart(52, '0')}|batch|1733500000000|opentrail-logs/AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/07/123456789012_CloudTrail_us-east-1_20261207T1200Z_abcdef0123456789.json.gz`,
          },
        ],
      },
      ver: { N: '1' },
      x: { N: '1999999999' },
    });
    const conditionalPuts = await rate(2_000 * scale, 1, (i) =>
      clients.dynamodb
        .send(
          new PutItemCommand({
            TableName: 'claims',
            Item: claim(i),
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        )
        .then(() => undefined),
    );
    // A history record item: the record gzipped (as compressRecord stores it), plus keys.
    const compressed = texts.slice(0, 500).map((text) => gzipSync(text));
    const batchItems = await rate(10_000 * scale, 25, (call) =>
      clients.dynamodb
        .send(
          new BatchWriteItemCommand({
            RequestItems: {
              history: Array.from({ length: 25 }, (_, j) => ({
                PutRequest: {
                  Item: {
                    pk: { S: `E#${call}-${j}` },
                    sk: { S: '0123456789abcdef' },
                    t: { S: '2026-12-07T12:00:00Z' },
                    c: { S: 'm' },
                    z: { B: compressed[(call * 25 + j) % compressed.length]! },
                    x: { N: '1999999999' },
                  },
                },
              })),
            },
          }),
        )
        .then(() => undefined),
    );
    const records = texts.map((text) => Buffer.from(text));
    const putRecords = await rate(10_000 * scale, 500, (call) =>
      clients.kinesis
        .send(
          new PutRecordsCommand({
            StreamName: 'caps',
            Records: Array.from({ length: 500 }, (_, j) => ({
              Data: records[(call * 500 + j) % records.length]!,
              PartitionKey: `k-${call}-${j}`,
            })),
          }),
        )
        .then(() => undefined),
    );
    const logFile = gzipSync(
      JSON.stringify({ Records: texts.slice(0, 1000).map((t) => JSON.parse(t) as unknown) }),
    );
    const s3Puts = await rate(200 * scale, 1, (i) =>
      clients.s3
        .send(new PutObjectCommand({ Bucket: 'caps', Key: `log-${i}.json.gz`, Body: logFile }))
        .then(() => undefined),
    );
    const figures: BenchFigure[] = [
      {
        name: 'throughput cap: dynalite conditional PutItem',
        value: conditionalPuts,
        unit: 'puts/s',
      },
      { name: 'throughput cap: dynalite BatchWriteItem', value: batchItems, unit: 'items/s' },
      { name: 'throughput cap: kinesalite PutRecords', value: putRecords, unit: 'records/s' },
      {
        name: 'throughput cap: s3rver PutObject',
        value: s3Puts,
        unit: 'PUTs/s',
        notes: `${(logFile.length / 1024).toFixed(0)} KiB gzipped 1,000-record log files`,
      },
    ];
    for (const f of figures) progress(`${f.name}: ${f.value.toFixed(0)} ${f.unit}`);
    return figures;
  } finally {
    destroyClients(clients);
    await emulators.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function runThroughputBench(options: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<BenchFigure[]> {
  const n = options.quick ? 10_000 : 100_000;
  const texts = syntheticRecordTexts(realRecords(), n, 'throughput');
  const replayed = await replay(texts);
  const caps = await emulatorCaps(texts, options.quick);
  return [...replayed, ...caps];
}
