import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  type ListObjectsCommandOutput,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  CreateTableCommand,
  GetItemCommand,
  PutItemCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  PutRecordCommand,
} from '@aws-sdk/client-kinesis';
import { SignatureV4 } from '@smithy/signature-v4';
import { createClients, destroyClients, type Clients } from '../../lambda/adapters/clients';
import { ensureBucket, startEmulators, type Emulators } from '../../local/emulators';

const REGION = 'us-east-1';
const BUCKET = 'emulator-test';

/** Byte order of UTF-8 keys: how S3 sorts. */
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

interface Env {
  dataDir: string;
  emulators: Emulators;
  clients: Clients;
}

let env: Env | undefined;

async function start(dataDir?: string): Promise<Env> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'opentrail-emulators-')));
  const emulators = await startEmulators({ dataDir: dir });
  const clients = createClients({ region: REGION, ...emulators });
  env = { dataDir: dir, emulators, clients };
  return env;
}

async function stop(): Promise<void> {
  if (!env) return;
  const { emulators, clients } = env;
  env = undefined;
  destroyClients(clients);
  await emulators.close();
}

afterEach(async () => {
  const dataDir = env?.dataDir;
  await stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function errorOf(promise: Promise<unknown>): Promise<{ name: string; status?: number }> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: Error & { $metadata?: { httpStatusCode?: number } }) => ({
      name: error.name,
      status: error.$metadata?.httpStatusCode,
    }),
  );
}

async function getText(s3: S3Client, key: string): Promise<string> {
  const response = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return response.Body!.transformToString();
}

/** Runs `task` over `items`, at most `limit` at a time. */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

function portIsClosed(endpoint: string): Promise<boolean> {
  const { hostname, port } = new URL(endpoint);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

test("S3 accepts the run's access key only: SDK header auth, V4 presigned URL, V2 header; anonymous, unknown keys and bad signatures are refused", async () => {
  const { emulators, clients } = await start();
  const { accessKeyId, secretAccessKey } = emulators.credentials;
  await ensureBucket(clients.s3, BUCKET);
  await ensureBucket(clients.s3, BUCKET); // idempotent
  await clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'k', Body: 'hello' }));
  expect(await getText(clients.s3, 'k')).toBe('hello');

  const url = new URL(`${emulators.s3Endpoint}/${BUCKET}/k`);
  const presign = async (credentials: { accessKeyId: string; secretAccessKey: string }) => {
    const signer = new SignatureV4({ service: 's3', region: REGION, sha256: Sha256, credentials });
    const presigned = await signer.presign(
      {
        method: 'GET',
        protocol: 'http:',
        hostname: url.hostname,
        port: Number(url.port),
        path: url.pathname,
        query: {},
        // As @aws-sdk/s3-request-presigner does: S3 signs presigned URLs' payload as unsigned.
        headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      },
      { expiresIn: 60 },
    );
    const query = new URLSearchParams(presigned.query as Record<string, string>);
    return fetch(`${url.origin}${url.pathname}?${query.toString()}`);
  };
  const viaQuery = await presign(emulators.credentials);
  expect(viaQuery.status).toBe(200);
  expect(await viaQuery.text()).toBe('hello');
  const wrongSecret = await presign({ accessKeyId, secretAccessKey: 'not the secret' });
  expect(wrongSecret.status).toBe(403);
  expect(await wrongSecret.text()).toContain('<Code>SignatureDoesNotMatch</Code>');

  // Legacy V2 header auth: HMAC-SHA1 over "GET\n\n\nDATE\n/bucket/key".
  const date = new Date().toUTCString();
  const v2 = (secret: string) =>
    createHmac('sha1', secret).update(`GET\n\n\n${date}\n/${BUCKET}/k`).digest('base64');
  const viaV2 = await fetch(url, {
    headers: { authorization: `AWS ${accessKeyId}:${v2(secretAccessKey)}`, date },
  });
  expect(viaV2.status).toBe(200);
  expect(await viaV2.text()).toBe('hello');
  const badV2 = await fetch(url, {
    headers: { authorization: `AWS ${accessKeyId}:${v2('guess')}`, date },
  });
  expect(badV2.status).toBe(403);

  const anonymous = await fetch(url);
  expect(anonymous.status).toBe(403);
  expect(await anonymous.text()).toContain('<Code>AccessDenied</Code>');

  const stranger = createClients({
    region: REGION,
    s3Endpoint: emulators.s3Endpoint,
    credentials: {
      accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(20).toString('base64'),
    },
  });
  const forger = createClients({
    region: REGION,
    s3Endpoint: emulators.s3Endpoint,
    credentials: { accessKeyId, secretAccessKey: randomBytes(20).toString('base64') },
  });
  try {
    expect(
      await errorOf(
        stranger.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'k', Body: 'x' })),
      ),
    ).toEqual({ name: 'InvalidAccessKeyId', status: 403 });
    expect(
      await errorOf(forger.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'k', Body: 'x' }))),
    ).toEqual({ name: 'SignatureDoesNotMatch', status: 403 });
    expect(await getText(clients.s3, 'k')).toBe('hello');
  } finally {
    destroyClients(stranger);
    destroyClients(forger);
  }
});

