/**
 * The packager use case: one Kinesis batch in, CloudTrail log files out (docs/formats.md#log-files, docs/formats.md#event-selectors).
 *
 * Determinism: a batch is retried whole, and everything it writes is a function of the batch
 * (its records, shard and sequence numbers, newest arrival time) and of dedup claims that its
 * records made. So a retry — or a redrive, which replays the same batch — resolves to the same
 * keys and the same bytes for every object it reserved. Dedup decides per (record, trail)
 * (core/dedup.ts, docs/guarantees.md#exactly-once).
 *
 * Crash windows, each closed:
 * - Dedup claims are written before any file. A crash after them: the retry finds its records'
 *   own claims and keeps the same events. A batch abandoned to the on-failure destination keeps
 *   its claims; its redrive finds them and completes what it reserved.
 * - A resend of content whose object another batch wrote but never marked delivered completes
 *   that object (marks it delivered, with its notice) instead of writing a second copy.
 * - The manifest row is written (state "pending", with the SHA-256) BEFORE the object: a crash
 *   after the S3 write and before the "delivered" update leaves an object that is in the
 *   manifest (no orphan); the retry finds the object, checks its content hash and marks it
 *   delivered. A crash after the pending row and before the object leaves a row without an
 *   object, which the retry fills with the same bytes; the digest signer takes delivered rows
 *   only.
 * - Objects are created with a conditional write (never overwritten). An existing object with
 *   other content fails the batch loudly rather than being replaced.
 */
import { inParallel } from './concurrency';
import { applyDedup } from './packager-dedup';
import { completeObject, writeFile } from './packager-delivery';
import { parse, planFiles } from './packager-plan';
import type { PackagerDeps, PackagerResult, StreamBatch } from './packager-types';

/** Packages one batch. Throws to have the whole batch retried (never a partial result). */
export async function packageBatch(
  batch: StreamBatch,
  deps: PackagerDeps,
): Promise<PackagerResult> {
  if (batch.records.length === 0) return { files: [], duplicates: 0, conflicts: 0 };
  const parsed = batch.records.map((record) =>
    parse(record, deps.trails, deps.insightCounts !== undefined),
  );
  const batchId = `${batch.shardId}:${batch.records[0]!.sequenceNumber}:${batch.records[batch.records.length - 1]!.sequenceNumber}`;
  // Keys depend on the batch alone, so they are known before dedup decides what goes in.
  const allFiles = planFiles(batch, parsed, deps.bucket);
  const copies = allFiles.flatMap((file) =>
    file.records.map((record) => ({ parsed: record, file })),
  );
  const { kept, duplicates, conflicts, unclaimed, complete } = await applyDedup(
    batch,
    batchId,
    copies,
    deps,
  );
  await inParallel(complete, deps.concurrency ?? 8, (row) => completeObject(row, deps));
  const files = allFiles
    .map((file) => ({ ...file, records: file.records.filter((r) => kept.get(file)?.has(r)) }))
    .filter((file) => file.records.length > 0);
  const written: { key: string; records: number; sha256: string }[] = [];
  await inParallel(files, deps.concurrency ?? 8, async (file) => {
    written.push(await writeFile(file, deps));
  });
  deps.metrics.count('DuplicatesDropped', duplicates);
  deps.metrics.count('DedupConflicts', conflicts);
  deps.metrics.count('DedupClaimsSkipped', unclaimed);
  deps.metrics.count('LogFilesDelivered', written.length);
  deps.metrics.count(
    'RecordsDelivered',
    written.reduce((sum, f) => sum + f.records, 0),
  );
  written.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { files: written, duplicates, conflicts };
}
