/**
 * Digest chain logic, pure (docs/formats.md#digest-files): period math, which chain position comes next, and
 * the digest a reservation stands for. No I/O: the signer use case (digest-signing.ts) feeds
 * it what the ports return.
 *
 * Periods: fixed windows of `periodMs` aligned on the epoch (an hour: on the hour), except
 * that `opentrail digest` may close a period early; the next one then runs from that end to
 * the next aligned boundary. Consecutive digests always touch: start = previous end.
 */
import type { TrailConfig } from './config';
import {
  DIGEST_HASH_ALGORITHM,
  DIGEST_SIGNATURE_ALGORITHM,
  digestKey,
  digestRegionFolder,
  formatDigestTime,
  type DigestFile,
} from './digest-format';
import type { DigestCandidate, DigestChainHead, DigestReservation, DigestStreamRef } from './ports';

/** `<trail>#<account>#<region>`, as the manifest's `stream` attribute. */
export function streamId(stream: { trail: string; account: string; region: string }): string {
  return `${stream.trail}#${stream.account}#${stream.region}`;
}

/** Start of the aligned period holding `ms`. */
export function periodStart(ms: number, periodMs: number): number {
  return Math.floor(ms / periodMs) * periodMs;
}

/** End of the period that starts at `startMs`: the next aligned boundary after it. */
export function periodEnd(startMs: number, periodMs: number): number {
  return periodStart(startMs, periodMs) + periodMs;
}

/** Where a chain starts: the previous digest's end, or the first period of the stream. */
export function nextStart(
  head: DigestChainHead | undefined,
  stream: Pick<DigestStreamRef, 'firstSeenMs'>,
  periodMs: number,
): number {
  return head ? head.endMs : periodStart(stream.firstSeenMs, periodMs);
}

/**
 * The end of the next digest from `startMs`, or undefined when none is due at `nowMs`:
 * a regular period is due once it has closed; `closeAtMs` (whole seconds) closes the open
 * period early, when it lies after the start.
 */
export function nextEnd(
  startMs: number,
  nowMs: number,
  periodMs: number,
  closeAtMs?: number,
): number | undefined {
  const regular = periodEnd(startMs, periodMs);
  if (regular <= nowMs) return regular;
  if (closeAtMs !== undefined && closeAtMs > startMs && closeAtMs < regular) return closeAtMs;
  return undefined;
}

/** The ends of every digest due, in order (as `nextEnd` would walk them). */
export function dueEnds(
  startMs: number,
  nowMs: number,
  periodMs: number,
  closeAtMs?: number,
): number[] {
  const ends: number[] = [];
  let start = startMs;
  for (;;) {
    const end = nextEnd(start, nowMs, periodMs, closeAtMs);
    if (end === undefined) return ends;
    ends.push(end);
    start = end;
  }
}

/** Where a trail's digests for one account and region live, and how they are named. */
export interface DigestPlace {
  readonly trail: Pick<TrailConfig, 'name' | 'prefix' | 'organizationId'>;
  readonly account: string;
  readonly region: string;
  /** The deployment's region (HOMEREGION in the key). */
  readonly homeRegion: string;
  readonly bucket: string;
}

export function digestKeyFor(place: DigestPlace, endMs: number): string {
  return digestKey({
    prefix: place.trail.prefix,
    organizationId: place.trail.organizationId,
    account: place.account,
    region: place.region,
    trailName: place.trail.name,
    homeRegion: place.homeRegion,
    endMs,
  });
}

/** The folder holding every digest of this (trail prefix/org, account, region). */
export function digestFolderFor(place: DigestPlace): string {
  return digestRegionFolder({
    prefix: place.trail.prefix,
    organizationId: place.trail.organizationId,
    account: place.account,
    region: place.region,
  });
}

/** The reservation for the chain position after `previous` (candidates sorted by key). */
export function makeReservation(
  place: DigestPlace,
  startMs: number,
  endMs: number,
  previous: DigestChainHead | null,
  candidates: readonly DigestCandidate[],
): DigestReservation {
  const unique = new Map(candidates.map((c) => [`${c.bucket}/${c.key}`, c]));
  return {
    stream: streamId({ trail: place.trail.name, account: place.account, region: place.region }),
    startMs,
    endMs,
    bucket: place.bucket,
    key: digestKeyFor(place, endMs),
    previous,
    candidates: [...unique.values()].sort((a, b) =>
      a.bucket === b.bucket ? compare(a.key, b.key) : compare(a.bucket, b.bucket),
    ),
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The digest of a reservation: its candidates that the claims gave to it (`claimed`: the
 * `bucket/key` ids whose claim succeeded). A pure function, so every run of the same
 * reservation with the same signing key builds the same bytes.
 */
export function buildDigest(
  reservation: DigestReservation,
  account: string,
  fingerprint: string,
  claimed: ReadonlySet<string>,
): DigestFile {
  const files = reservation.candidates.filter((c) => claimed.has(`${c.bucket}/${c.key}`));
  const newest = files.map((f) => f.newestEventTime).sort();
  const oldest = files.map((f) => f.oldestEventTime).sort();
  const previous = reservation.previous;
  return {
    awsAccountId: account,
    digestStartTime: formatDigestTime(reservation.startMs),
    digestEndTime: formatDigestTime(reservation.endMs),
    digestS3Bucket: reservation.bucket,
    digestS3Object: reservation.key,
    digestPublicKeyFingerprint: fingerprint,
    digestSignatureAlgorithm: DIGEST_SIGNATURE_ALGORITHM,
    newestEventTime: newest.length > 0 ? newest[newest.length - 1]! : null,
    oldestEventTime: oldest.length > 0 ? oldest[0]! : null,
    previousDigestS3Bucket: previous ? previous.bucket : null,
    previousDigestS3Object: previous ? previous.key : null,
    previousDigestHashValue: previous ? previous.sha256 : null,
    previousDigestHashAlgorithm: previous ? DIGEST_HASH_ALGORITHM : null,
    previousDigestSignature: previous ? previous.signature : null,
    logFiles: files.map((f) => ({
      s3Bucket: f.bucket,
      s3Object: f.key,
      hashValue: f.sha256,
      hashAlgorithm: DIGEST_HASH_ALGORITHM,
      newestEventTime: f.newestEventTime,
      oldestEventTime: f.oldestEventTime,
    })),
  };
}

/** The trails the signer covers: those with log-file validation on. */
export function validatedTrails(trails: readonly TrailConfig[]): TrailConfig[] {
  return trails.filter((t) => t.logFileValidation === true);
}

/**
 * The newest digest key of one trail among `keys` (a listing of its region folder), or
 * undefined. Keys of one folder sort by date folder then stamp, so byte order is time order.
 */
export function newestDigestKey(keys: readonly string[], place: DigestPlace): string | undefined {
  const ours = digestKeysOf(keys, place);
  return ours[ours.length - 1];
}

/**
 * The digest keys of one trail among `keys` (a listing of its region folder, where other
 * trails' digests may lie too), oldest first.
 */
export function digestKeysOf(keys: readonly string[], place: DigestPlace): string[] {
  const suffix = new RegExp(
    `/${escape(place.account)}_CloudTrail-Digest_${escape(place.region)}_${escape(place.trail.name)}_${escape(place.homeRegion)}_\\d{8}T\\d{6}Z\\.json\\.gz$`,
  );
  const folder = digestFolderFor(place);
  return keys.filter((key) => key.startsWith(folder) && suffix.test(key)).sort(compare);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** X-Amz-Target of the embedded runtime's local-only operation that closes the open period. */
export { CLOSE_DIGEST_PERIOD_TARGET } from './contracts';