test('PutObject with IfNoneMatch "*" creates once; a second gets 412 PreconditionFailed and the first bytes stay', async () => {
  const { clients } = await start();
  await ensureBucket(clients.s3, BUCKET);
  const put = (body: string) =>
    clients.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'once/key', Body: body, IfNoneMatch: '*' }),
    );

  await put('first');
  expect(await errorOf(put('second'))).toEqual({ name: 'PreconditionFailed', status: 412 });
  expect(await getText(clients.s3, 'once/key')).toBe('first');

  // Unconditional PUTs still overwrite.
  await clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'once/key', Body: 'third' }));
  expect(await getText(clients.s3, 'once/key')).toBe('third');

  // CompleteMultipartUpload honours it too (and leaves the upload for a retry or an abort).
  const complete = async (key: string, body: string) => {
    const { UploadId } = await clients.s3.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }),
    );
    const { ETag } = await clients.s3.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: body }),
    );
    return clients.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId,
        IfNoneMatch: '*',
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] },
      }),
    );
  };
  await complete('multi/new', 'multipart body');
  expect(await getText(clients.s3, 'multi/new')).toBe('multipart body');
  expect(await errorOf(complete('once/key', 'late'))).toEqual({
    name: 'PreconditionFailed',
    status: 412,
  });
  expect(await getText(clients.s3, 'once/key')).toBe('third');
});

test('concurrent conditional PUTs of one key: exactly one wins, and its bytes are the object', async () => {
  const { clients } = await start();
  await ensureBucket(clients.s3, BUCKET);
  for (let round = 0; round < 5; round++) {
    const key = `race/${round}`;
    const bodies = Array.from({ length: 8 }, (_, i) => `writer-${i}-`.repeat(2_000 * (i + 1)));
    const outcomes = await Promise.allSettled(
      bodies.map((Body) =>
        clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body, IfNoneMatch: '*' })),
      ),
    );
    const winners = outcomes.flatMap((outcome, i) => (outcome.status === 'fulfilled' ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected')
        expect((outcome.reason as Error).name).toBe('PreconditionFailed');
    }
    expect(await getText(clients.s3, key)).toBe(bodies[winners[0]!]);
  }
});

/** Keys whose directory order, UTF-16 order and byte order all differ, nested and flat. */
function trickyKeys(): string[] {
  const parts = [
    'a',
    'a-b',
    'a.b',
    'a0',
    'A',
    'B',
    'b',
    'a/b',
    'Z',
    'z',
    'é',
    '😀',
    '｡',
    ' x',
    '+',
    '!',
    '~',
    '_',
    'ab',
    '%',
  ];
  const keys = new Set<string>();
  for (const top of parts) {
    keys.add(top);
    keys.add(`${top}/`);
    for (const sub of parts) {
      keys.add(`${top}${sub}`);
      keys.add(`${top}/${sub}`);
      for (let i = 0; i < 3; i++) keys.add(`${top}/${sub}/${'n'.repeat(i * 40)}${i}`);
    }
  }
  keys.add(`long/${'x'.repeat(200)}`);
  keys.add('deep/1/2/3/4/5/6/7/8/leaf');
  return [...keys];
}

/** What S3 lists: keys and common prefixes as one byte-ordered sequence. */
function expectedEntries(keys: readonly string[], prefix = '', delimiter?: string): string[] {
  const entries = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const at = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    entries.add(at === -1 ? key : key.slice(0, at + delimiter!.length));
  }
  return [...entries].sort(byteOrder);
}

