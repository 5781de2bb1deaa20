/**
 * The pure digest-chain rules (docs/formats.md#digest-files), one behaviour per row: which
 * period a digest covers, when it is due, which log files and chain link it names, and which
 * keys of a shared folder belong to a trail.
 */
import type { TrailConfig } from '../../lambda/core/config';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildDigest,
  CLOSE_DIGEST_PERIOD_TARGET,
  digestKeyFor,
  digestKeysOf,
  dueEnds,
  makeReservation,
  newestDigestKey,
  nextEnd,
  nextStart,
  periodEnd,
  periodStart,
  streamId,
  validatedTrails,
  type DigestPlace,
} from '../../lambda/core/digest-chain';
import type { DigestCandidate, DigestChainHead } from '../../lambda/core/ports';

const HOUR = 3600_000;
/** 2024-05-01T12:00:00Z, on the hour. */
const T = Date.UTC(2024, 4, 1, 12);

const PLACE: DigestPlace = {
  trail: { name: 'audit.trail-1' },
  account: '111122223333',
  region: 'eu-west-1',
  homeRegion: 'us-east-1',
  bucket: 'log-bucket',
};

function candidate(bucket: string, key: string, oldest: string, newest: string): DigestCandidate {
  return {
    bucket,
    key,
    sha256: `sha-${bucket}-${key}`,
    oldestEventTime: oldest,
    newestEventTime: newest,
  };
}

describe('digest periods', () => {
  it.each<[string, number, number]>([
    ['on the boundary', T, T],
    ['inside the hour', T + 59 * 60_000, T],
    ['the last millisecond of the hour', T + HOUR - 1, T],
  ])('periodStart %s is the hour it lies in', (_name, ms, start) => {
    expect(periodStart(ms, HOUR)).toBe(start);
    expect(periodEnd(ms, HOUR)).toBe(start + HOUR);
  });

  it('a chain starts at the previous digest end, else at the period of the first record', () => {
    const head: DigestChainHead = {
      endMs: T + 1234_000,
      bucket: 'b',
      key: 'k',
      sha256: 's',
      signature: 'g',
    };
    expect(nextStart(head, { firstSeenMs: T - 5 * HOUR }, HOUR)).toBe(T + 1234_000);
    expect(nextStart(undefined, { firstSeenMs: T + 17 * 60_000 }, HOUR)).toBe(T);
  });

  it.each<[string, number, number | undefined, number | undefined]>([
    ['a period that closed exactly now is due', T + HOUR, undefined, T + HOUR],
    ['an open period is not due', T + HOUR - 1, undefined, undefined],
    ['closing early ends the open period at closeAt', T + 600_000, T + 300_000, T + 300_000],
    ['closing at the start itself closes nothing', T + 600_000, T, undefined],
    ['closing before the start closes nothing', T + 600_000, T - 1000, undefined],
    [
      'closing at the regular end does not shorten the open period',
      T + 600_000,
      T + HOUR,
      undefined,
    ],
    [
      'a closed period ends on its boundary whatever closeAt says',
      T + 2 * HOUR,
      T + 300_000,
      T + HOUR,
    ],
  ])('nextEnd: %s', (_name, nowMs, closeAtMs, end) => {
    expect(nextEnd(T, nowMs, HOUR, closeAtMs)).toBe(end);
  });

  it('after an early close the next period runs to the next aligned boundary', () => {
    expect(nextEnd(T + 300_000, T + HOUR, HOUR)).toBe(T + HOUR);
  });

  it.each<[string, number, number, number | undefined, number[]]>([
    ['nothing closed yet', T, T + HOUR - 1, undefined, []],
    [
      'three closed periods, in order',
      T,
      T + 3 * HOUR + 5,
      undefined,
      [T + HOUR, T + 2 * HOUR, T + 3 * HOUR],
    ],
    [
      'closed periods then the early close',
      T,
      T + 2 * HOUR + 600_000,
      T + 2 * HOUR + 60_000,
      [T + HOUR, T + 2 * HOUR, T + 2 * HOUR + 60_000],
    ],
    ['from an early close, the rest of its hour', T + 60_000, T + HOUR, undefined, [T + HOUR]],
  ])('dueEnds: %s', (_name, start, now, closeAt, ends) => {
    expect(dueEnds(start, now, HOUR, closeAt)).toEqual(ends);
  });
});

