/**
 * What the packager writes besides the log files' records, each a detail an operator or the
 * next component depends on: the dedup claims' batch id and expiry, Insights files, the key's
 * delivery minute, the object's headers, the manifest's delivery time, delivery notices, the
 * digest registry, the order of the reported files and the race error.
 */
import { gunzipSync } from 'node:zlib';
import { DEFAULT_TRAIL, type TrailConfig } from '../../lambda/core/config';
import { sha256Hex } from '../../lambda/core/logfile';
import { packageBatch } from '../../lambda/core/packager';
import {
  DedupRaceError,
  type PackagerDeps,
  type StreamBatch,
} from '../../lambda/core/packager-types';
import type {
  DeliveryNotice,
  DigestStreamRef,
  ObjectStore,
  ManifestRow,
} from '../../lambda/core/ports';
import {
  MemoryDedupStore,
  MemoryManifestStore,
  MemoryMetrics,
  MemoryObjectStore,
} from '../fixtures/memory-ports';

const BUCKET = 'log-bucket';
const SHARD = 'shardId-000000000007';
const WINDOW_MS = 6 * 3_600_000;
const NOW = Date.UTC(2031, 0, 2, 3, 4, 5, 678);
const T0 = Date.UTC(2024, 4, 1, 12, 5, 30, 250);

function env(
  trails: readonly TrailConfig[] = [DEFAULT_TRAIL],
  overrides: Partial<PackagerDeps> = {},
) {
  const objects = new MemoryObjectStore();
  const manifest = new MemoryManifestStore();
  const dedup = new MemoryDedupStore();
  const notices: DeliveryNotice[] = [];
  const registered: DigestStreamRef[] = [];
  const deps: PackagerDeps = {
    trails,
    bucket: BUCKET,
    objects,
    manifest,
    dedup,
    metrics: new MemoryMetrics(),
    dedupWindowMs: WINDOW_MS,
    now: () => NOW,
    notifier: { logFileDelivered: async (notice) => void notices.push(notice) },
    streams: { register: async (stream) => void registered.push(stream) },
    ...overrides,
  };
  return { objects, manifest, dedup, notices, registered, deps };
}

function record(eventID: string, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({
    eventVersion: '1.11',
    eventTime: '2024-05-01T12:00:00Z',
    eventSource: 'iam.amazonaws.com',
    eventName: 'ListUsers',
    awsRegion: 'us-east-1',
    eventID,
    eventType: 'AwsApiCall',
    eventCategory: 'Management',
    recipientAccountId: '111111111111',
    ...fields,
  });
}

/** Records with the given arrival times, sequence numbers 101, 102, … */
function batch(texts: readonly string[], arrivals: readonly number[]): StreamBatch {
  return {
    shardId: SHARD,
    records: texts.map((text, i) => ({
      sequenceNumber: String(101 + i),
      partitionKey: 'p',
      data: Buffer.from(text),
      arrivalMs: arrivals[i] ?? T0,
    })),
  };
}

