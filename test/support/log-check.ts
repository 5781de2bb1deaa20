/**
 * Reads back everything the packager wrote and checks it against docs/formats.md#log-files: key layout,
 * one gzip member, `{"Records":[...]}`, each record filed under its own account and region,
 * and the delivery manifest covering every object.
 */
import { parseLogFileKey } from '../../lambda/core/layout';
import { readGzipMember, sha256Hex } from '../../lambda/core/logfile';
import type { ManifestRow } from '../../lambda/core/ports';
import type { Endpoints } from '../../local/runtime';
import { getObject, listKeys, manifestRows, waitFor, type clientsFor } from './emulator-clients';

export interface DeliveredRecord {
  readonly key: string;
  readonly record: Record<string, unknown>;
}

export interface LogCheck {
  readonly keys: string[];
  readonly records: DeliveredRecord[];
  readonly manifest: ManifestRow[];
  /** Every rule broken, in words; empty when all holds. */
  readonly problems: string[];
}

export async function checkLogFiles(
  clients: ReturnType<typeof clientsFor>,
  endpoints: Endpoints,
): Promise<LogCheck> {
  // Digest files share the bucket (docs/formats.md#digest-files); they are checked by validate-logs, not here.
  const keys = (await listKeys(clients, endpoints.bucket)).filter(
    (key) => !key.includes('/CloudTrail-Digest/'),
  );
  const manifest = await manifestRows(clients, endpoints.manifestTable);
  const byKey = new Map(manifest.map((row) => [row.key, row]));
  const problems: string[] = [];
  const records: DeliveredRecord[] = [];
  for (const key of keys) {
    const parts = parseLogFileKey(key);
    if (!parts) {
      problems.push(`${key}: key does not follow the layout`);
      continue;
    }
    const body = await getObject(clients, endpoints.bucket, key);
    const member = readGzipMember(body);
    if (member.trailingBytes !== 0)
      problems.push(`${key}: ${member.trailingBytes} bytes after the gzip member`);
    const parsed = JSON.parse(member.data.toString('utf8')) as {
      Records?: Record<string, unknown>[];
    };
    if (!Array.isArray(parsed.Records) || Object.keys(parsed).length !== 1)
      problems.push(`${key}: body is not {"Records":[...]}`);
    for (const record of parsed.Records ?? []) {
      if (record.recipientAccountId !== parts.account || record.awsRegion !== parts.region) {
        problems.push(
          `${key}: holds record ${String(record.eventID)} of ${String(record.recipientAccountId)}/${String(record.awsRegion)}`,
        );
      }
      records.push({ key, record });
    }
    const row = byKey.get(key);
    if (!row) problems.push(`${key}: not in the delivery manifest (orphan)`);
    else {
      if (row.state !== 'delivered') problems.push(`${key}: manifest row is ${row.state}`);
      if (row.sha256 !== sha256Hex(member.data))
        problems.push(`${key}: manifest SHA-256 does not match the object`);
      if (row.recordCount !== (parsed.Records ?? []).length)
        problems.push(
          `${key}: manifest recordCount ${row.recordCount} ≠ ${(parsed.Records ?? []).length}`,
        );
    }
  }
  const present = new Set(keys);
  for (const row of manifest) {
    if (row.state === 'delivered' && !present.has(row.key))
      problems.push(`${row.key}: manifest says delivered, object missing`);
  }
  return { keys, records, manifest, problems };
}

/**
 * Fields ingest adds to a record: the normalised ones it may fill in when absent
 * (docs/formats.md#normalisation) and the provenance stamp it always appends
 * (docs/formats.md#provenance).
 */
export const NORMALISED_FIELDS = [
  'opentrailProvenance',
  'eventID',
  'eventVersion',
  'eventType',
  'eventCategory',
  'managementEvent',
  'recipientAccountId',
];

/** Waits until the log files hold at least `count` records, and returns that check. */
export function waitForLogRecords(
  clients: ReturnType<typeof clientsFor>,
  endpoints: Endpoints,
  count: number,
  timeoutMs = 60_000,
): Promise<LogCheck> {
  return waitFor('all records in log files', timeoutMs, async () => {
    const check = await checkLogFiles(clients, endpoints);
    return check.records.length >= count ? check : undefined;
  });
}
