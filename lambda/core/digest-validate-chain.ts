/**
 * validate-logs' chain judgement (docs/formats.md#what-validation-checks): what a digest as read
 * is, and what the pairing of a digest with the next older one found reveals — its own line,
 * a broken link (location, hash, signature, period) or the `not found` lines of a gap. Pure.
 */
import { digestKey, parseDigestTime, type DigestFile } from './digest-format';
import {
  gapPeriods,
  type ChainEntry,
  type ChainId,
  type FoundChain,
  type Period,
} from './digest-validate-plan';
import { REASONS, type ValidationResult } from './digest-validate-report';

/** A digest as read: valid, moved (a copy), or invalid with the reason. */
export type LoadedDigest = {
  readonly entry: ChainEntry;
  /** hex SHA-256 of the uncompressed bytes, when they could be gunzipped. */
  readonly sha256?: string;
  /** The metadata signature as stored. */
  readonly signature?: string;
} & (
  | { readonly status: 'valid'; readonly digest: DigestFile }
  | { readonly status: 'moved' | 'invalid'; readonly reason: string; readonly digest?: DigestFile }
);

/** Where a judgement is made: the digests' bucket, the regular period, the range start. */
export interface JudgeContext {
  readonly bucket: string;
  readonly periodMs: number;
  readonly startMs: number;
}

/** `not found` lines for missing periods of a chain, newest first. */
export function missing(
  bucket: string,
  id: ChainId,
  periods: readonly Period[],
): ValidationResult[] {
  return periods.map((p) => ({
    kind: 'digest',
    bucket,
    key: digestKey({ ...id, endMs: p.endMs }),
    valid: false,
    reason: REASONS.notFound,
  }));
}

/** The newer digest's own line plus what its pairing with the next older one reveals. */
export function judge(
  where: JudgeContext,
  chain: FoundChain,
  newer: LoadedDigest,
  older: LoadedDigest | undefined,
): ValidationResult[] {
  const { bucket, periodMs, startMs: rangeStartMs } = where;
  const { id } = chain;
  const early = chain.expectation?.earlyClosedEndsMs ?? [];
  const line = (valid: boolean, reason?: string): ValidationResult => ({
    kind: 'digest',
    bucket,
    key: newer.entry.key,
    valid,
    ...(reason !== undefined ? { reason } : {}),
  });
  if (newer.status !== 'valid') return [line(false, newer.reason)];
  const d = newer.digest;
  const startMs = parseDigestTime(d.digestStartTime);
  if (!older) {
    // The oldest digest found in range: what came before it is known from a digest before
    // the range or from the chain's expectation; otherwise only the one it names.
    if (chain.floorMs !== undefined)
      return [
        line(true),
        ...missing(bucket, id, gapPeriods(chain.floorMs, startMs, periodMs, rangeStartMs, early)),
      ];
    if (d.previousDigestS3Object !== null && startMs > rangeStartMs)
      return [
        line(true),
        {
          kind: 'digest',
          bucket: d.previousDigestS3Bucket ?? bucket,
          key: d.previousDigestS3Object,
          valid: false,
          reason: REASONS.notFound,
        },
      ];
    return [line(true)];
  }
  // Present but unreadable or unsigned: already reported on its own line; nothing to compare.
  const olderEndMs =
    older.status === 'valid' ? parseDigestTime(older.digest.digestEndTime) : older.entry.endMs;
  const namesOlder =
    d.previousDigestS3Bucket === bucket && d.previousDigestS3Object === older.entry.key;
  if (olderEndMs < startMs && !namesOlder)
    return [
      line(true),
      ...missing(bucket, id, gapPeriods(olderEndMs, startMs, periodMs, -Infinity, early)),
    ];
  if (!namesOlder) return [line(false, REASONS.previousLocation)];
  if (older.status !== 'valid') return [line(true)];
  if (d.previousDigestHashValue !== older.sha256) return [line(false, REASONS.previousHash)];
  if (d.previousDigestSignature !== older.signature)
    return [line(false, REASONS.previousSignature)];
  if (olderEndMs !== startMs) return [line(false, REASONS.previousPeriod)];
  return [line(true)];
}
