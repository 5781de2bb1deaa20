/**
 * The packager's delivery step (core/packager.ts): each file reserved in the manifest, written
 * once, counted for Insights and marked delivered, and another batch's written object
 * completed when this batch dropped its records as copies.
 */
import { gunzipSync } from 'node:zlib';
import { countLogFile } from './insights-live';
import { parseLogFileKey } from './layout';
import { encodeLogFileAsync, uncompressedSha256Async } from './logfile';
import { countingTrail } from './packager-plan';
import type { PackagerDeps, PlannedFile } from './packager-types';
import type { ManifestRow } from './ports';
import type { SelectableRecord } from './selectors';

/** The minute a log file was delivered, from its key's stamp (`YYYYMMDDTHHMMZ`). */
function deliveryMinute(key: string): number {
  const stamp = parseLogFileKey(key)?.stamp;
  if (!stamp) throw new Error(`${key}: not a log-file key`);
  const iso = `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:00Z`;
  return Date.parse(iso) / 60_000;
}

/**
 * Marks another batch's written object delivered (its records were dropped here as copies),
 * counting it for Insights first: that batch may have stopped before it counted.
 */
export async function completeObject(row: ManifestRow, deps: PackagerDeps): Promise<void> {
  if (deps.insightCounts) {
    const body = await deps.objects.get(row.bucket, row.key);
    if (body === undefined) throw new Error(`s3://${row.bucket}/${row.key} vanished`);
    const records = (
      JSON.parse(gunzipSync(body).toString('utf8')) as { Records: SelectableRecord[] }
    ).Records.filter((record) => countingTrail(deps.trails, record) === row.trail);
    await countLogFile(
      deps.insightCounts,
      `${row.bucket}/${row.key}`,
      records,
      deliveryMinute(row.key),
    );
  }
  await deps.manifest.markDelivered(row.bucket, row.key, new Date(deps.now()).toISOString());
  await deps.notifier?.logFileDelivered({ trail: row.trail, bucket: row.bucket, key: row.key });
}

export async function writeFile(
  file: PlannedFile,
  deps: PackagerDeps,
): Promise<{ key: string; records: number; sha256: string }> {
  const encoded = await encodeLogFileAsync(file.records.map((r) => r.data));
  // The oldest and newest eventTime as a sort would give them (UTF-16 order), in one pass.
  let oldestEventTime = file.records[0]!.record.eventTime;
  let newestEventTime = oldestEventTime;
  for (const { record } of file.records) {
    if (record.eventTime < oldestEventTime) oldestEventTime = record.eventTime;
    if (record.eventTime > newestEventTime) newestEventTime = record.eventTime;
  }
  // Before the manifest row, so the signer knows the stream before any of its files exists.
  await deps.streams?.register({
    trail: file.trail.name,
    account: file.account,
    region: file.region,
    firstSeenMs: deps.now(),
  });
  await deps.manifest.reserve({
    bucket: deps.bucket,
    key: file.key,
    trail: file.trail.name,
    account: file.account,
    region: file.region,
    sha256: encoded.sha256,
    oldestEventTime,
    newestEventTime,
    recordCount: file.records.length,
  });
  const outcome = await deps.objects.putIfAbsent({
    bucket: deps.bucket,
    key: file.key,
    body: encoded.gzip,
    contentType: 'application/json',
    contentEncoding: 'gzip',
  });
  if (outcome === 'exists') {
    const existing = await deps.objects.get(deps.bucket, file.key);
    if (existing === undefined || (await uncompressedSha256Async(existing)) !== encoded.sha256) {
      throw new Error(
        `s3://${deps.bucket}/${file.key} exists with other content; it is never overwritten`,
      );
    }
  }
  // Counted once the object exists and before it is delivered: see insights-live.ts.
  if (deps.insightCounts)
    await countLogFile(
      deps.insightCounts,
      `${deps.bucket}/${file.key}`,
      file.records.filter((r) => r.countedFor === file.trail.name).map((r) => r.record),
      deliveryMinute(file.key),
    );
  await deps.manifest.markDelivered(deps.bucket, file.key, new Date(deps.now()).toISOString());
  await deps.notifier?.logFileDelivered({
    trail: file.trail.name,
    bucket: deps.bucket,
    key: file.key,
  });
  return { key: file.key, records: file.records.length, sha256: encoded.sha256 };
}
