import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import {
  buildDigest,
  dueEnds,
  makeReservation,
  newestDigestKey,
  nextEnd,
  nextStart,
  periodEnd,
  periodStart,
  validatedTrails,
  type DigestPlace,
} from '../../lambda/core/digest-chain';
import { serializeDigest } from '../../lambda/core/digest-format';
import {
  createListPublicKeys,
  FAR_FUTURE_EPOCH_SECONDS,
  keyWindows,
  type PublicKeySource,
} from '../../lambda/core/public-keys';
import type { DigestCandidate } from '../../lambda/core/ports';
import { ApiError } from '../../lambda/core/api-error';

const HOUR = 3_600_000;
const T = Date.UTC(2026, 2, 1, 10, 0, 0);

describe('period math', () => {
  it.each([
    ['on a boundary', T, HOUR, T],
    ['inside a period', T + 1234, HOUR, T],
    ['just before the next', T + HOUR - 1, HOUR, T],
    ['10 s periods', T + 25_000, 10_000, T + 20_000],
  ])('periodStart %s', (_what, ms, period, expected) => {
    expect(periodStart(ms, period)).toBe(expected);
  });

  it.each([
    ['an aligned start', T, T + HOUR],
    ['an early-closed start (next boundary)', T + 1000, T + HOUR],
  ])('periodEnd of %s', (_what, start, expected) => {
    expect(periodEnd(start, HOUR)).toBe(expected);
  });

  it.each([
    ['no head: the period holding the first file', undefined, T + 100, T],
    ['a head: its end', { endMs: T + 5000 }, T + 100, T + 5000],
  ])('nextStart with %s', (_what, head, firstSeenMs, expected) => {
    const full = head && { ...head, bucket: 'b', key: 'k', sha256: 'h', signature: 's' };
    expect(nextStart(full, { firstSeenMs }, HOUR)).toBe(expected);
  });

  it.each([
    ['a period still open', T, T + HOUR - 1, undefined, undefined],
    ['a period that just closed', T, T + HOUR, undefined, T + HOUR],
    ['an open period closed early', T, T + 600_000, T + 600_000, T + 600_000],
    ['a close time at the start (nothing to close)', T, T + 10, T, undefined],
    ['a due period wins over a close time', T, T + HOUR + 5, T + HOUR + 5, T + HOUR],
  ])('nextEnd: %s', (_what, start, now, closeAt, expected) => {
    expect(nextEnd(start, now, HOUR, closeAt)).toBe(expected);
  });

  it('dueEnds after an outage walks every missed period in order, touching, then the early close', () => {
    expect(dueEnds(T, T + 3 * HOUR + 20_000, HOUR, T + 3 * HOUR + 20_000)).toEqual([
      T + HOUR,
      T + 2 * HOUR,
      T + 3 * HOUR,
      T + 3 * HOUR + 20_000,
    ]);
  });

  it('after an early close, the next period runs to the next aligned boundary', () => {
    expect(dueEnds(T + 20_000, T + HOUR, HOUR)).toEqual([T + HOUR]);
  });
});

const PLACE: DigestPlace = {
  trail: { name: 'audit', prefix: 'p' },
  account: '111122223333',
  region: 'eu-west-1',
  homeRegion: 'us-east-1',
  bucket: 'logs',
};

const file = (name: string, oldest: string, newest: string): DigestCandidate => ({
  bucket: 'logs',
  key: `p/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/03/01/${name}`,
  sha256: 'a'.repeat(64),
  oldestEventTime: oldest,
  newestEventTime: newest,
});

