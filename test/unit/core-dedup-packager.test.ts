import { gunzipSync, gzipSync } from 'node:zlib';
import { DEFAULT_TRAIL, type TrailConfig } from '../../lambda/core/config';
import { parseLogFileKey } from '../../lambda/core/layout';
import { sha256Hex } from '../../lambda/core/logfile';
import { packageBatch } from '../../lambda/core/packager';
import {
  DedupRaceError,
  UnprocessableRecordError,
  type PackagerDeps,
  type StreamBatch,
  type StreamRecord,
} from '../../lambda/core/packager-types';
import type { DedupItem } from '../../lambda/core/ports';
import {
  decide,
  dedupItemBytes,
  DYNAMODB_ITEM_MAX_BYTES,
  MAX_CLAIMS_PER_TRAIL,
} from '../../lambda/core/dedup';
import {
  MemoryDedupStore,
  MemoryManifestStore,
  MemoryMetrics,
  MemoryObjectStore,
} from '../fixtures/memory-ports';

const BUCKET = 'log-bucket';
const HOUR = 3600_000;
const WINDOW_MS = 24 * HOUR;
/** Arrival of the first batch: 2024-05-01T12:34:56.789Z. */
const T0 = Date.UTC(2024, 4, 1, 12, 34, 56, 789);
const SHARD = 'shardId-000000000000';

interface Env {
  objects: MemoryObjectStore;
  manifest: MemoryManifestStore;
  dedup: MemoryDedupStore;
  metrics: MemoryMetrics;
  deps: PackagerDeps;
}

function newEnv(
  trails: readonly TrailConfig[] = [DEFAULT_TRAIL],
  overrides: Partial<PackagerDeps> = {},
): Env {
  const objects = new MemoryObjectStore();
  const manifest = new MemoryManifestStore();
  const dedup = new MemoryDedupStore();
  const metrics = new MemoryMetrics();
  const deps: PackagerDeps = {
    trails,
    bucket: BUCKET,
    objects,
    manifest,
    dedup,
    metrics,
    dedupWindowMs: WINDOW_MS,
    // The wall clock is far from the arrival times: keys must not depend on it.
    now: () => Date.UTC(2031, 0, 1, 0, 0, 0),
    ...overrides,
  };
  return { objects, manifest, dedup, metrics, deps };
}

/** A stored record text as ingest produces it. */
function record(eventID: string, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({
    eventVersion: '1.11',
    userIdentity: { type: 'IAMUser', accountId: '111111111111' },
    eventTime: '2024-05-01T12:00:00Z',
    eventSource: 'iam.amazonaws.com',
    eventName: 'ListUsers',
    awsRegion: 'us-east-1',
    eventID,
    eventType: 'AwsApiCall',
    eventCategory: 'Management',
    managementEvent: true,
    recipientAccountId: '111111111111',
    ...fields,
  });
}

let sequence = 0;
/** A batch of consecutive stream records, all arriving at `arrivalMs` (+1 ms each). */
function batch(texts: readonly string[], arrivalMs: number): StreamBatch {
  const records: StreamRecord[] = texts.map((text, i) => ({
    sequenceNumber: String(++sequence).padStart(56, '4'),
    partitionKey: (JSON.parse(text) as { eventID?: string }).eventID ?? 'x',
    data: Buffer.from(text, 'utf8'),
    arrivalMs: arrivalMs + i,
  }));
  return { shardId: SHARD, records };
}

function rawBatch(datas: readonly string[]): StreamBatch {
  return {
    shardId: SHARD,
    records: datas.map((data) => ({
      sequenceNumber: String(++sequence),
      partitionKey: 'p',
      data: Buffer.from(data),
      arrivalMs: T0,
    })),
  };
}

function fileText(env: Env, key: string): string {
  const body = env.objects.objects.get(`${BUCKET}/${key}`);
  if (body === undefined) throw new Error(`no object ${key}`);
  return gunzipSync(body).toString('utf8');
}

function eventIdsIn(env: Env, key: string): string[] {
  return (JSON.parse(fileText(env, key)) as { Records: { eventID: string }[] }).Records.map(
    (r) => r.eventID,
  );
}

function allStoredEventIds(env: Env): string[] {
  return env.objects.keys().flatMap((id) => eventIdsIn(env, id.slice(BUCKET.length + 1)));
}