async function listV2(
  s3: S3Client,
  options: { maxKeys?: number; prefix?: string; delimiter?: string; startAfter?: string },
): Promise<{ entries: string[]; pages: number[] }> {
  const entries: string[] = [];
  const pages: number[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: BUCKET,
        MaxKeys: options.maxKeys,
        Prefix: options.prefix,
        Delimiter: options.delimiter,
        StartAfter: token ? undefined : options.startAfter,
        ContinuationToken: token,
      }),
    );
    // Within a page keys and common prefixes come as two lists: merge them; across pages the
    // concatenation must already be in order.
    const pageEntries = [
      ...(page.Contents ?? []).map((object) => object.Key!),
      ...(page.CommonPrefixes ?? []).map((common) => common.Prefix!),
    ].sort(byteOrder);
    expect(page.KeyCount).toBe(pageEntries.length);
    entries.push(...pageEntries);
    pages.push(pageEntries.length);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (page.IsTruncated) expect(token).toBeTruthy();
  } while (token);
  return { entries, pages };
}

test('listing 2,000+ tricky keys: byte order, exact paging (V2 and V1), prefixes and delimiters', async () => {
  const { clients } = await start();
  await ensureBucket(clients.s3, BUCKET);
  const keys = trickyKeys();
  expect(keys.length).toBeGreaterThan(1_500);
  await forEachLimited(keys, 32, async (key) => {
    await clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: key }));
  });
  const sorted = [...keys].sort(byteOrder);

  // V2, pages of 1,000: exactly the keys, in byte order already on the wire.
  const pagesOf1000: string[] = [];
  let token: string | undefined;
  do {
    const page = await clients.s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token }),
    );
    expect(page.Contents!.length).toBeLessThanOrEqual(1_000);
    pagesOf1000.push(...page.Contents!.map((object) => object.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  expect(pagesOf1000).toEqual(sorted);

  // V2, pages of 7.
  const small = await listV2(clients.s3, { maxKeys: 7 });
  expect(small.entries).toEqual(sorted);
  expect(small.pages.slice(0, -1).every((size) => size === 7)).toBe(true);

  // V1 with Marker (no delimiter: the next marker is the page's last key).
  const v1: string[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await clients.s3.send(
      new ListObjectsCommand({ Bucket: BUCKET, Marker: marker, MaxKeys: 250 }),
    );
    const pageKeys = page.Contents!.map((object) => object.Key!);
    v1.push(...pageKeys);
    if (!page.IsTruncated) break;
    marker = pageKeys[pageKeys.length - 1];
  }
  expect(v1).toEqual(sorted);

  // StartAfter and Prefix.
  const middle = sorted[Math.floor(sorted.length / 2)]!;
  expect((await listV2(clients.s3, { startAfter: middle, maxKeys: 300 })).entries).toEqual(
    sorted.filter((key) => byteOrder(key, middle) > 0),
  );
  expect((await listV2(clients.s3, { prefix: 'a', maxKeys: 100 })).entries).toEqual(
    sorted.filter((key) => key.startsWith('a')),
  );

  // Delimiter: CommonPrefixes count against MaxKeys and pages neither skip nor repeat them.
  for (const [prefix, maxKeys] of [
    ['', 1_000],
    ['', 3],
    ['a', 5],
    ['a/', 7],
    ['deep/1/', 1],
  ] as const) {
    const listed = await listV2(clients.s3, { prefix, delimiter: '/', maxKeys });
    expect(listed.entries).toEqual(expectedEntries(keys, prefix, '/'));
  }
  const topLevel = await clients.s3.send(
    new ListObjectsV2Command({ Bucket: BUCKET, Delimiter: '/' }),
  );
  expect(topLevel.CommonPrefixes!.map((common) => common.Prefix)).toEqual(
    expectedEntries(keys, '', '/').filter((entry) => entry.endsWith('/')),
  );
  expect(topLevel.Contents!.map((object) => object.Key)).toEqual(
    sorted.filter((key) => !key.includes('/')),
  );

  // V1 with a delimiter: NextMarker may be a common prefix.
  const v1Entries: string[] = [];
  marker = undefined;
  for (;;) {
    const page: ListObjectsCommandOutput = await clients.s3.send(
      new ListObjectsCommand({
        Bucket: BUCKET,
        Prefix: 'a/',
        Delimiter: '/',
        Marker: marker,
        MaxKeys: 4,
      }),
    );
    v1Entries.push(
      ...[
        ...(page.Contents ?? []).map((object) => object.Key!),
        ...(page.CommonPrefixes ?? []).map((common) => common.Prefix!),
      ].sort(byteOrder),
    );
    if (!page.IsTruncated) break;
    marker = page.NextMarker;
    expect(marker).toBeTruthy();
  }
  expect(v1Entries).toEqual(expectedEntries(keys, 'a/', '/'));
});