describe('reservations and digests', () => {
  const b = file('b', '2026-03-01T09:00:00Z', '2026-03-01T09:59:00Z');
  const a = file('a', '2026-03-01T08:00:00Z', '2026-03-01T09:30:00Z');
  const previous = {
    endMs: T,
    bucket: 'logs',
    key: 'prev',
    sha256: 'c'.repeat(64),
    signature: 'ab',
  };

  it('a reservation names the digest key by its end and sorts and dedups candidates', () => {
    const r = makeReservation(PLACE, T, T + HOUR, previous, [b, a, b]);
    expect(r.key).toBe(
      'p/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/03/01/111122223333_CloudTrail-Digest_eu-west-1_audit_us-east-1_20260301T110000Z.json.gz',
    );
    expect(r.stream).toBe('audit#111122223333#eu-west-1');
    expect(r.candidates.map((c) => c.key)).toEqual([a.key, b.key]);
  });

  it('the digest lists only the claimed candidates, with their event-time bounds and the chain link', () => {
    const r = makeReservation(PLACE, T, T + HOUR, previous, [a, b]);
    const d = buildDigest(r, '111122223333', 'f'.repeat(32), new Set([`logs/${a.key}`]));
    expect(d).toMatchObject({
      awsAccountId: '111122223333',
      digestStartTime: '2026-03-01T10:00:00Z',
      digestEndTime: '2026-03-01T11:00:00Z',
      digestS3Bucket: 'logs',
      digestS3Object: r.key,
      newestEventTime: '2026-03-01T09:30:00Z',
      oldestEventTime: '2026-03-01T08:00:00Z',
      previousDigestS3Bucket: 'logs',
      previousDigestS3Object: 'prev',
      previousDigestHashValue: 'c'.repeat(64),
      previousDigestHashAlgorithm: 'SHA-256',
      previousDigestSignature: 'ab',
    });
    expect(d.logFiles.map((f) => f.s3Object)).toEqual([a.key]);
  });

  it('an empty first digest has null event times and five null previousDigest fields', () => {
    const d = buildDigest(
      makeReservation(PLACE, T, T + HOUR, null, []),
      '111122223333',
      'f'.repeat(32),
      new Set(),
    );
    expect(d).toMatchObject({
      newestEventTime: null,
      oldestEventTime: null,
      previousDigestS3Bucket: null,
      previousDigestS3Object: null,
      previousDigestHashValue: null,
      previousDigestHashAlgorithm: null,
      previousDigestSignature: null,
      logFiles: [],
    });
  });

  it('the same reservation and claims give the same bytes', () => {
    const r = makeReservation(PLACE, T, T + HOUR, previous, [b, a]);
    const claims = new Set([`logs/${a.key}`, `logs/${b.key}`]);
    const once = serializeDigest(buildDigest(r, '111122223333', 'f'.repeat(32), claims));
    const twice = serializeDigest(
      buildDigest(
        makeReservation(PLACE, T, T + HOUR, previous, [a, b]),
        '111122223333',
        'f'.repeat(32),
        new Set(claims),
      ),
    );
    expect(once.equals(twice)).toBe(true);
  });

  it('validatedTrails keeps only trails with logFileValidation true', () => {
    expect(
      validatedTrails([
        { name: 'a', logFileValidation: true },
        { name: 'b' },
        { name: 'c', logFileValidation: false },
      ]).map((t) => t.name),
    ).toEqual(['a']);
  });

  it('newestDigestKey picks the latest digest of this trail and home region only', () => {
    const folder = 'p/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/';
    const key = (day: string, trail: string, home: string, stamp: string) =>
      `${folder}2026/03/${day}/111122223333_CloudTrail-Digest_eu-west-1_${trail}_${home}_202603${day}T${stamp}Z.json.gz`;
    const keys = [
      key('01', 'audit', 'us-east-1', '100000'),
      key('02', 'audit', 'us-east-1', '090000'),
      key('02', 'audit', 'us-east-1', '080000'),
      key('03', 'other', 'us-east-1', '100000'),
      key('03', 'audit', 'eu-west-1', '100000'),
      'p/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/notes.txt',
    ];
    expect(newestDigestKey(keys, PLACE)).toBe(keys[1]);
    expect(newestDigestKey([], PLACE)).toBeUndefined();
  });
});

