/**
 * Deduplication of resent events, per trail, safe under retries and redrives, and never a
 * weapon (docs/guarantees.md#exactly-once).
 *
 * One item per eventID holds claims: one per (content, trail) a stream record took, naming the
 * record (`shardId:sequenceNumber`), its batch, arrival time and the trail's object. For each
 * trail a record goes to, the decision is:
 *
 * - The record's own claim (a retry, a bisected retry, a redrive: the same stream record) keeps
 *   it, whatever the dedup window. When the claim names another object (the batch boundaries
 *   changed), that object wins if it was written: it is completed and the record dropped here.
 * - Otherwise the record is dropped for the trail only when that trail holds the same content
 *   within the window in an object that is delivered, written (completed now) or reserved
 *   (a manifest row whose bytes are fixed, written by its batch's retry or redrive). A record
 *   whose own object is not reserved yet is dropped the same way, so a resend that got there
 *   first is not doubled by the original's retry.
 * - Other content under the same eventID is kept beside it (a conflict): a forged record never
 *   suppresses a real one.
 *
 * Flood bound: at most MAX_CLAIMS_PER_TRAIL claims per (eventID, trail). Past it the oldest
 * evictable claim goes: never the first delivered one, never one whose object is not delivered
 * (a batch still retrying or waiting for its redrive), never one within the window. When
 * nothing can go, or the item would pass DynamoDB's item limit, the record is kept without a
 * claim: at least once for that copy. Windows compare stored arrival times, never the clock.
 */
import type { DedupClaim, DedupItem } from './ports';

/** Evictable claims kept per (eventID, trail); pinned claims are never evicted. */
export const MAX_CLAIMS_PER_TRAIL = 20;

/** DynamoDB's item size limit, in UTF-8 bytes of names and values. */
export const DYNAMODB_ITEM_MAX_BYTES = 400 * 1024;

/**
 * Where a claim's object stands: `delivered` (manifest row delivered), `written` (row pending,
 * object present with the row's content), `reserved` (row pending, no object yet), `none` (no
 * row).
 */
export type ObjectState = 'delivered' | 'written' | 'reserved' | 'none';

export interface Candidate {
  readonly eventId: string;
  /** contentHash of the record (core/content-hash.ts): a resend by the same principal matches. */
  readonly hash: string;
  readonly trail: string;
  /** The stream record, `shardId:sequenceNumber`. */
  readonly record: string;
  readonly batch: string;
  readonly arrivalMs: number;
  /** `bucket/key` of the trail's object this copy goes to. */
  readonly key: string;
}

export type Decision =
  | {
      readonly keep: true;
      /** New content for the trail where other content was seen. */
      readonly conflict: boolean;
      /** The item to write; undefined: nothing changes. */
      readonly item?: DedupItem;
      /** Kept without a claim (flood bound or item size): at least once for this copy. */
      readonly unclaimed?: boolean;
    }
  | {
      readonly keep: false;
      /** A written object (`bucket/key`) holding this copy, to be marked delivered. */
      readonly complete?: string;
    };

/** The item's size in UTF-8 bytes, an upper bound on DynamoDB's count for the stored item. */
export function dedupItemBytes(item: DedupItem): number {
  // JSON spells each name and value plus quotes and separators, and the stored attribute names
  // are shorter than these: never less than DynamoDB's count (names + values + 1 byte each).
  return Buffer.byteLength(
    JSON.stringify({ pk: item.eventId, claims: item.claims, ver: 1e15, expiresAt: 1e15 }),
    'utf8',
  );
}

/**
 * A cheap upper bound on dedupItemBytes, field by field whatever fields a claim has: a string
 * spells at most 6 bytes per UTF-16 unit in JSON (`\u001f`), a number at most MAX_NUMBER_BYTES, and each name its own bound plus quotes and separators. Items under the limit
 * by this bound skip serialising the item only to measure it.
 */
const MAX_JSON_BYTES_PER_UNIT = 6;
const MAX_NUMBER_BYTES = 24;
const SEPARATOR_BYTES = 6;
const ITEM_OVERHEAD_BYTES = 128;

function surelyWithinItemLimit(item: DedupItem): boolean {
  let bound = ITEM_OVERHEAD_BYTES + item.eventId.length * MAX_JSON_BYTES_PER_UNIT;
  for (const claim of item.claims) {
    bound += SEPARATOR_BYTES;
    // for-in, not Object.entries: no array per field, on a path taken once per record.
    for (const name in claim) {
      const value: unknown = claim[name as keyof DedupClaim];
      bound += (name.length + 1) * MAX_JSON_BYTES_PER_UNIT + SEPARATOR_BYTES;
      if (typeof value === 'string') bound += value.length * MAX_JSON_BYTES_PER_UNIT;
      else if (typeof value === 'number') bound += MAX_NUMBER_BYTES;
      else return false; // not a flat claim: measure it exactly
    }
  }
  return bound <= DYNAMODB_ITEM_MAX_BYTES;
}

