import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordsCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { Command } from 'commander';
import {
  createClients,
  destroyClients,
  EMULATOR_CREDENTIALS,
  type Clients,
} from '../../lambda/adapters/clients';
import { redrive, register, type RedriveReport } from '../../cli/redrive';
import type { Emulators } from '../../local/emulators';
import { startLimitedEmulators } from '../support/limited-dynalite';

const REGION = 'us-east-1';
const BUCKET = 'opentrail-failed-records';
const STREAM = 'opentrail-events';
const STREAM_ARN = `arn:aws:kinesis:${REGION}:000000000000:stream/${STREAM}`;
const FAST_RETRY = { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

interface TestRecord {
  partitionKey: string;
  data: Buffer;
}

function failureObject(records: readonly TestRecord[], payloadAsObject = false): string {
  const event = {
    Records: records.map((r, i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: r.partitionKey,
        sequenceNumber: String(49_000 + i),
        data: r.data.toString('base64'),
        approximateArrivalTimestamp: 1_714_564_800 + i,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:${49_000 + i}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::000000000000:role/packager',
      awsRegion: REGION,
      eventSourceARN: STREAM_ARN,
    })),
  };
  return JSON.stringify({
    requestContext: {
      requestId: 'req',
      functionArn: `arn:aws:lambda:${REGION}:000000000000:function:packager`,
      condition: 'RetryAttemptsExhausted',
      approximateInvokeCount: 6,
    },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    version: '1.0',
    timestamp: '2024-05-01T12:00:00.000Z',
    KinesisBatchInfo: {
      shardId: 'shardId-000000000000',
      startSequenceNumber: '49000',
      endSequenceNumber: String(49_000 + records.length - 1),
      approximateArrivalOfFirstRecord: '2024-05-01T11:59:00.000Z',
      approximateArrivalOfLastRecord: '2024-05-01T11:59:01.000Z',
      batchSize: records.length,
      streamArn: STREAM_ARN,
    },
    payload: payloadAsObject ? event : JSON.stringify(event),
  });
}

function records(prefix: string, count: number): TestRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    partitionKey: `${prefix}-${i}`,
    // Arbitrary bytes, not only text: the data must come back byte for byte.
    data: Buffer.concat([
      Buffer.from(JSON.stringify({ eventID: `${prefix}-${i}` })),
      Buffer.from([0, 255, i % 256]),
    ]),
  }));
}

const KEY_PREFIX = 'aws/lambda/packager/shardId-000000000000/2024/05/01/';

async function readStream(clients: Clients): Promise<TestRecord[]> {
  const shards = await clients.kinesis.send(new ListShardsCommand({ StreamName: STREAM }));
  const out: TestRecord[] = [];
  for (const shard of shards.Shards ?? []) {
    let iterator = (
      await clients.kinesis.send(
        new GetShardIteratorCommand({
          StreamName: STREAM,
          ShardId: shard.ShardId!,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      )
    ).ShardIterator;
    for (;;) {
      const page = await clients.kinesis.send(
        new GetRecordsCommand({ ShardIterator: iterator!, Limit: 10_000 }),
      );
      for (const r of page.Records ?? [])
        out.push({ partitionKey: r.PartitionKey!, data: Buffer.from(r.Data!) });
      if ((page.Records ?? []).length === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return out;
}

async function listKeys(clients: Clients): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await clients.s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, ...(token ? { ContinuationToken: token } : {}) }),
    );
    for (const object of page.Contents ?? []) keys.push(object.Key!);
    token = page.NextContinuationToken;
  } while (token);
  return keys.sort();
}

async function getText(clients: Clients, key: string): Promise<string> {
  const object = await clients.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return object.Body!.transformToString();
}

async function runCli(args: string[]): Promise<{ stdout: string; exitCode: number }> {
  let stdout = '';
  const program = new Command('opentrail').exitOverride();
  register(program, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: () => true },
  });
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync(['redrive', ...args], { from: 'user' });
    return { stdout, exitCode: Number(process.exitCode ?? 0) };
  } finally {
    process.exitCode = before;
  }
}

