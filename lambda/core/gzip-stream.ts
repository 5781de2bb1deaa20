/**
 * Streaming check of a gzip log file (docs/formats.md#log-files): decodes the FIRST gzip member of a byte
 * stream, hashes its data with SHA-256 as it goes, verifies the member's CRC-32 and length, and
 * counts the bytes that follow the member (another member, or junk), all without holding the
 * file in memory. Node's Gunzip would silently decode concatenated members and skip trailing
 * junk, so the header is read here and the deflate data fed to a raw inflater, whose
 * `bytesWritten` says where the deflate data ended.
 */
import { createHash } from 'node:crypto';
import { crc32, createInflateRaw } from 'node:zlib';

export interface GzipStreamDigest {
  /** hex SHA-256 of the first member's data. */
  readonly sha256: string;
  /** Length of the first member's data. */
  readonly uncompressedBytes: number;
  /** Bytes after the first member (0 for a well-formed log file). */
  readonly trailingBytes: number;
}

/** The bytes are not one readable gzip member (bad header, bad deflate data, CRC, truncation). */
export class GzipFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GzipFormatError';
  }
}

const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;
/** A header longer than this (huge FEXTRA/FNAME) is not a log file. */
const MAX_HEADER_BYTES = 64 * 1024;

/** The header length once `head` holds all of it, else undefined; throws when it is not gzip. */
function headerLength(head: Buffer): number | undefined {
  if (head.length >= 1 && head[0] !== 0x1f) throw new GzipFormatError('not a gzip member');
  if (head.length >= 2 && head[1] !== 0x8b) throw new GzipFormatError('not a gzip member');
  if (head.length >= 3 && head[2] !== 8) throw new GzipFormatError('gzip method is not deflate');
  if (head.length < 10) return undefined;
  const flags = head[3]!;
  let offset = 10;
  if (flags & FEXTRA) {
    if (head.length < offset + 2) return undefined;
    offset += 2 + head.readUInt16LE(offset);
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (flags & flag) {
      const end = head.indexOf(0, offset);
      if (end < 0) return undefined;
      offset = end + 1;
    }
  }
  if (flags & FHCRC) offset += 2;
  return head.length >= offset ? offset : undefined;
}

/** Reads the stream to its end; resolves with the hash of the first member and the trailing count. */
export async function digestGzipStream(body: AsyncIterable<Uint8Array>): Promise<GzipStreamDigest> {
  const hash = createHash('sha256');
  let crc = 0;
  let produced = 0;
  const inflater = createInflateRaw({ chunkSize: 128 * 1024 });
  let inflateError: Error | undefined;
  inflater.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    crc = crc32(chunk, crc);
    produced += chunk.length;
  });
  const ended = new Promise<void>((resolve) => {
    inflater.on('end', resolve);
    inflater.on('error', (error) => {
      inflateError = error;
      resolve();
    });
  });

  let head: Buffer | undefined = Buffer.alloc(0);
  /** Bytes of the deflate data and after, fed or not, counted from the end of the header. */
  let afterHeader = 0;
  /** Chunks that may hold the 8-byte trailer: [offset after header, bytes]. */
  const kept: { offset: number; bytes: Buffer }[] = [];
  let deflateEnded = false;
  let consumed = 0;

  const feed = async (bytes: Buffer): Promise<void> => {
    const offset = afterHeader;
    afterHeader += bytes.length;
    if (!deflateEnded) {
      kept.push({ offset, bytes });
      await Promise.race([
        new Promise<void>((resolve) => inflater.write(bytes, () => resolve())),
        ended,
      ]);
      consumed = inflater.bytesWritten;
      // The inflater took less than it was given: the deflate data ended in this chunk.
      if (consumed < afterHeader || inflateError) deflateEnded = true;
      while (kept.length > 0 && kept[0]!.offset + kept[0]!.bytes.length <= consumed) kept.shift();
    } else if (offset < consumed + 8) {
      // Only the trailer is still of interest; the rest is counted, not kept.
      kept.push({ offset, bytes: bytes.subarray(0, 8) });
    }
  };

  try {
    for await (const chunk of body) {
      const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (head !== undefined) {
        head = Buffer.concat([head, bytes]);
        const length = headerLength(head);
        if (length === undefined) {
          if (head.length > MAX_HEADER_BYTES) throw new GzipFormatError('gzip header too long');
          continue;
        }
        const rest = head.subarray(length);
        head = undefined;
        if (rest.length > 0) await feed(rest);
      } else {
        await feed(bytes);
      }
    }
  } catch (error) {
    inflater.destroy();
    throw error;
  }
  if (head !== undefined) {
    inflater.destroy();
    throw new GzipFormatError('truncated gzip header');
  }
  if (!inflateError) inflater.end();
  await ended;
  if (inflateError) throw new GzipFormatError(`bad deflate data: ${inflateError.message}`);
  if (!deflateEnded) consumed = inflater.bytesWritten;

  const trailer = Buffer.alloc(8);
  let have = 0;
  for (const { offset, bytes } of kept) {
    const from = Math.max(0, consumed + have - offset);
    if (from >= bytes.length) continue;
    have += bytes.copy(trailer, have, from, Math.min(bytes.length, from + 8 - have));
    if (have === 8) break;
  }
  if (have < 8 || afterHeader < consumed + 8) throw new GzipFormatError('truncated gzip member');
  if (trailer.readUInt32LE(0) !== crc >>> 0)
    throw new GzipFormatError('gzip member CRC does not match its data');
  if (trailer.readUInt32LE(4) !== produced % 2 ** 32)
    throw new GzipFormatError('gzip member length does not match its data');
  return {
    sha256: hash.digest('hex'),
    uncompressedBytes: produced,
    trailingBytes: afterHeader - consumed - 8,
  };
}
