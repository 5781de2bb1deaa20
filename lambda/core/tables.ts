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
 * - `claims` (L of M): one entry per distinct content seen for this eventID:
 *   `{h: hex SHA-256 of the record, b: batch id, t: arrival epoch ms, k: [object keys]}`
 * - `ver` (N): optimistic-concurrency version, bumped on every write
 * - `expiresAt` (N, epoch seconds): TTL attribute; correctness never depends on it (windows are
 *   compared on stored arrival times).
 */
export const DEDUP_TABLE = {
  partitionKey: 'pk',
  ttlAttribute: 'expiresAt',
} as const;
