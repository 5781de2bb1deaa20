/**
 * Log-file bodies (FORMATS.md §3): `{"Records":[...]}`, one gzip member, no trailing bytes, and
 * the same bytes for the same records (gzip header mtime 0, fixed level), so a retried batch
 * writes exactly what its first attempt wrote.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';

export const MAX_RECORDS_PER_FILE = 50_000;
const GZIP_LEVEL = 6;

export interface EncodedLogFile {
  /** The uncompressed JSON. */
  readonly json: Buffer;
  /** The gzip member as stored. */
  readonly gzip: Buffer;
  /** hex SHA-256 of `json`: what the manifest and the digests record. */
  readonly sha256: string;
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Encodes records given as their stored JSON texts, in the order given. */
export function encodeLogFile(recordTexts: readonly string[]): EncodedLogFile {
  if (recordTexts.length > MAX_RECORDS_PER_FILE) {
    throw new RangeError(`a log file holds at most ${MAX_RECORDS_PER_FILE} records, got ${recordTexts.length}`);
  }
  const json = Buffer.from(`{"Records":[${recordTexts.join(',')}]}`, 'utf8');
  // Node writes a zero mtime and a fixed OS byte: the member depends on the bytes alone.
  const gzip = gzipSync(json, { level: GZIP_LEVEL });
  return { json, gzip, sha256: sha256Hex(json) };
}

/** hex SHA-256 of a stored log file's uncompressed bytes (throws on bad gzip). */
export function uncompressedSha256(gzip: Uint8Array): string {
  return sha256Hex(gunzipSync(gzip));
}