describe('packageBatch details', () => {
  it("stamps each dedup claim with the batch id (shard, first and last sequence) and an expiry of the newest claim's arrival plus the window and a day", async () => {
    // Arrange
    const { dedup, deps } = env();

    // Act
    await packageBatch(
      batch([record('e1'), record('e2'), record('e3')], [T0 + 2_000, T0, T0 + 1_000]),
      deps,
    );

    // Assert
    const item = dedup.items.get('e1')!;
    expect(item.claims.map((c) => c.batch)).toEqual([`${SHARD}:101:103`]);
    expect(item.claims.map((c) => c.record)).toEqual([`${SHARD}:101`]);
    expect(item.expiresAt).toBe(Math.ceil((T0 + 2_000) / 1000) + WINDOW_MS / 1000 + 86_400);
    expect(dedup.items.get('e2')!.expiresAt).toBe(Math.ceil(T0 / 1000) + WINDOW_MS / 1000 + 86_400);
  });

  it("keeps an eventID's dedup item until the newest of its claims expires, not the oldest", async () => {
    // Arrange: e1 arrives, then an hour later another content under the same eventID (kept
    // beside it as a conflict), so e1's item holds two claims.
    const { dedup, deps } = env();
    await packageBatch(batch([record('e1')], [T0]), deps);
    const later = T0 + 3_600_000;
    const forged: StreamBatch = {
      shardId: SHARD,
      records: [
        {
          sequenceNumber: '500',
          partitionKey: 'p',
          data: Buffer.from(record('e1', { eventName: 'DeleteUser' })),
          arrivalMs: later,
        },
      ],
    };

    // Act
    const result = await packageBatch(forged, deps);

    // Assert
    expect(result.conflicts).toBe(1);
    const item = dedup.items.get('e1')!;
    expect(item.claims.map((c) => c.arrivalMs).sort()).toEqual([T0, later]);
    expect(item.expiresAt).toBe(Math.ceil(later / 1000) + WINDOW_MS / 1000 + 86_400);
  });

  it.each<[string, 'CloudTrail' | 'CloudTrail-Insight', Record<string, unknown>]>([
    ['eventCategory Insight alone', 'CloudTrail-Insight', { eventCategory: 'Insight' }],
    [
      'eventType AwsCloudTrailInsight alone',
      'CloudTrail-Insight',
      { eventType: 'AwsCloudTrailInsight' },
    ],
    ['neither', 'CloudTrail', { eventCategory: 'Data', eventType: 'AwsApiCall' }],
  ])('files a record with %s as %s', async (_name, kind, fields) => {
    // Arrange
    const { deps } = env();

    // Act
    const result = await packageBatch(batch([record('e1', fields)], [T0]), deps);

    // Assert
    expect(result.files).toHaveLength(1);
    expect(result.files[0]!.key).toContain(`/${kind}/us-east-1/`);
    expect(result.files[0]!.key).toContain(`_${kind}_us-east-1_`);
  });

  it('dates the key by the newest arrival of the batch, wherever it stands in the batch', async () => {
    // Arrange: the first record arrived last, minutes after the others.
    const { deps } = env();
    const newest = Date.UTC(2024, 4, 1, 12, 9, 0);

    // Act
    const result = await packageBatch(
      batch([record('e1'), record('e2')], [newest, Date.UTC(2024, 4, 1, 12, 1, 0)]),
      deps,
    );

    // Assert
    expect(result.files[0]!.key).toContain('_CloudTrail_us-east-1_20240501T1209Z_');
  });

  it('writes each log file as gzip-encoded JSON, marks it delivered at the clock time, notifies and registers its stream', async () => {
    // Arrange
    const { objects, manifest, notices, registered, deps } = env();
    const headers: { contentType: string; contentEncoding: string | undefined }[] = [];
    const store: ObjectStore = {
      putIfAbsent: async (object) => {
        headers.push({ contentType: object.contentType, contentEncoding: object.contentEncoding });
        return objects.putIfAbsent(object);
      },
      get: (bucket, key) => objects.get(bucket, key),
    };

    // Act
    const result = await packageBatch(batch([record('e1')], [T0]), { ...deps, objects: store });

    // Assert
    const key = result.files[0]!.key;
    expect(headers).toEqual([{ contentType: 'application/json', contentEncoding: 'gzip' }]);
    expect(manifest.rows.get(`${BUCKET}/${key}`)).toMatchObject({
      state: 'delivered',
      deliveredAt: new Date(NOW).toISOString(),
    });
    expect(notices).toEqual([{ trail: DEFAULT_TRAIL.name, bucket: BUCKET, key }]);
    expect(registered).toEqual([
      { trail: DEFAULT_TRAIL.name, account: '111111111111', region: 'us-east-1', firstSeenMs: NOW },
    ]);
  });

  it.each<[string, Buffer, string]>([
    [
      'UTF-8 bytes (non-ASCII, escapes, member order and spacing kept)',
      Buffer.from(record('e1', { u: 'ü 😀 \\"q\\"', z: 1.5, a: [] }), 'utf8'),
      record('e1', { u: 'ü 😀 \\"q\\"', z: 1.5, a: [] }),
    ],
    [
      'bytes that are not UTF-8 (read with replacement characters)',
      Buffer.concat([
        Buffer.from(record('e1', { u: 'x' }).slice(0, -3), 'utf8'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}', 'utf8'),
      ]),
      `${record('e1', { u: 'x' }).slice(0, -3)}\ufffd\ufffd"}`,
    ],
  ])('files each record as its stream bytes read as UTF-8: %s', async (_, data, text) => {
    // Arrange
    const { objects, deps } = env();
    const one: StreamBatch = {
      shardId: SHARD,
      records: [{ sequenceNumber: '101', partitionKey: 'p', data, arrivalMs: T0 }],
    };

    // Act
    const result = await packageBatch(one, deps);

    // Assert
    const body = objects.objects.get(`${BUCKET}/${result.files[0]!.key}`)!;
    const json = gunzipSync(body);
    expect(json.toString('utf8')).toBe(`{"Records":[${text}]}`);
    expect(result.files[0]!.sha256).toBe(sha256Hex(json));
  });

  it('completes an object already there with the same content (a crash after the write) without a second copy', async () => {
    // Arrange: the first attempt wrote the object and died before marking it delivered.
    const first = env();
    first.manifest.faults.inject('markDelivered');
    const records = batch([record('e1'), record('e2')], [T0, T0]);
    await expect(packageBatch(records, first.deps)).rejects.toThrow();
    const [id] = first.objects.keys();
    const before = Buffer.from(first.objects.objects.get(id!)!);

    // Act
    const result = await packageBatch(records, first.deps);

    // Assert
    expect(first.objects.keys()).toEqual([id]);
    expect(Buffer.from(first.objects.objects.get(id!)!)).toEqual(before);
    expect(first.manifest.rows.get(id!)?.state).toBe('delivered');
    expect(result.files.map((f) => `${BUCKET}/${f.key}`)).toEqual([id]);
  });

  it('fails, naming the object, when the key exists but its object cannot be read back', async () => {
    // Arrange: S3 says the key exists (a concurrent writer), then the object is gone.
    const { deps } = env();
    const store: ObjectStore = {
      putIfAbsent: async () => 'exists',
      get: async () => undefined,
    };

    // Act
    const attempt = packageBatch(batch([record('e1')], [T0]), { ...deps, objects: store });

    // Assert
    await expect(attempt).rejects.toThrow(
      /^s3:\/\/log-bucket\/AWSLogs\/.+ exists with other content; it is never overwritten$/,
    );
  });

  it('reports the files written in key order, whatever order their writes finish in', async () => {
    // Arrange: three regions; the first key's write finishes last.
    const { objects, deps } = env();
    const delays = [30, 15, 0];
    let call = 0;
    const store: ObjectStore = {
      putIfAbsent: async (object) => {
        await new Promise((resolve) => setTimeout(resolve, delays[call++ % 3]));
        return objects.putIfAbsent(object);
      },
      get: (bucket, key) => objects.get(bucket, key),
    };
    const texts = ['ap-south-1', 'eu-west-1', 'us-east-1'].map((region, i) =>
      record(`e${i}`, { awsRegion: region }),
    );

    // Act
    const result = await packageBatch(batch(texts, [T0, T0, T0]), { ...deps, objects: store });

    // Assert
    const keys = result.files.map((f) => f.key);
    expect(keys).toHaveLength(3);
    expect(keys).toEqual([...keys].sort());
  });

  it('a resend completes the object of a batch that wrote it and died: marked delivered at the clock time, and its notice sent', async () => {
    // Arrange: batch A wrote its object, then died before marking it delivered.
    const a = env();
    const text = record('e1');
    a.manifest.faults.inject('markDelivered');
    await expect(packageBatch(batch([text], [T0]), a.deps)).rejects.toThrow();
    const [id] = a.objects.keys();
    const later = { ...a.deps, now: () => NOW + 60_000 };

    // Act: a resend of the same event in another batch (other sequence numbers).
    const resend: StreamBatch = {
      shardId: SHARD,
      records: [
        {
          sequenceNumber: '900',
          partitionKey: 'p',
          data: Buffer.from(text),
          arrivalMs: T0 + 5_000,
        },
      ],
    };
    const result = await packageBatch(resend, later);

    // Assert: dropped as a duplicate; A's object completed instead of a second copy.
    expect(result).toMatchObject({ files: [], duplicates: 1 });
    expect(a.objects.keys()).toEqual([id]);
    const row: ManifestRow | undefined = a.manifest.rows.get(id!);
    expect(row).toMatchObject({
      state: 'delivered',
      deliveredAt: new Date(NOW + 60_000).toISOString(),
    });
    expect(a.notices).toEqual([
      { trail: DEFAULT_TRAIL.name, bucket: BUCKET, key: id!.slice(BUCKET.length + 1) },
    ]);
    expect(JSON.parse(gunzipSync(a.objects.objects.get(id!)!).toString()).Records).toHaveLength(1);
    expect(row?.sha256).toBe(sha256Hex(gunzipSync(a.objects.objects.get(id!)!)));
  });

  it('a first write reads nothing back from S3 (one PUT per file, no GET)', async () => {
    // Arrange
    const { objects, deps } = env();
    let gets = 0;
    const store: ObjectStore = {
      putIfAbsent: (object) => objects.putIfAbsent(object),
      get: (bucket, key) => {
        gets++;
        return objects.get(bucket, key);
      },
    };

    // Act
    await packageBatch(batch([record('e1'), record('e2')], [T0, T0]), { ...deps, objects: store });

    // Assert
    expect(objects.keys()).toHaveLength(1);
    expect(gets).toBe(0);
  });

  it('a resend of an event already delivered is dropped without a second notice or a read of its object', async () => {
    // Arrange
    const { objects, notices, deps } = env();
    const text = record('e1');
    await packageBatch(batch([text], [T0]), deps);
    let gets = 0;
    const store: ObjectStore = {
      putIfAbsent: (object) => objects.putIfAbsent(object),
      get: (bucket, key) => {
        gets++;
        return objects.get(bucket, key);
      },
    };
    const resend: StreamBatch = {
      shardId: SHARD,
      records: [
        {
          sequenceNumber: '900',
          partitionKey: 'p',
          data: Buffer.from(text),
          arrivalMs: T0 + 5_000,
        },
      ],
    };

    // Act
    const result = await packageBatch(resend, { ...deps, objects: store });

    // Assert
    expect(result).toMatchObject({ files: [], duplicates: 1 });
    expect(notices).toHaveLength(1);
    expect(gets).toBe(0);
    expect(objects.keys()).toHaveLength(1);
  });

  it('names the eventID whose claim changed under the batch, in a DedupRaceError', async () => {
    // Arrange: another packager writes e1's claim between our read and our write.
    const { dedup, deps } = env();
    const original = dedup.getMany.bind(dedup);
    dedup.getMany = async (ids) => {
      const found = await original(ids);
      await dedup.put({ eventId: 'e1', claims: [], ver: 0 }, 0, 0);
      return found;
    };

    // Act
    const error: unknown = await packageBatch(batch([record('e1')], [T0]), deps).catch(
      (e: unknown) => e,
    );

    // Assert
    expect(error).toBeInstanceOf(DedupRaceError);
    expect(error).toMatchObject({
      name: 'DedupRaceError',
      message: 'dedup claim for eventID e1 changed during the batch; retrying the batch',
    });
  });
});