const HOLDS: ReadonlySet<ObjectState> = new Set(['delivered', 'written', 'reserved']);

function dropFor(claim: DedupClaim, stateOf: (key: string) => ObjectState): Decision {
  return stateOf(claim.key) === 'written' ? { keep: false, complete: claim.key } : { keep: false };
}

/**
 * Removes evictable claims of the trail beyond MAX_CLAIMS_PER_TRAIL; undefined if it cannot.
 * Evictable: delivered, not the trail's first delivered claim, and older than the window
 * before the new claim — within the window every claim may still decide a copy, so a flood
 * there cannot evict a real claim, whichever content came first.
 */
function bounded(
  claims: DedupClaim[],
  trail: string,
  nowMs: number,
  windowMs: number,
  stateOf: (key: string) => ObjectState,
): DedupClaim[] | undefined {
  const ofTrail = claims.filter((claim) => claim.trail === trail);
  let excess = ofTrail.length - MAX_CLAIMS_PER_TRAIL;
  if (excess <= 0) return claims;
  const firstDelivered = ofTrail.find((claim) => stateOf(claim.key) === 'delivered');
  const evict = new Set<DedupClaim>();
  for (const claim of ofTrail) {
    if (excess === 0) break;
    if (
      claim === firstDelivered ||
      stateOf(claim.key) !== 'delivered' ||
      nowMs - claim.arrivalMs <= windowMs
    )
      continue;
    evict.add(claim);
    excess--;
  }
  return excess > 0 ? undefined : claims.filter((claim) => !evict.has(claim));
}

/** Decides one copy (a record for one trail) against the stored item. Pure. */
export function decide(
  stored: DedupItem | undefined,
  candidate: Candidate,
  windowMs: number,
  stateOf: (key: string) => ObjectState,
): Decision {
  if (stored === undefined) return firstClaim(candidate);
  const claims = stored.claims;
  const same = claims.filter(
    (claim) => claim.trail === candidate.trail && claim.hash === candidate.hash,
  );
  const own = same.find((claim) => claim.record === candidate.record);
  const holder = same.find(
    (claim) =>
      claim !== own &&
      claim.key !== candidate.key &&
      Math.abs(candidate.arrivalMs - claim.arrivalMs) <= windowMs &&
      HOLDS.has(stateOf(claim.key)),
  );
  if (own && own.key === candidate.key) {
    // Our object's bytes are fixed once its row exists: the retry writes what it reserved.
    if (stateOf(own.key) !== 'none' || !holder) return { keep: true, conflict: false };
    return dropFor(holder, stateOf);
  }
  if (own && (stateOf(own.key) === 'delivered' || stateOf(own.key) === 'written'))
    return dropFor(own, stateOf);
  if (holder) return dropFor(holder, stateOf);

  const ours = claimOf(candidate);
  // Our claim replaces the record's earlier one (boundaries changed, its object never written).
  const next = bounded(
    [...claims.filter((claim) => claim !== own), ours],
    candidate.trail,
    candidate.arrivalMs,
    windowMs,
    stateOf,
  );
  const conflict = same.length === 0 && claims.some((claim) => claim.trail === candidate.trail);
  if (next === undefined) return { keep: true, conflict, unclaimed: true };
  return keptWith({ eventId: candidate.eventId, ver: stored.ver, claims: next }, conflict);
}

function claimOf(candidate: Candidate): DedupClaim {
  return {
    hash: candidate.hash,
    trail: candidate.trail,
    record: candidate.record,
    batch: candidate.batch,
    arrivalMs: candidate.arrivalMs,
    key: candidate.key,
  };
}

/** Keeps the copy with the item to write, or unclaimed when the item would pass the limit. */
function keptWith(item: DedupItem, conflict: boolean): Decision {
  if (!surelyWithinItemLimit(item) && dedupItemBytes(item) > DYNAMODB_ITEM_MAX_BYTES)
    return { keep: true, conflict, unclaimed: true };
  return { keep: true, conflict, item };
}

/**
 * The decision for an eventID nothing claimed yet (most events): kept, with its one claim. The
 * general path gives the same, through lists that are empty here.
 */
function firstClaim(candidate: Candidate): Decision {
  return keptWith({ eventId: candidate.eventId, ver: 0, claims: [claimOf(candidate)] }, false);
}