/** How many times each eventID is stored, over every object under every prefix. */
function storedCounts(env: Env, prefix?: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of env.objects.keys()) {
    const key = id.slice(BUCKET.length + 1);
    if (prefix !== undefined && !key.startsWith(`${prefix}/`)) continue;
    for (const eventId of eventIdsIn(env, key)) counts.set(eventId, (counts.get(eventId) ?? 0) + 1);
  }
  return new Map([...counts].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Objects whose manifest row is missing or not delivered (in no digest). */
function objectsOutsideDelivered(env: Env): string[] {
  return env.objects.keys().filter((id) => env.manifest.rows.get(id)?.state !== 'delivered');
}

function snapshot(env: Env): Map<string, string> {
  return new Map(
    [...env.objects.objects].map(([key, body]) => [key, Buffer.from(body).toString('base64')]),
  );
}

describe('packageBatch: files', () => {
  it('writes one file per (trail, account, region) holding its records in stream order', async () => {
    // Arrange
    const env = newEnv();
    const texts = [
      record('e1', { eventTime: '2024-05-01T12:00:03Z' }),
      record('e2', { awsRegion: 'eu-west-1' }),
      record('e3', { recipientAccountId: '222222222222' }),
      record('e4', { eventTime: '2024-05-01T11:00:00Z' }),
      record('e5', { awsRegion: 'eu-west-1' }),
    ];

    // Act
    const result = await packageBatch(batch(texts, T0), env.deps);

    // Assert
    const byFolder = new Map(
      result.files.map((f) => [
        `${parseLogFileKey(f.key)!.account}/${parseLogFileKey(f.key)!.region}`,
        f.key,
      ]),
    );
    expect([...byFolder.keys()].sort()).toEqual([
      '111111111111/eu-west-1',
      '111111111111/us-east-1',
      '222222222222/us-east-1',
    ]);
    expect(fileText(env, byFolder.get('111111111111/us-east-1')!)).toBe(
      `{"Records":[${texts[0]},${texts[3]}]}`,
    );
    expect(fileText(env, byFolder.get('111111111111/eu-west-1')!)).toBe(
      `{"Records":[${texts[1]},${texts[4]}]}`,
    );
    expect(fileText(env, byFolder.get('222222222222/us-east-1')!)).toBe(
      `{"Records":[${texts[2]}]}`,
    );
    expect(env.objects.keys()).toHaveLength(3);
  });

  it('names files per the layout, dated by the newest arrival of the batch, not the clock', async () => {
    // Arrange
    const env = newEnv([
      { name: 'org-trail', prefix: 'audit/prod', organizationId: 'o-exampleorgid' },
    ]);
    const texts = [record('e1'), record('e2')];

    // Act
    const result = await packageBatch(
      batch(texts, Date.UTC(2024, 11, 31, 23, 59, 59, 999) - 1),
      env.deps,
    );

    // Assert
    expect(result.files.map((f) => f.key)).toEqual([
      expect.stringMatching(
        /^audit\/prod\/AWSLogs\/o-exampleorgid\/111111111111\/CloudTrail\/us-east-1\/2024\/12\/31\/111111111111_CloudTrail_us-east-1_20241231T2359Z_[A-Za-z0-9]{16}\.json\.gz$/,
      ),
    ]);
  });

  it('gives each trail its own copy per its selectors', async () => {
    // Arrange
    const everything = DEFAULT_TRAIL;
    const management: TrailConfig = { name: 'management', prefix: 'mgmt' };
    const data: TrailConfig = {
      name: 'data',
      prefix: 'data',
      advancedEventSelectors: [{ FieldSelectors: [{ Field: 'eventCategory', Equals: ['Data'] }] }],
    };
    const env = newEnv([everything, management, data]);
    const texts = [
      record('m1'),
      record('d1', {
        eventCategory: 'Data',
        managementEvent: false,
        eventSource: 's3.amazonaws.com',
        eventName: 'GetObject',
      }),
      record('m2', { eventName: 'GetUser' }),
    ];

    // Act
    const result = await packageBatch(batch(texts, T0), env.deps);

    // Assert
    const byPrefix = new Map(
      result.files.map((f) => [parseLogFileKey(f.key)!.prefix ?? '(none)', f.key]),
    );
    expect([...byPrefix.keys()].sort()).toEqual(['(none)', 'data', 'mgmt']);
    expect(eventIdsIn(env, byPrefix.get('(none)')!)).toEqual(['m1', 'd1', 'm2']);
    expect(eventIdsIn(env, byPrefix.get('mgmt')!)).toEqual(['m1', 'm2']);
    expect(eventIdsIn(env, byPrefix.get('data')!)).toEqual(['d1']);
  });

  it('files Insights records apart, under CloudTrail-Insight in the folder and file name', async () => {
    // Arrange
    const env = newEnv();
    const insight = record('i1', {
      eventType: 'AwsCloudTrailInsight',
      eventCategory: 'Insight',
      managementEvent: false,
      eventTime: '2024-05-01T12:00:00Z',
    });
    const texts = [record('m1'), insight];

    // Act
    const result = await packageBatch(batch(texts, T0), env.deps);

    // Assert
    const byKind = new Map(result.files.map((f) => [parseLogFileKey(f.key)!.kind, f.key]));
    expect([...byKind.keys()].sort()).toEqual(['CloudTrail', 'CloudTrail-Insight']);
    expect(eventIdsIn(env, byKind.get('CloudTrail')!)).toEqual(['m1']);
    expect(eventIdsIn(env, byKind.get('CloudTrail-Insight')!)).toEqual(['i1']);
  });

  it('writes no file for records no trail keeps', async () => {
    // Arrange
    const env = newEnv([{ name: 'management' }]);
    const texts = [record('d1', { eventCategory: 'Data', managementEvent: false })];

    // Act
    const result = await packageBatch(batch(texts, T0), env.deps);

    // Assert
    expect(result.files).toEqual([]);
    expect(env.objects.keys()).toEqual([]);
  });

  it('puts every object in the manifest as delivered, with its hash, event times and count', async () => {
    // Arrange
    const env = newEnv([DEFAULT_TRAIL, { name: 'second' }]);
    const texts = [
      record('e1', { eventTime: '2024-05-01T12:00:03Z' }),
      record('e2', { eventTime: '2024-04-30T23:59:59Z' }),
      record('e3', { eventTime: '2024-05-01T12:30:00Z' }),
      record('e4', { eventTime: '2024-05-01T06:00:00Z', awsRegion: 'eu-west-1' }),
    ];

    // Act
    await packageBatch(batch(texts, T0), env.deps);

    // Assert
    const objectIds = env.objects.keys();
    expect([...env.manifest.rows.keys()].sort()).toEqual(objectIds);
    const rows = objectIds.map((id) => env.manifest.rows.get(id)!);
    expect(rows.map((row) => ({ ...row, deliveredAt: undefined }))).toEqual(
      objectIds.map((id) => {
        const key = id.slice(BUCKET.length + 1);
        const parts = parseLogFileKey(key)!;
        const json = fileText(env, key);
        const times = (JSON.parse(json) as { Records: { eventTime: string }[] }).Records.map(
          (r) => r.eventTime,
        ).sort();
        return {
          bucket: BUCKET,
          key,
          trail: expect.any(String),
          account: parts.account,
          region: parts.region,
          sha256: sha256Hex(Buffer.from(json, 'utf8')),
          oldestEventTime: times[0],
          newestEventTime: times[times.length - 1],
          recordCount: times.length,
          state: 'delivered',
          deliveredAt: undefined,
        };
      }),
    );
    expect(
      rows
        .filter((r) => r.region === 'us-east-1')
        .map((r) => [r.oldestEventTime, r.newestEventTime, r.recordCount]),
    ).toEqual([
      ['2024-04-30T23:59:59Z', '2024-05-01T12:30:00Z', 3],
      ['2024-04-30T23:59:59Z', '2024-05-01T12:30:00Z', 3],
    ]);
    expect(rows.map((r) => r.deliveredAt)).toEqual(rows.map(() => '2031-01-01T00:00:00.000Z'));
    expect(rows.map((r) => r.trail).sort()).toEqual(['opentrail', 'opentrail', 'second', 'second']);
  });

  it('reports the files and counts its metrics', async () => {
    // Arrange
    const env = newEnv();
    const texts = [record('e1'), record('e2', { awsRegion: 'eu-west-1' })];

    // Act
    const result = await packageBatch(batch(texts, T0), env.deps);

    // Assert
    expect(result.files.map((f) => f.records)).toEqual([1, 1]);
    expect(env.metrics.total('LogFilesDelivered')).toBe(2);
    expect(env.metrics.total('RecordsDelivered')).toBe(2);
  });
});

describe('packageBatch: retries', () => {
  const texts = [
    record('e1'),
    record('e2', { awsRegion: 'eu-west-1' }),
    record('e3', { recipientAccountId: '222222222222' }),
  ];
  const trails = [DEFAULT_TRAIL, { name: 'management' }];

  const faults: [string, (env: Env) => void][] = [
    ['markDelivered throws once', (env) => env.manifest.faults.inject('markDelivered')],
    [
      'markDelivered of the second file throws once',
      (env) => {
        let calls = 0;
        env.manifest.faults.inject('markDelivered', () => ++calls === 2);
      },
    ],
    [
      "the second file's put throws once after writing",
      (env) => {
        let calls = 0;
        env.objects.faults.inject('afterPut', () => ++calls === 2);
      },
    ],
    [
      "the second file's put throws once before writing",
      (env) => {
        let calls = 0;
        env.objects.faults.inject('putIfAbsent', () => ++calls === 2);
      },
    ],
    ['the first manifest reservation throws once', (env) => env.manifest.faults.inject('reserve')],
  ];

  it.each(faults)(
    'a batch retried after %s resolves to the same keys and bytes and completes',
    async (_, inject) => {
      // Arrange
      const reference = newEnv(trails);
      const expected = await packageBatch(batch(texts, T0), reference.deps);
      sequence -= texts.length;
      const input = batch(texts, T0);
      const env = newEnv(trails);
      inject(env);

      // Act
      const firstAttempt = packageBatch(input, env.deps);
      await expect(firstAttempt).rejects.toThrow('injected failure');
      const retry = await packageBatch(input, env.deps);

      // Assert
      expect(retry.files).toEqual(expected.files);
      expect(snapshot(env)).toEqual(snapshot(reference));
      expect([...env.manifest.rows.values()].map((r) => r.state)).toEqual(
        expected.files.map(() => 'delivered'),
      );
      expect(env.metrics.total('DuplicatesDropped')).toBe(0);
    },
  );

  it('a batch retried after it completed changes nothing', async () => {
    // Arrange
    const env = newEnv(trails);
    const input = batch(texts, T0);
    const first = await packageBatch(input, env.deps);
    const before = snapshot(env);
    const rowsBefore = [...env.manifest.rows.values()];

    // Act
    const second = await packageBatch(input, env.deps);

    // Assert
    expect(second.files).toEqual(first.files);
    expect(snapshot(env)).toEqual(before);
    expect([...env.manifest.rows.values()]).toEqual(rowsBefore);
  });

  it.each<[string, string[]]>([
    ['all of its records', ['e1', 'e2']],
    ['one of its records', ['e1']],
  ])(
    'a resend of %s while the batch retries completes its written object instead of writing a second copy',
    async (_, resent) => {
      // Arrange: attempt 1 writes its object and dies before marking it delivered
      const env = newEnv();
      const first = batch([record('e1'), record('e2')], T0);
      env.manifest.faults.inject('markDelivered');
      await expect(packageBatch(first, env.deps)).rejects.toThrow('injected failure');
      const written = snapshot(env);
      // ...a producer resends events of it (new stream records)
      const resend = await packageBatch(
        batch(
          resent.map((id) => record(id)),
          T0 + HOUR,
        ),
        env.deps,
      );

      // Act: the first batch's retry
      const retry = packageBatch(first, env.deps);

      // Assert
      await expect(retry).resolves.toMatchObject({
        files: [expect.objectContaining({ records: 2 })],
      });
      expect(resend.files).toEqual([]);
      expect(snapshot(env)).toEqual(written);
      expect(storedCounts(env)).toEqual(
        new Map([
          ['e1', 1],
          ['e2', 1],
        ]),
      );
      expect([...env.manifest.rows.values()].map((r) => r.state)).toEqual(['delivered']);
    },
  );
});

describe('packageBatch: deduplication', () => {
  it('a resend of identical events within the window is stored once and counted', async () => {
    // Arrange
    const env = newEnv();
    await packageBatch(batch([record('e1'), record('e2')], T0), env.deps);

    // Act
    const result = await packageBatch(
      batch([record('e1'), record('e3'), record('e2')], T0 + WINDOW_MS - 10),
      env.deps,
    );

    // Assert
    expect(result.duplicates).toBe(2);
    expect(env.metrics.total('DuplicatesDropped')).toBe(2);
    expect(allStoredEventIds(env).sort()).toEqual(['e1', 'e2', 'e3']);
  });

  it('a resend of only identical events writes no file', async () => {
    // Arrange
    const env = newEnv();
    await packageBatch(batch([record('e1')], T0), env.deps);

    // Act
    const result = await packageBatch(batch([record('e1')], T0 + HOUR), env.deps);

    // Assert
    expect(result.files).toEqual([]);
    expect(env.objects.keys()).toHaveLength(1);
  });

  it('the same resend after the window is stored again', async () => {
    // Arrange
    const env = newEnv();
    await packageBatch(batch([record('e1')], T0), env.deps);

    // Act
    const result = await packageBatch(batch([record('e1')], T0 + WINDOW_MS + 1), env.deps);

    // Assert
    expect(result.duplicates).toBe(0);
    expect(allStoredEventIds(env)).toEqual(['e1', 'e1']);
    expect(env.metrics.total('DuplicatesDropped')).toBe(0);
  });

  it('a forged record reusing a stored eventID with other content is kept beside it and counted', async () => {
    // Arrange
    const env = newEnv();
    const real = record('e1', { eventName: 'DeleteTrail' });
    const forged = record('e1', { eventName: 'ListUsers' });
    const first = await packageBatch(batch([real], T0), env.deps);

    // Act
    const result = await packageBatch(batch([forged], T0 + HOUR), env.deps);

    // Assert
    expect(result.conflicts).toBe(1);
    expect(env.metrics.total('DedupConflicts')).toBe(1);
    expect(fileText(env, first.files[0]!.key)).toBe(`{"Records":[${real}]}`);
    expect(fileText(env, result.files[0]!.key)).toBe(`{"Records":[${forged}]}`);
  });

  it('a forged record does not make a later resend of the real record new again', async () => {
    // Arrange
    const env = newEnv();
    const real = record('e1', { eventName: 'DeleteTrail' });
    await packageBatch(batch([real], T0), env.deps);
    await packageBatch(batch([record('e1', { eventName: 'Forged' })], T0 + HOUR), env.deps);

    // Act
    const result = await packageBatch(batch([real], T0 + 2 * HOUR), env.deps);

    // Assert
    expect(result.duplicates).toBe(1);
    expect(allStoredEventIds(env)).toEqual(['e1', 'e1']);
  });

  it('two identical copies inside one batch are stored once', async () => {
    // Arrange
    const env = newEnv();
    const text = record('e1');

    // Act
    const result = await packageBatch(batch([text, record('e2'), text], T0), env.deps);

    // Assert
    expect(result.duplicates).toBe(1);
    expect(eventIdsIn(env, result.files[0]!.key)).toEqual(['e1', 'e2']);
  });

  it('two different contents for one eventID inside one batch are both kept and counted as a conflict', async () => {
    // Arrange
    const env = newEnv();

    // Act
    const result = await packageBatch(
      batch([record('e1', { n: 1 }), record('e1', { n: 2 })], T0),
      env.deps,
    );

    // Assert
    expect(result.conflicts).toBe(1);
    expect(eventIdsIn(env, result.files[0]!.key)).toEqual(['e1', 'e1']);
  });

  const abandoned: [string, (env: Env) => void][] = [
    ['failed before writing its object', (env) => env.objects.faults.inject('putIfAbsent')],
    [
      'died after writing its object, before marking it delivered',
      (env) => env.manifest.faults.inject('markDelivered'),
    ],
  ];

  it.each(abandoned)(
    'a batch that %s and was given up is completed by its redrive: every event stored once, every object delivered',
    async (_, inject) => {
      // Arrange
      const env = newEnv();
      inject(env);
      const given = batch([record('e1'), record('e2')], T0);
      await expect(packageBatch(given, env.deps)).rejects.toThrow('injected failure');

      // Act: the redrive replays the original batch (same records, same arrival times)
      const redrive = await packageBatch(given, env.deps);

      // Assert
      expect(redrive.duplicates).toBe(0);
      expect(storedCounts(env)).toEqual(
        new Map([
          ['e1', 1],
          ['e2', 1],
        ]),
      );
      expect(objectsOutsideDelivered(env)).toEqual([]);
    },
  );

  it.each(abandoned)(
    'a batch that %s, then a resend of its records, then its redrive: every event stored once, every object delivered',
    async (_, inject) => {
      // Arrange
      const env = newEnv();
      inject(env);
      const given = batch([record('e1'), record('e2')], T0);
      await expect(packageBatch(given, env.deps)).rejects.toThrow('injected failure');
      await packageBatch(batch([record('e1'), record('e2')], T0 + HOUR), env.deps);

      // Act
      await packageBatch(given, env.deps);

      // Assert
      expect(storedCounts(env)).toEqual(
        new Map([
          ['e1', 1],
          ['e2', 1],
        ]),
      );
      expect(objectsOutsideDelivered(env)).toEqual([]);
    },
  );

  it('a concurrent change of a dedup claim fails the batch so it is retried', async () => {
    // Arrange
    const env = newEnv();
    const racing: DedupItem = { eventId: 'e1', claims: [], ver: 0 };
    const original = env.dedup.getMany.bind(env.dedup);
    env.dedup.getMany = async (ids) => {
      const found = await original(ids);
      await env.dedup.put(racing, 0, 0); // another packager writes between our read and our write
      return found;
    };

    // Act
    const attempt = packageBatch(batch([record('e1')], T0), env.deps);

    // Assert
    await expect(attempt).rejects.toBeInstanceOf(DedupRaceError);
    expect(env.objects.keys()).toEqual([]);
  });
});

describe('packageBatch: exactly once per trail', () => {
  const twoTrails: TrailConfig[] = [
    { name: 'first', prefix: 'one' },
    { name: 'second', prefix: 'two' },
  ];
  const ids = ['e1', 'e2', 'e3'];
  const once = new Map(ids.map((id) => [id, 1]));
  /** Fails every write under the second trail's prefix `times` times. */
  const failSecond = (env: Env, times: number): void => {
    for (let i = 0; i < times; i++)
      env.objects.faults.inject('putIfAbsent', (key) => String(key).startsWith('two/'));
  };

  it("the second trail's writes fail until the batch is given up, then its redrive: each trail holds each event once", async () => {
    // Arrange
    const env = newEnv(twoTrails);
    failSecond(env, 3);
    const given = batch(
      ids.map((id) => record(id)),
      T0,
    );
    for (let attempt = 0; attempt < 3; attempt++)
      await expect(packageBatch(given, env.deps)).rejects.toThrow('injected failure');

    // Act
    await packageBatch(given, env.deps);

    // Assert
    expect(storedCounts(env, 'one')).toEqual(once);
    expect(storedCounts(env, 'two')).toEqual(once);
    expect(objectsOutsideDelivered(env)).toEqual([]);
    expect([...env.manifest.rows.values()].filter((r) => r.state !== 'delivered')).toEqual([]);
  });

  it('a resend while the second trail is failing is dropped for the trail that holds it, and the redrive completes the other', async () => {
    // Arrange
    const env = newEnv(twoTrails);
    failSecond(env, 1);
    const given = batch(
      ids.map((id) => record(id)),
      T0,
    );
    await expect(packageBatch(given, env.deps)).rejects.toThrow('injected failure');

    // Act
    const resend = await packageBatch(
      batch(
        ids.map((id) => record(id)),
        T0 + HOUR,
      ),
      env.deps,
    );
    await packageBatch(given, env.deps);

    // Assert
    expect(resend.duplicates).toBe(6);
    expect(storedCounts(env, 'one')).toEqual(once);
    expect(storedCounts(env, 'two')).toEqual(once);
    expect(objectsOutsideDelivered(env)).toEqual([]);
  });

  it('a resend of events one trail delivered and another never saw is kept for that other trail only', async () => {
    // Arrange: the second trail starts selecting writes only after the first delivery
    const env = newEnv([{ name: 'first', prefix: 'one' }]);
    await packageBatch(batch([record('e1')], T0), env.deps);
    const deps: PackagerDeps = {
      ...env.deps,
      trails: twoTrails,
    };

    // Act
    const result = await packageBatch(batch([record('e1')], T0 + HOUR), deps);

    // Assert
    expect(result.duplicates).toBe(1);
    expect(storedCounts(env, 'one')).toEqual(new Map([['e1', 1]]));
    expect(storedCounts(env, 'two')).toEqual(new Map([['e1', 1]]));
  });

  it.each(['failed before writing its objects', 'wrote its objects and died before marking them'])(
    'a batch that %s, retried with other boundaries (bisected), leaves no second copy',
    async (how) => {
      // Arrange
      const env = newEnv(twoTrails);
      if (how.startsWith('failed')) failSecond(env, 1);
      else {
        env.manifest.faults.inject('markDelivered');
      }
      const whole = batch(
        ids.map((id) => record(id)),
        T0,
      );
      await expect(packageBatch(whole, env.deps)).rejects.toThrow('injected failure');

      // Act: the event-source mapping bisects the batch; each half is the same stream records
      await packageBatch({ shardId: SHARD, records: whole.records.slice(0, 1) }, env.deps);
      await packageBatch({ shardId: SHARD, records: whole.records.slice(1) }, env.deps);

      // Assert
      expect(storedCounts(env, 'one')).toEqual(once);
      expect(storedCounts(env, 'two')).toEqual(once);
      expect(objectsOutsideDelivered(env)).toEqual([]);
    },
  );

  it('21 forged contents arrive while the real batch retries, then a resend: the real event is stored once', async () => {
    // Arrange: the real batch writes its object and dies before marking it delivered
    const env = newEnv();
    const real = record('e1', { eventName: 'DeleteTrail' });
    const realBatch = batch([real], T0);
    env.manifest.faults.inject('markDelivered');
    await expect(packageBatch(realBatch, env.deps)).rejects.toThrow('injected failure');
    for (let i = 0; i < 21; i++)
      await packageBatch(batch([record('e1', { forged: i })], T0 + i + 1), env.deps);

    // Act
    const early = await packageBatch(batch([real], T0 + HOUR), env.deps);
    await packageBatch(realBatch, env.deps);
    const late = await packageBatch(batch([real], T0 + 2 * HOUR), env.deps);

    // Assert
    expect([early.files, late.files]).toEqual([[], []]);
    const realCopies = env.objects
      .keys()
      .flatMap((id) => fileText(env, id.slice(BUCKET.length + 1)).split(real).length - 1);
    expect(realCopies.reduce((a, b) => a + b, 0)).toBe(1);
    expect(storedCounts(env)).toEqual(new Map([['e1', 22]]));
    expect(objectsOutsideDelivered(env)).toEqual([]);
  });

  it('a flood of forged contents keeps the first delivered claim and at most MAX_CLAIMS_PER_TRAIL per trail', async () => {
    // Arrange
    const env = newEnv();
    const real = record('e1', { eventName: 'DeleteTrail' });
    await packageBatch(batch([real], T0), env.deps);

    // Act: 40 forged contents, then 500 in one batch
    for (let i = 0; i < 40; i++)
      await packageBatch(batch([record('e1', { forged: i })], T0 + i + 1), env.deps);
    const flood = await packageBatch(
      batch(
        Array.from({ length: 500 }, (_, i) => record('e1', { flood: i })),
        T0 + 100,
      ),
      env.deps,
    );
    const resend = await packageBatch(batch([real], T0 + HOUR), env.deps);

    // Assert
    const item = env.dedup.items.get('e1')!;
    expect(item.claims.length).toBeLessThanOrEqual(MAX_CLAIMS_PER_TRAIL);
    expect(dedupItemBytes(item)).toBeLessThanOrEqual(DYNAMODB_ITEM_MAX_BYTES);
    expect(resend.duplicates).toBe(1);
    expect(flood.files[0]!.records).toBe(500);
    expect(env.metrics.total('DedupClaimsSkipped')).toBeGreaterThan(0);
  });

  it('a forged content that came first and 25 more within the window cannot evict the real claim', async () => {
    // Arrange
    const env = newEnv();
    const real = record('e1', { eventName: 'DeleteTrail' });
    await packageBatch(batch([record('e1', { forged: 'first' })], T0), env.deps);
    await packageBatch(batch([real], T0 + 1), env.deps);
    for (let i = 0; i < 25; i++)
      await packageBatch(batch([record('e1', { forged: i })], T0 + 10 + i), env.deps);

    // Act
    const resend = await packageBatch(batch([real], T0 + HOUR), env.deps);

    // Assert
    expect(resend.files).toEqual([]);
    const realCopies = env.objects
      .keys()
      .map((id) => fileText(env, id.slice(BUCKET.length + 1)).split(real).length - 1);
    expect(realCopies.reduce((a, b) => a + b, 0)).toBe(1);
    expect(env.dedup.items.get('e1')!.claims.length).toBe(MAX_CLAIMS_PER_TRAIL);
  });

  it('past the window, new contents evict old delivered claims, never the first delivered one', async () => {
    // Arrange
    const env = newEnv();
    const real = record('e1', { eventName: 'DeleteTrail' });
    await packageBatch(batch([real], T0), env.deps);
    for (let i = 0; i < 19; i++)
      await packageBatch(batch([record('e1', { old: i })], T0 + 1 + i), env.deps);

    // Act
    for (let i = 0; i < 5; i++)
      await packageBatch(batch([record('e1', { late: i })], T0 + WINDOW_MS + HOUR + i), env.deps);
    const resend = await packageBatch(batch([real], T0 + 10), env.deps);

    // Assert
    const claims = env.dedup.items.get('e1')!.claims;
    expect(claims.length).toBe(MAX_CLAIMS_PER_TRAIL);
    expect(env.metrics.total('DedupClaimsSkipped')).toBe(0);
    expect(resend.files).toEqual([]);
  });

  it('an item that would pass the 400 KB limit in UTF-8 bytes is not written; the copy is kept unclaimed', () => {
    // Arrange: 20 claims whose keys are 1,000 three-byte characters each (3,000 UTF-8 bytes)
    const wide = '\u20ac'.repeat(1000);
    const claims = Array.from({ length: 19 * 8 }, (_, i) => ({
      hash: String(i).padStart(64, '0'),
      trail: `t${i % 8}`,
      record: `${SHARD}:${i}`,
      batch: `${SHARD}:${i}:${i}`,
      arrivalMs: T0,
      key: `${BUCKET}/${wide}${i}`,
    }));
    const stored: DedupItem = { eventId: 'e1', claims, ver: 3 };

    // Act
    const decision = decide(
      stored,
      {
        eventId: 'e1',
        hash: 'f'.repeat(64),
        trail: 't0',
        record: `${SHARD}:999`,
        batch: 'b',
        arrivalMs: T0,
        key: `${BUCKET}/${wide}x`,
      },
      WINDOW_MS,
      () => 'delivered',
    );

    // Assert
    expect(dedupItemBytes(stored)).toBeGreaterThan(400_000);
    expect(decision).toEqual({ keep: true, conflict: true, unclaimed: true });
  });
});

describe('packageBatch: refusals', () => {
  it.each<[string, string]>([
    ['data that is not JSON', '{"eventID":'],
    ['data that is a JSON array', '[]'],
    [
      'a record without awsRegion',
      JSON.stringify({
        eventID: 'e9',
        eventTime: '2024-05-01T12:00:00Z',
        recipientAccountId: '111111111111',
      }),
    ],
    [
      'a record without eventID',
      JSON.stringify({
        eventTime: '2024-05-01T12:00:00Z',
        awsRegion: 'us-east-1',
        recipientAccountId: '111111111111',
      }),
    ],
    ['a record whose awsRegion holds a slash', record('e9', { awsRegion: '../../etc' })],
    [
      'a record whose recipientAccountId holds a slash',
      record('e9', { recipientAccountId: '1/2' }),
    ],
  ])(
    'a batch with %s throws UnprocessableRecordError naming the stream record and writes nothing',
    async (_, data) => {
      // Arrange
      const env = newEnv();
      const input = rawBatch([record('ok'), data]);
      const badSequence = input.records[1]!.sequenceNumber;

      // Act
      const attempt = packageBatch(input, env.deps);

      // Assert
      await expect(attempt).rejects.toThrow(UnprocessableRecordError);
      await expect(attempt).rejects.toThrow(badSequence);
      expect(env.objects.keys()).toEqual([]);
    },
  );

  it('an existing object with other content under the same key fails the batch and is not overwritten', async () => {
    // Arrange
    const texts = [record('e1')];
    const reference = newEnv();
    const expected = await packageBatch(batch(texts, T0), reference.deps);
    sequence -= texts.length;
    const env = newEnv();
    const squatter = gzipSync(Buffer.from('{"Records":[{"eventID":"someone else"}]}'));
    env.objects.objects.set(`${BUCKET}/${expected.files[0]!.key}`, squatter);

    // Act
    const attempt = packageBatch(batch(texts, T0), env.deps);

    // Assert
    await expect(attempt).rejects.toThrow('never overwritten');
    expect(
      Buffer.from(env.objects.objects.get(`${BUCKET}/${expected.files[0]!.key}`)!).equals(squatter),
    ).toBe(true);
    expect([...env.manifest.rows.values()].map((r) => r.state)).toEqual(['pending']);
  });

  it('an empty batch writes nothing', async () => {
    // Arrange
    const env = newEnv();

    // Act
    const result = await packageBatch({ shardId: SHARD, records: [] }, env.deps);

    // Assert
    expect(result).toEqual({ files: [], duplicates: 0, conflicts: 0 });
    expect(env.objects.puts).toBe(0);
  });
});
