/**
 * Log-file bodies (docs/formats.md#log-files): `{"Records":[...]}`, one gzip member, no trailing bytes, and
 * the same bytes for the same records (gzip header mtime 0, fixed level), so a retried batch
 * writes exactly what its first attempt wrote.
 */
import * as crypto from 'node:crypto';
import { promisify } from 'node:util';
import { crc32, gunzip, gunzipSync, gzip, gzipSync, inflateRawSync } from 'node:zlib';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export const MAX_RECORDS_PER_FILE = 50_000;
const GZIP_LEVEL = 6;
/**
 * Log files from this size (uncompressed) are compressed on the thread pool; measured with the
 * packager bench: below it the round trip's CPU outweighs what the packager's thread gains.
 */
const THREAD_POOL_MIN_BYTES = 256 * 1024;
/** Largest output chunk of the thread-pool gzip (zlib's default is 16 KB). */
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

export interface EncodedLogFile {
  /** The uncompressed JSON. */
  readonly json: Buffer;
  /** The gzip member as stored. */
  readonly gzip: Buffer;
  /** hex SHA-256 of `json`: what the manifest and the digests record. */
  readonly sha256: string;
}

/**
 * One-shot `crypto.hash` (Node 20.12+) where it exists: no Hash object per call, which the
 * packager makes one of per record. The same digest as createHash either way.
 */
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array | string) => string })
  .hash;

export function sha256Hex(bytes: Uint8Array | string): string {
  return oneShot !== undefined
    ? oneShot('sha256', bytes)
    : crypto.createHash('sha256').update(bytes).digest('hex');
}

function logFileJson(recordTexts: readonly string[]): Buffer {
  if (recordTexts.length > MAX_RECORDS_PER_FILE) {
    throw new RangeError(
      `a log file holds at most ${MAX_RECORDS_PER_FILE} records, got ${recordTexts.length}`,
    );
  }
  return Buffer.from(`{"Records":[${recordTexts.join(',')}]}`, 'utf8');
}

/** Encodes records given as their stored JSON texts, in the order given. */
export function encodeLogFile(recordTexts: readonly string[]): EncodedLogFile {
  const json = logFileJson(recordTexts);
  // Node writes a zero mtime and a fixed OS byte: the member depends on the bytes alone.
  const gzip = gzipSync(json, { level: GZIP_LEVEL });
  return { json, gzip, sha256: sha256Hex(json) };
}

const RECORDS_OPEN = Buffer.from('{"Records":[');
const RECORDS_CLOSE = Buffer.from(']}');
const COMMA = 0x2c;

/** logFileJson of records given as their UTF-8 bytes: one copy of each, no string between. */
function logFileJsonOfBytes(records: readonly Uint8Array[]): Buffer {
  if (records.length > MAX_RECORDS_PER_FILE) {
    throw new RangeError(
      `a log file holds at most ${MAX_RECORDS_PER_FILE} records, got ${records.length}`,
    );
  }
  let length = RECORDS_OPEN.length + RECORDS_CLOSE.length + Math.max(records.length - 1, 0);
  for (const record of records) length += record.byteLength;
  const json = Buffer.allocUnsafe(length);
  let at = RECORDS_OPEN.copy(json, 0);
  for (let i = 0; i < records.length; i++) {
    if (i > 0) json[at++] = COMMA;
    json.set(records[i]!, at);
    at += records[i]!.byteLength;
  }
  RECORDS_CLOSE.copy(json, at);
  return json;
}

/**
 * encodeLogFile of records given as their UTF-8 bytes (the packager's stream records), with the
 * compression of large files on libuv's thread pool: the same bytes, while this thread hashes,
 * parses or sends other files (the packager writes several at once). Small files are
 * compressed here: a thread-pool round trip costs more CPU than it frees.
 */
export async function encodeLogFileAsync(records: readonly Uint8Array[]): Promise<EncodedLogFile> {
  const json = logFileJsonOfBytes(records);
  if (json.length < THREAD_POOL_MIN_BYTES)
    return { json, gzip: gzipSync(json, { level: GZIP_LEVEL }), sha256: sha256Hex(json) };
  // One output chunk for the whole member where it fits: each chunk is a round trip between
  // the thread pool and this thread. The bytes do not depend on the chunk size.
  const chunkSize = Math.min(json.length, MAX_CHUNK_BYTES);
  const compressing = gzipAsync(json, { level: GZIP_LEVEL, chunkSize });
  const sha256 = sha256Hex(json);
  return { json, gzip: await compressing, sha256 };
}

/** hex SHA-256 of a stored log file's uncompressed bytes (throws on bad gzip). */
export function uncompressedSha256(gzip: Uint8Array): string {
  return sha256Hex(gunzipSync(gzip));
}

/** uncompressedSha256 with the decompression on libuv's thread pool. */
export async function uncompressedSha256Async(gzip: Uint8Array): Promise<string> {
  return sha256Hex(await gunzipAsync(gzip));
}

/** gzip header flags (RFC 1952) that add fields after the 10-byte fixed header. */
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;
const FHCRC = 2;

/**
 * Decodes the FIRST gzip member of `bytes` and says how many bytes follow it. CloudTrail log
 * files are exactly one member: anything after it (another member, or junk) is invalid. Node's
 * gunzip would silently decode concatenated members, so this reads the member itself.
 */
export function readGzipMember(bytes: Uint8Array): {
  readonly data: Buffer;
  readonly trailingBytes: number;
} {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 18 || buf[0] !== 0x1f || buf[1] !== 0x8b || buf[2] !== 8)
    throw new Error('not a gzip member');
  const flags = buf[3]!;
  let offset = 10;
  if (flags & FEXTRA) offset += 2 + buf.readUInt16LE(offset);
  for (const flag of [FNAME, FCOMMENT]) {
    if (flags & flag) {
      const end = buf.indexOf(0, offset);
      if (end < 0) throw new Error('truncated gzip header');
      offset = end + 1;
    }
  }
  if (flags & FHCRC) offset += 2;
  const { buffer, engine } = inflateRawSync(buf.subarray(offset), { info: true }) as unknown as {
    buffer: Buffer;
    engine: { bytesWritten: number };
  };
  const end = offset + engine.bytesWritten + 8;
  if (end > buf.length) throw new Error('truncated gzip member');
  if (buf.readUInt32LE(end - 8) !== crc32(buffer))
    throw new Error('gzip member CRC does not match its data');
  if (buf.readUInt32LE(end - 4) !== buffer.length % 2 ** 32)
    throw new Error('gzip member length does not match');
  return { data: buffer, trailingBytes: buf.length - end };
}
