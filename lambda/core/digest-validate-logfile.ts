/**
 * One log file's check for validate-logs (docs/formats.md#what-validation-checks): its bytes must
 * be ONE gzip member with nothing after it, whose CRC-32 and length match its data; the result
 * is the SHA-256 of that data. Synchronous and self-contained, so it runs as it is in a worker
 * thread (cli/shared/validate-workers.ts) or in the caller's thread.
 *
 * The cost is that of a plain gunzip + SHA-256 of the file: the header is parsed here, the
 * deflate data inflated in one call (whose `bytesWritten` says where the member's deflate data
 * ends, so a second member or junk after it is counted, not decoded), and the CRC-32 is the one
 * a gunzip computes too. The compressed bytes are held whole (the caller reads them; bounded by
 * its concurrency); the data is held while it is hashed, at most `maxBytes`.
 */
import { createHash } from 'node:crypto';
import { crc32, inflateRawSync } from 'node:zlib';
import { GzipFormatError, type GzipStreamDigest } from './gzip-stream';

const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;
const GZIP_HEADER_BYTES = 10;
const GZIP_TRAILER_BYTES = 8;

/**
 * Uncompressed bytes a log file may hold. CloudTrail's own files stay far below it; a file that
 * inflates past it (a decompression bomb) is reported as not a log file instead of filling memory.
 */
export const MAX_LOG_FILE_BYTES = 1024 * 1024 * 1024;

/** Length of the gzip header at the start of `bytes`; throws when it is not a gzip member. */
function headerLength(bytes: Buffer): number {
  if (bytes.length < GZIP_HEADER_BYTES) {
    if (bytes.length >= 1 && bytes[0] !== 0x1f) throw new GzipFormatError('not a gzip member');
    throw new GzipFormatError('truncated gzip header');
  }
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) throw new GzipFormatError('not a gzip member');
  if (bytes[2] !== 8) throw new GzipFormatError('gzip method is not deflate');
  const flags = bytes[3]!;
  let offset = GZIP_HEADER_BYTES;
  if (flags & FEXTRA) {
    if (bytes.length < offset + 2) throw new GzipFormatError('truncated gzip header');
    offset += 2 + bytes.readUInt16LE(offset);
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (flags & flag) {
      const end = bytes.indexOf(0, offset);
      if (end < 0) throw new GzipFormatError('truncated gzip header');
      offset = end + 1;
    }
  }
  if (flags & FHCRC) offset += 2;
  if (offset > bytes.length) throw new GzipFormatError('truncated gzip header');
  return offset;
}

/**
 * Checks one log file's bytes: the SHA-256 and length of its first gzip member's data and the
 * count of bytes after that member. Throws GzipFormatError when the bytes are not one readable
 * gzip member (bad header, bad deflate data, CRC or length mismatch, truncation).
 */
export function digestGzipMember(
  file: Uint8Array,
  maxBytes: number = MAX_LOG_FILE_BYTES,
): GzipStreamDigest {
  const bytes = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const deflate = bytes.subarray(headerLength(bytes));
  let data: Buffer;
  let consumed: number;
  try {
    const inflated = inflateRawSync(deflate, {
      info: true,
      maxOutputLength: maxBytes,
    }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    data = inflated.buffer;
    consumed = inflated.engine.bytesWritten;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE')
      throw new GzipFormatError(`data larger than ${maxBytes} bytes`);
    throw new GzipFormatError(`bad deflate data: ${(error as Error).message}`);
  }
  // inflateRawSync returns what it decoded of a deflate stream cut short: all input consumed
  // and no room for the trailer means the member is truncated.
  if (deflate.length < consumed + GZIP_TRAILER_BYTES)
    throw new GzipFormatError('truncated gzip member');
  if (deflate.readUInt32LE(consumed) !== crc32(data) >>> 0)
    throw new GzipFormatError('gzip member CRC does not match its data');
  if (deflate.readUInt32LE(consumed + 4) !== data.length % 2 ** 32)
    throw new GzipFormatError('gzip member length does not match its data');
  return {
    sha256: createHash('sha256').update(data).digest('hex'),
    uncompressedBytes: data.length,
    trailingBytes: deflate.length - consumed - GZIP_TRAILER_BYTES,
  };
}