describe('redrive against s3rver and kinesalite', () => {
  let dataDir: string;
  let emulators: Emulators;
  let clients: Clients;
  let endpointsFile: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'opentrail-redrive-'));
    emulators = await startLimitedEmulators({ dataDir });
    clients = createClients({
      region: REGION,
      s3Endpoint: emulators.s3Endpoint,
      kinesisEndpoint: emulators.kinesisEndpoint,
      credentials: EMULATOR_CREDENTIALS,
    });
    await clients.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await clients.kinesis.send(new CreateStreamCommand({ StreamName: STREAM, ShardCount: 1 }));
    for (let i = 0; ; i++) {
      const summary = await clients.kinesis.send(
        new DescribeStreamSummaryCommand({ StreamName: STREAM }),
      );
      if (summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
      if (i > 100) throw new Error('stream never became ACTIVE');
      await new Promise((r) => setTimeout(r, 100));
    }
    endpointsFile = path.join(dataDir, 'endpoints.json');
    writeFileSync(
      endpointsFile,
      JSON.stringify({
        api: 'http://127.0.0.1:1',
        s3: emulators.s3Endpoint,
        kinesis: emulators.kinesisEndpoint,
        dynamodb: 'http://127.0.0.1:1',
        bucket: 'opentrail-logs',
        region: REGION,
        accountId: '000000000000',
        failedBucket: BUCKET,
        stream: STREAM,
      }),
    );
  });

  afterAll(async () => {
    if (clients) destroyClients(clients);
    await emulators?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const objects = {
    a: { key: `${KEY_PREFIX}2024-05-01T12.00.00-a`, records: records('a', 3) },
    b: { key: `${KEY_PREFIX}2024-05-01T12.00.01-b`, records: records('b', 1_200), asObject: true },
    c: { key: `${KEY_PREFIX}2024-05-01T12.00.02-c`, records: records('c', 2) },
  };
  const brokenKey = `${KEY_PREFIX}2024-05-01T12.00.03-broken`;
  const alreadyRedriven = `redriven/${KEY_PREFIX}2024-04-30T00.00.00-old`;

  it('lists what it would re-inject in a dry run, and changes nothing', async () => {
    for (const object of Object.values(objects)) {
      await clients.s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: object.key,
          Body: failureObject(object.records, 'asObject' in object),
        }),
      );
    }
    await clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: brokenKey, Body: 'this is not JSON' }),
    );
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: alreadyRedriven,
        Body: failureObject(records('old', 1)),
      }),
    );
    const before = await listKeys(clients);

    const { stdout, exitCode } = await runCli([
      '--endpoints',
      endpointsFile,
      '--dry-run',
      '--output',
      'json',
    ]);

    const report = JSON.parse(stdout) as RedriveReport;
    expect(exitCode).toBe(1);
    expect(report).toEqual(
      expect.objectContaining({ dryRun: true, objects: 3, records: 1_205, failed: 1 }),
    );
    expect(report.redriven.map((o) => [o.key, o.records, o.stream, o.movedTo])).toEqual([
      [objects.a.key, 3, STREAM, null],
      [objects.b.key, 1_200, STREAM, null],
      [objects.c.key, 2, STREAM, null],
    ]);
    expect(report.failures).toEqual([
      {
        key: brokenKey,
        stage: 'read',
        errorMessage: expect.stringContaining('not a usable on-failure object: not JSON'),
      },
    ]);
    expect(await listKeys(clients)).toEqual(before);
    expect(await readStream(clients)).toEqual([]);
  });

  it('re-injects every record with its partition key and bytes, then moves each object under redriven/', async () => {
    const originals = new Map(
      await Promise.all(
        Object.values(objects).map(async (o) => [o.key, await getText(clients, o.key)] as const),
      ),
    );

    const { stdout, exitCode } = await runCli(['--endpoints', endpointsFile]);

    expect(exitCode).toBe(1); // the broken object
    expect(stdout).toContain('objects redriven: 3, records re-injected: 1205, failed: 1');
    expect(stdout).toContain(`FAILED s3://${BUCKET}/${brokenKey} (read)`);
    const inStream = await readStream(clients);
    expect(inStream).toEqual([...objects.a.records, ...objects.b.records, ...objects.c.records]);
    expect(await listKeys(clients)).toEqual(
      [
        brokenKey,
        alreadyRedriven,
        ...Object.values(objects).map((o) => `redriven/${o.key}`),
      ].sort(),
    );
    for (const [key, text] of originals)
      expect(await getText(clients, `redriven/${key}`)).toBe(text);
  });

  it('re-injects nothing more on a second run', async () => {
    const { stdout, exitCode } = await runCli(['--endpoints', endpointsFile, '--output', 'json']);
    const report = JSON.parse(stdout) as RedriveReport;
    expect(exitCode).toBe(1);
    expect(report).toEqual(expect.objectContaining({ objects: 0, records: 0, failed: 1 }));
    expect(await readStream(clients)).toHaveLength(1_205);
  });

  it('pages through the listing, takes the stream from each object when no --stream is given, and retries records Kinesis refuses', async () => {
    const prefix = 'aws/lambda/indexer/';
    const keys = Array.from({ length: 7 }, (_, i) => `${prefix}obj-${i}`);
    for (const key of keys)
      await clients.s3.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: failureObject(records(key, 2)) }),
      );
    // Kinesis refuses the first record of every first call (ProvisionedThroughputExceeded).
    const calls: { stream?: string; count: number }[] = [];
    const flaky = {
      send: async (command: PutRecordsCommand) => {
        calls.push({
          ...(command.input.StreamARN ? { stream: command.input.StreamARN } : {}),
          count: command.input.Records!.length,
        });
        const refuse = calls.length % 2 === 1;
        const real = await clients.kinesis.send(
          new PutRecordsCommand({
            StreamName: STREAM,
            Records: command.input.Records!.slice(refuse ? 1 : 0),
          }),
        );
        const results = [...(real.Records ?? [])];
        if (refuse)
          results.unshift({
            ErrorCode: 'ProvisionedThroughputExceededException',
            ErrorMessage: 'Rate exceeded',
          });
        return { ...real, FailedRecordCount: refuse ? 1 : 0, Records: results };
      },
    } as unknown as KinesisClient;

    const report = await redrive({
      s3: clients.s3,
      kinesis: flaky,
      bucket: BUCKET,
      prefix,
      pageSize: 3,
      retry: FAST_RETRY,
    });

    expect(report).toEqual(expect.objectContaining({ objects: 7, records: 14, failed: 0 }));
    expect(report.redriven.map((o) => o.key)).toEqual(keys);
    expect(calls).toHaveLength(14);
    expect(calls.every((c) => c.stream === STREAM_ARN)).toBe(true);
    expect(calls.map((c) => c.count)).toEqual(Array.from({ length: 7 }, () => [2, 1]).flat());
    expect((await listKeys(clients)).filter((k) => k.startsWith(prefix))).toEqual([]);
  });

  it('takes its settings from flags, and the stream from the object by name when the Kinesis endpoint is an emulator', async () => {
    const key = 'aws/lambda/flags/obj';
    const sent = records('flags', 2);
    await clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: failureObject(sent) }),
    );
    const before = (await readStream(clients)).length;

    const { stdout, exitCode } = await runCli([
      '--bucket',
      BUCKET,
      '--prefix',
      'aws/lambda/flags/',
      '--region',
      REGION,
      '--s3-endpoint',
      emulators.s3Endpoint,
      '--kinesis-endpoint',
      emulators.kinesisEndpoint,
    ]);

    expect(stdout).toContain(
      `redriven s3://${BUCKET}/${key}: 2 records -> ${STREAM}; moved to s3://${BUCKET}/redriven/${key}`,
    );
    expect(exitCode).toBe(0);
    expect((await readStream(clients)).slice(before)).toEqual(sent);
  });

  it('leaves an object in place when its records are still refused after the last attempt', async () => {
    const key = 'aws/lambda/publisher/obj';
    await clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: failureObject(records('p', 2)) }),
    );
    const refusing = {
      send: (command: PutRecordsCommand) =>
        Promise.resolve({
          FailedRecordCount: command.input.Records!.length,
          Records: command.input.Records!.map(() => ({
            ErrorCode: 'InternalFailure',
            ErrorMessage: 'boom',
          })),
        }),
    } as unknown as KinesisClient;

    const report = await redrive({
      s3: clients.s3,
      kinesis: refusing,
      bucket: BUCKET,
      prefix: 'aws/lambda/publisher/',
      stream: STREAM,
      retry: FAST_RETRY,
    });

    expect(report.failures).toEqual([
      {
        key,
        stage: 'put',
        errorMessage:
          '2 of 2 records not accepted after 4 attempts (InternalFailure: boom); the object stays in place',
      },
    ]);
    expect(await listKeys(clients)).toContain(key);
  });
});
