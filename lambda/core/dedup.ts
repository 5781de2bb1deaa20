/**
 * Deduplication of resent events, safe under batch retries and never a weapon.
 *
 * An event is a duplicate only when the same eventID AND the same content (SHA-256 of the
 * stored text) was already delivered within the window. The same eventID with other content
 * is kept beside the first and counted as a conflict, so a forged record cannot suppress a
 * real one.
 *
 * Every kept copy leaves a claim `{h, b, t, k}`: content hash, claiming batch, arrival time,
 * and the object keys it goes to. A retry of the claiming batch finds its own claim and keeps
 * the event again (same keys, same bytes), even when another batch claimed the same content
 * meanwhile: claims are only ever added. A claim by another batch counts only when all its
 * objects are delivered (manifest state "delivered"): a batch that died or went to the
 * on-failure destination before delivering does not make its records duplicates, so a redrive
 * stores them. Windows compare stored arrival times, never the clock, so a retry decides the
 * same way whenever it runs.
 */
import type { DedupClaim, DedupItem } from './ports';

/** At most this many distinct contents are remembered per eventID (bounds forged floods). */
export const MAX_CLAIMS_PER_EVENT = 20;

export interface Candidate {
  readonly eventId: string;
  readonly hash: string;
  readonly batchId: string;
  readonly arrivalMs: number;
  /** `bucket/key` of every object this copy goes to. */
  readonly keys: readonly string[];
}

export type Decision =
  /** Keep; `item` is the new dedup item to write (undefined: nothing changes). */
  | { readonly keep: true; readonly conflict: boolean; readonly item?: DedupItem }
  | { readonly keep: false };

/**
 * Decides one candidate against the stored item. `isDelivered(claim)` tells whether every
 * object of another batch's claim is delivered.
 */
export function decide(
  stored: DedupItem | undefined,
  candidate: Candidate,
  windowMs: number,
  isDelivered: (claim: DedupClaim) => boolean,
): Decision {
  const claims = stored?.claims ?? [];
  const ours: DedupClaim = {
    h: candidate.hash,
    b: candidate.batchId,
    t: candidate.arrivalMs,
    k: candidate.keys,
  };
  const same = claims.filter((claim) => claim.h === candidate.hash);
  if (same.some((claim) => claim.b === candidate.batchId)) return { keep: true, conflict: false };
  const delivered = same.some(
    (claim) => Math.abs(candidate.arrivalMs - claim.t) <= windowMs && isDelivered(claim),
  );
  if (delivered) return { keep: false };
  // Kept: new content (a conflict when other content was seen), a copy outside the window, or
  // a copy whose earlier claimant never delivered. Earlier claims stay, so a batch that is
  // still being retried finds its own claim and writes what it wrote before.
  const item: DedupItem = {
    eventId: candidate.eventId,
    ver: stored?.ver ?? 0,
    claims: [...claims, ours].slice(-MAX_CLAIMS_PER_EVENT),
  };
  return { keep: true, conflict: same.length === 0 && claims.length > 0, item };
}