describe('reservations and digests', () => {
  // listed last (bucket order) but holding the oldest event: the bounds come from sorting times
  const b2 = candidate(
    'b-bucket',
    'AWSLogs/x/a.json.gz',
    '2024-05-01T10:50:00Z',
    '2024-05-01T11:20:00Z',
  );
  const a2 = candidate(
    'a-bucket',
    'AWSLogs/x/z.json.gz',
    '2024-05-01T11:05:00Z',
    '2024-05-01T11:59:00Z',
  );
  const a1 = candidate(
    'a-bucket',
    'AWSLogs/x/m.json.gz',
    '2024-05-01T11:00:01Z',
    '2024-05-01T11:30:00Z',
  );
  const previous: DigestChainHead = {
    endMs: T,
    bucket: 'digest-bucket',
    key: 'prev/key.json.gz',
    sha256: 'ab'.repeat(32),
    signature: 'cd'.repeat(64),
  };

  it('names the stream, its period, its key, the previous head, and each candidate once sorted by bucket then key', () => {
    const reservation = makeReservation(PLACE, T, T + HOUR, previous, [b2, a2, a1, { ...a1 }]);
    expect(reservation).toEqual({
      stream: 'audit.trail-1#111122223333#eu-west-1',
      startMs: T,
      endMs: T + HOUR,
      bucket: 'log-bucket',
      key: digestKeyFor(PLACE, T + HOUR),
      previous,
      candidates: [a1, a2, b2],
    });
    expect(streamId({ trail: 't', account: 'a', region: 'r' })).toBe('t#a#r');
    expect(reservation.key).toBe(
      'AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2024/05/01/111122223333_CloudTrail-Digest_eu-west-1_audit.trail-1_us-east-1_20240501T130000Z.json.gz',
    );
  });

  it('a digest lists only the claimed candidates, with the oldest and newest event time among them, and links to the previous digest', () => {
    const reservation = makeReservation(PLACE, T, T + HOUR, previous, [b2, a2, a1]);
    const digest = buildDigest(
      reservation,
      '111122223333',
      'f'.repeat(32),
      new Set([`${a1.bucket}/${a1.key}`, `${b2.bucket}/${b2.key}`]),
    );
    expect(digest).toEqual({
      awsAccountId: '111122223333',
      digestStartTime: '2024-05-01T12:00:00Z',
      digestEndTime: '2024-05-01T13:00:00Z',
      digestS3Bucket: 'log-bucket',
      digestS3Object: reservation.key,
      digestPublicKeyFingerprint: 'f'.repeat(32),
      digestSignatureAlgorithm: 'SHA256withRSA',
      newestEventTime: '2024-05-01T11:30:00Z',
      oldestEventTime: '2024-05-01T10:50:00Z',
      previousDigestS3Bucket: 'digest-bucket',
      previousDigestS3Object: 'prev/key.json.gz',
      previousDigestHashValue: 'ab'.repeat(32),
      previousDigestHashAlgorithm: 'SHA-256',
      previousDigestSignature: 'cd'.repeat(64),
      logFiles: [a1, b2].map((f) => ({
        s3Bucket: f.bucket,
        s3Object: f.key,
        hashValue: f.sha256,
        hashAlgorithm: 'SHA-256',
        newestEventTime: f.newestEventTime,
        oldestEventTime: f.oldestEventTime,
      })),
    });
  });

  it('the first digest of a chain, with no claimed file, has null links and null event times', () => {
    const digest = buildDigest(
      makeReservation(PLACE, T, T + HOUR, null, [a1]),
      '111122223333',
      'f',
      new Set(),
    );
    expect(digest).toMatchObject({
      logFiles: [],
      newestEventTime: null,
      oldestEventTime: null,
      previousDigestS3Bucket: null,
      previousDigestS3Object: null,
      previousDigestHashValue: null,
      previousDigestHashAlgorithm: null,
      previousDigestSignature: null,
    });
  });
});