/** The process exists and is not a zombie (Linux /proc; elsewhere: signal 0). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

test('each emulator runs in a child process of its own, and close() ends all three', async () => {
  const { emulators } = await start();
  expect(new Set(emulators.pids).size).toBe(3);
  expect(emulators.pids).not.toContain(process.pid);
  expect(emulators.pids.every(alive)).toBe(true);

  await stop();
  expect(emulators.pids.filter(alive)).toEqual([]);
});

test('close() releases ports and files: S3 objects, DynamoDB items and Kinesis records survive a restart', async () => {
  const first = await start();
  const { clients } = first;
  await ensureBucket(clients.s3, BUCKET);
  await clients.s3.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: 'kept/object.json', Body: '{"v":1}' }),
  );
  await clients.dynamodb.send(
    new CreateTableCommand({
      TableName: 'kept',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  // dynalite marks the table ACTIVE in a write of its own after answering CreateTable.
  await waitUntilTableExists(
    { client: clients.dynamodb, minDelay: 0.05, maxWaitTime: 30 },
    { TableName: 'kept' },
  );
  await clients.dynamodb.send(
    new PutItemCommand({ TableName: 'kept', Item: { pk: { S: 'a' }, n: { N: '42' } } }),
  );
  await clients.kinesis.send(new CreateStreamCommand({ StreamName: 'kept', ShardCount: 1 }));
  for (;;) {
    const { StreamDescription } = await clients.kinesis.send(
      new DescribeStreamCommand({ StreamName: 'kept' }),
    );
    if (StreamDescription!.StreamStatus === 'ACTIVE') break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const { ShardId, SequenceNumber } = await clients.kinesis.send(
    new PutRecordCommand({ StreamName: 'kept', PartitionKey: 'p', Data: Buffer.from('record-1') }),
  );

  const { dataDir, emulators } = first;
  await stop();
  for (const endpoint of [
    emulators.s3Endpoint,
    emulators.dynamodbEndpoint,
    emulators.kinesisEndpoint,
  ]) {
    expect(await portIsClosed(endpoint)).toBe(true);
  }

  // Same process, same directory, right away: the LevelDB locks must be free.
  const second = await start(dataDir);
  expect(await getText(second.clients.s3, 'kept/object.json')).toBe('{"v":1}');
  const { Item } = await second.clients.dynamodb.send(
    new GetItemCommand({ TableName: 'kept', Key: { pk: { S: 'a' } }, ConsistentRead: true }),
  );
  expect(Item).toEqual({ pk: { S: 'a' }, n: { N: '42' } });
  const { ShardIterator } = await second.clients.kinesis.send(
    new GetShardIteratorCommand({ StreamName: 'kept', ShardId, ShardIteratorType: 'TRIM_HORIZON' }),
  );
  const { Records } = await second.clients.kinesis.send(new GetRecordsCommand({ ShardIterator }));
  expect(
    Records!.map((record) => [record.SequenceNumber, Buffer.from(record.Data!).toString()]),
  ).toEqual([[SequenceNumber, 'record-1']]);

  // A directory in use is refused with a clear error rather than a hang or a crash.
  await expect(startEmulators({ dataDir })).rejects.toThrow(
    /another runtime using this data directory/,
  );
});

test('an object whose metadata file was cut short by a crash still reads and lists', async () => {
  const { clients, dataDir } = await start();
  await ensureBucket(clients.s3, BUCKET);
  await clients.s3.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: 'crash/object.json', Body: '{"v":1}' }),
  );
  // What a process killed in the middle of writing the metadata file would leave behind.
  const metadataFile = join(dataDir, 's3', BUCKET, 'crash', 'object.json._S3rver_metadata.json');
  await writeFile(metadataFile, '{"content-ty');

  expect(await getText(clients.s3, 'crash/object.json')).toBe('{"v":1}');
  const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  expect(listed.Contents!.map((object) => object.Key)).toEqual(['crash/object.json']);
  const files = await readdir(join(dataDir, 's3', BUCKET, 'crash'));
  expect(files.filter((name) => name.endsWith('.tmp'))).toEqual([]);
});
