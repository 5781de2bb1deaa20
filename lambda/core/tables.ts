/**
 * DynamoDB table layouts, shared by the constructs (CDK tables), the embedded runtime
 * (CreateTable on dynalite) and the adapters. One definition, so the three cannot drift.
 */

/**
 * Delivery manifest: one item per log file, written BEFORE the object (state "pending") and
 * moved to "delivered" after it. Items are never deleted.
 *
 * - `pk` (S): `<bucket>/<key>`
 * - `bucket`, `key`, `trail`, `account`, `region` (S)
 * - `sha256` (S): hex SHA-256 of the uncompressed log file
 * - `oldestEventTime`, `newestEventTime` (S, `YYYY-MM-DDTHH:MM:SSZ`), `recordCount` (N)
 * - `state` (S): "pending" | "delivered"
 * - `stream` (S): `<trail>#<account>#<region>`; `deliveredAt` (S, ISO-8601 with
 *   milliseconds), set when delivered and never changed after. The index `byStream` needs both,
 *   so it lists only delivered files of one (trail, account, region), in delivery order.
 */
export const MANIFEST_TABLE = {
  partitionKey: 'pk',
  indexName: 'byStream',
  indexPartitionKey: 'stream',
  indexSortKey: 'deliveredAt',
} as const;

/**
 * Dedup claims: one item per eventID.
 *
 * - `pk` (S): the eventID
 * - `claims` (L of M): one entry per (content, trail) a stream record claimed for this eventID:
 *   `{h: contentHash of the record, r: trail name, s: claiming record "shardId:sequenceNumber",
 *   b: batch id, t: arrival epoch ms, k: "bucket/key" of the trail's object}`. At most
 *   MAX_CLAIMS_PER_TRAIL evictable entries per trail, and the item is checked against
 *   DynamoDB's 400 KB item limit in UTF-8 bytes before every write (core/dedup.ts).
 * - `ver` (N): optimistic-concurrency version, bumped on every write
 * - `expiresAt` (N, epoch seconds): TTL attribute; correctness never depends on it (windows are
 *   compared on stored arrival times).
 */
export const DEDUP_TABLE = {
  partitionKey: 'pk',
  ttlAttribute: 'expiresAt',
} as const;

/**
 * Digest chain state (issue 3): one table, partition key `pk` and sort key `sk` (both S).
 *
 * - stream registry: `pk` = "streams", `sk` = `<trail>#<account>#<region>`, `trail`,
 *   `account`, `region` (S), `firstSeenMs` (N). Written by the packager before each file
 *   (idempotent, first firstSeenMs kept).
 * - chain head: `pk` = `head#<stream>`, `sk` = "head"; `endMs` (N), `bucket`, `key`,
 *   `sha256`, `signature` (S). Moved only forward, conditionally on its previous `endMs`.
 * - reservation: `pk` = `res#<stream>`, `sk` = startMs (13 digits, zero-padded); `endMs` (N),
 *   `bucket`, `key` (S), `previous` (M or NULL), and its candidates by reference: `nonce` (S),
 *   `parts`, `count` (N), `candidatesSha256` (S). Created once, after its parts. (Items
 *   written before parts existed hold the candidates inline instead: `candidatesGz` (B).)
 * - reservation part: `pk` = `res#<stream>`, `sk` = `<startMs, 13 digits>#part#<nonce>#<index,
 *   6 digits>`; `gz` (B): gzip'd JSON array of candidates. Any number per reservation, each
 *   under 400 KB (see docs/guarantees.md#digest-chain).
 *
 * Manifest rows claimed by a digest get `digest` (S, `<bucket>/<key>` of the digest).
 */
export const CHAIN_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  streamsPartition: 'streams',
  headSortKey: 'head',
  /** Attribute set on a manifest row by the digest that lists it. */
  manifestClaimAttribute: 'digest',
} as const;

/**
 * Event history (issue 4, layout of issue 14): one table, two kinds of items written, one more
 * read. Cost is independent of history size: every lookup is a key-range Query on the group
 * items of its (key, value) plus a BatchGet of ≤ 50 records (docs/design.md#event-history-table,
 * bytes in docs/formats.md#lookupevents).
 *
 * Record items, one per (eventID, content): `pk` = `E#<eventID>`, `sk` = 16 hex chars of the
 * SHA-256 of the stored record; `t` eventTime, `c` category ("m" management, "i" insight),
 * `z` the record JSON deflate-compressed (CloudTrailEvent; items of the version-1 layout hold
 * it as text in `j`), `x` TTL. Written with a conditional put.
 *
 * Group items, one per (lookup key, value, minute of eventTime) of an indexer batch:
 * `pk` = `<c><K>$<value>` with K one of N EventName, R ReadOnly (empty value: no readOnly),
 * U Username, T ResourceType, M ResourceName, S EventSource, K AccessKeyId;
 * `sk` = `<YYYY-MM-DDTHH:MM>#<group id>#<part>`; `e` the events' sort keys
 * (`<eventTime>#<eventID, order-preserving escape>\u0001<content hash>`), `x` TTL. The
 * lookup without attributes merges the three ReadOnly partitions. EventId lookups query
 * record items.
 *
 * Version-1 index items (read for 90 days after the upgrade, never written): `pk` =
 * `<c><K>#<shard>#<value>` (K also A, no attribute), shard = the event's hash mod
 * `writeShards`; `sk` = the event's sort key; `x` TTL.
 *
 * `x` (N, epoch seconds): TTL = eventTime + 91 days; correctness never depends on it (the
 * 90-day window is enforced by the key range at read time).
 */
export const HISTORY_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'x',
  /** Write shards of the version-1 index items, which readers still merge. A constant. */
  writeShards: 8,
} as const;

/**
 * The Insights table (docs/design.md#insights): counters, detector state and cursor, told
 * apart by partition. `maxFilesPerItem`: files counted into one counter item before the next
 * file goes to an overflow item. A file adds at most 3 × 5 attribution values of ≤ 256
 * characters (≤ 1,024 UTF-8 bytes, plus a number), so 24 files bound an item at
 * 24 × 15 × 1,034 ≈ 372 KB plus 24 markers and the keys: under DynamoDB's 400 KB item limit,
 * which dynalite does not enforce.
 */
export const INSIGHTS_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'x',
  maxFilesPerItem: 24,
} as const;