describe('trails and keys', () => {
  it('the signer covers only trails with logFileValidation set to true', () => {
    const trails: TrailConfig[] = [
      { name: 'on', logFileValidation: true },
      { name: 'off', logFileValidation: false },
      { name: 'unset' },
    ];
    expect(validatedTrails(trails).map((t) => t.name)).toEqual(['on']);
  });

  const folder = 'AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/';
  const ours = (day: string, stamp: string) =>
    `${folder}${day}/111122223333_CloudTrail-Digest_eu-west-1_audit.trail-1_us-east-1_${stamp}.json.gz`;
  const listing = [
    ours('2024/05/02', '20240502T010000Z'),
    // the trail name's dot is literal: "auditXtrail-1" is another trail
    `${folder}2024/05/03/111122223333_CloudTrail-Digest_eu-west-1_auditXtrail-1_us-east-1_20240503T010000Z.json.gz`,
    // a trail whose name ends like ours
    `${folder}2024/05/03/111122223333_CloudTrail-Digest_eu-west-1_x_audit.trail-1_us-east-1_20240503T020000Z.json.gz`,
    ours('2024/05/01', '20240501T230000Z'),
    // another home region, another folder, a stamp that is not a time, another suffix
    `${folder}2024/05/03/111122223333_CloudTrail-Digest_eu-west-1_audit.trail-1_eu-west-2_20240503T030000Z.json.gz`,
    `prefix/${ours('2024/05/04', '20240504T010000Z')}`,
    ours('2024/05/04', '2024050XT010000Z'),
    `${ours('2024/05/04', '20240504T020000Z')}.bak`,
  ];

  it("a shared folder listing yields the trail's own digest keys, oldest first", () => {
    expect(digestKeysOf(listing, PLACE)).toEqual([
      ours('2024/05/01', '20240501T230000Z'),
      ours('2024/05/02', '20240502T010000Z'),
    ]);
    expect(newestDigestKey(listing, PLACE)).toBe(ours('2024/05/02', '20240502T010000Z'));
    expect(newestDigestKey(listing.slice(1), { ...PLACE, trail: { name: 'audit.trail-1' } })).toBe(
      ours('2024/05/01', '20240501T230000Z'),
    );
    expect(newestDigestKey([], PLACE)).toBeUndefined();
  });

  it('a prefixed organization trail keeps its digests under its own folder', () => {
    const place: DigestPlace = {
      ...PLACE,
      trail: { name: 'org', prefix: 'p/q', organizationId: 'o-abcdefghij' },
    };
    const key = digestKeyFor(place, T + HOUR);
    expect(
      key.startsWith(
        'p/q/AWSLogs/o-abcdefghij/111122223333/CloudTrail-Digest/eu-west-1/2024/05/01/',
      ),
    ).toBe(true);
    expect(digestKeysOf([key, key.replace('p/q/', 'p/')], place)).toEqual([key]);
  });
});

it('the local close-period operation keeps the X-Amz-Target name docs/cli.md documents', () => {
  const docs = readFileSync(join(__dirname, '../../docs/cli.md'), 'utf8');
  expect(CLOSE_DIGEST_PERIOD_TARGET).toBe('Opentrail.CloseDigestPeriod');
  expect(docs).toContain(`\`${CLOSE_DIGEST_PERIOD_TARGET}\` (\`POST /\`, \`X-Amz-Target\`)`);
});