describe('ListPublicKeys', () => {
  const pair = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
  const oldKey = pair();
  const newKey = pair();
  const source = (
    keyId: string,
    key: ReturnType<typeof pair>,
    validFromMs: number,
    validUntilMs?: number,
  ): PublicKeySource => ({
    keyId,
    validFromMs,
    ...(validUntilMs === undefined ? {} : { validUntilMs }),
    publicKeySpki: () => Promise.resolve(key.publicKey.export({ type: 'spki', format: 'der' })),
  });
  const keys = [source('old', oldKey, T - 10 * HOUR, T), source('new', newKey, T)];
  const list = createListPublicKeys(keys, () => T + HOUR);

  it.each([
    ['no range: the key valid now', {}, ['new']],
    [
      'a range across the change: both',
      { StartTime: (T - HOUR) / 1000, EndTime: (T + HOUR) / 1000 },
      ['new', 'old'],
    ],
    [
      'a range before the change: the old key',
      { StartTime: (T - 5 * HOUR) / 1000, EndTime: (T - 4 * HOUR) / 1000 },
      ['old'],
    ],
    [
      'ISO-8601 times',
      {
        StartTime: new Date(T - 5 * HOUR).toISOString(),
        EndTime: new Date(T - 4 * HOUR).toISOString(),
      },
      ['old'],
    ],
    [
      'a range before any key',
      { StartTime: (T - 20 * HOUR) / 1000, EndTime: (T - 19 * HOUR) / 1000 },
      [],
    ],
  ])('%s', async (_what, request, expected) => {
    const response = await list(request);
    const fingerprints = response.PublicKeyList.map((k) => k.Fingerprint);
    expect(fingerprints).toHaveLength(expected.length);
    const byId = { old: oldKey, new: newKey } as const;
    for (const [i, id] of expected.entries()) {
      const entry = response.PublicKeyList[i]!;
      const pkcs1 = byId[id as 'old' | 'new'].publicKey.export({ type: 'pkcs1', format: 'der' });
      expect(entry.Value).toBe(pkcs1.toString('base64'));
    }
  });

  it('serves PKCS#1 keys that verify signatures, epoch-second windows and a far-future end for the current key', async () => {
    const response = await list({ StartTime: 0, EndTime: (T + HOUR) / 1000 });
    const current = response.PublicKeyList[0]!;
    expect(current.ValidityStartTime).toBe(T / 1000);
    expect(current.ValidityEndTime).toBe(FAR_FUTURE_EPOCH_SECONDS);
    expect(response.PublicKeyList[1]!.ValidityEndTime).toBe(T / 1000);
    expect(current.Fingerprint).toMatch(/^[0-9a-f]{32}$/);
    const signature = sign('sha256', Buffer.from('x'), newKey.privateKey);
    const publicKey = createPublicKey({
      key: Buffer.from(current.Value, 'base64'),
      format: 'der',
      type: 'pkcs1',
    });
    expect(verify('sha256', Buffer.from('x'), publicKey, signature)).toBe(true);
  });

  it.each([
    ['StartTime after EndTime', { StartTime: 20, EndTime: 10 }, 'InvalidTimeRangeException'],
    ['a StartTime that is no time', { StartTime: 'yesterday' }, 'InvalidTimeRangeException'],
    ['a NextToken', { NextToken: 'x' }, 'InvalidTokenException'],
  ])('refuses %s', async (_what, request, code) => {
    await expect(list(request)).rejects.toBeInstanceOf(ApiError);
    await expect(list(request)).rejects.toMatchObject({ code });
  });

  it.each([
    [
      'two current keys',
      [
        { keyId: 'a', validFrom: '2026-01-01T00:00:00Z' },
        { keyId: 'b', validFrom: '2026-02-01T00:00:00Z' },
      ],
      /exactly one/,
    ],
    [
      'a window ending before it starts',
      [
        { keyId: 'a', validFrom: '2026-02-01T00:00:00Z', validUntil: '2026-01-01T00:00:00Z' },
        { keyId: 'b', validFrom: '2026-02-01T00:00:00Z' },
      ],
      /validUntil/,
    ],
  ])('keyWindows refuses %s', (_what, configs, message) => {
    expect(() => keyWindows(configs)).toThrow(message);
  });
});
