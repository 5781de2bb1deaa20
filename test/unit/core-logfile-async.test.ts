import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  encodeLogFile,
  encodeLogFileAsync,
  MAX_RECORDS_PER_FILE,
  sha256Hex,
  uncompressedSha256Async,
} from '../../lambda/core/logfile';
import { fixtureRecords } from '../fixtures/cloudtrail-data';

/** The real records as stored texts, so the bytes compared are a real log file's. */
const REAL_TEXTS = fixtureRecords().map(({ record }) => JSON.stringify(record));

describe('encodeLogFileAsync (the packager compresses on the thread pool)', () => {
  it.each([
    ['no records', [] as string[]],
    ['one record with non-ASCII text', ['{"eventID":"b","u":"ü 😀 \\"q\\""}']],
    [`the ${REAL_TEXTS.length} real records`, REAL_TEXTS],
  ])('gives byte for byte what encodeLogFile gives for %s', async (_, texts) => {
    const sync = encodeLogFile(texts);

    const encoded = await encodeLogFileAsync(texts.map((text) => Buffer.from(text, 'utf8')));

    // A retry after an upgrade must write the same object: same JSON, same gzip member, same hash.
    expect(encoded.json.equals(sync.json)).toBe(true);
    expect(encoded.gzip.equals(sync.gzip)).toBe(true);
    expect(encoded.sha256).toBe(sync.sha256);
  });

  it('refuses more records than a log file holds, naming the limit', async () => {
    const records = Array.from({ length: MAX_RECORDS_PER_FILE + 1 }, () => Buffer.from('{}'));

    await expect(encodeLogFileAsync(records)).rejects.toThrow(
      `a log file holds at most ${MAX_RECORDS_PER_FILE} records, got ${MAX_RECORDS_PER_FILE + 1}`,
    );
  });
});

describe('uncompressedSha256Async', () => {
  it('hashes the uncompressed bytes of a stored log file', async () => {
    const json = Buffer.from(`{"Records":[${REAL_TEXTS.slice(0, 20).join(',')}]}`);

    const hash = await uncompressedSha256Async(gzipSync(json));

    expect(hash).toBe(createHash('sha256').update(json).digest('hex'));
  });

  it('rejects bytes that are not gzip', async () => {
    await expect(uncompressedSha256Async(Buffer.from('{"Records":[]}'))).rejects.toThrow(
      /incorrect header check/,
    );
  });
});

describe('sha256Hex', () => {
  it.each([
    ['an empty string', ''],
    ['a string with characters beyond ASCII', 'ü 😀 \u0000 \uffff'],
    ['bytes', Buffer.from([0, 1, 2, 255])],
  ])('gives the SHA-256 of the UTF-8 bytes of %s', (_, input) => {
    expect(sha256Hex(input)).toBe(createHash('sha256').update(input).digest('hex'));
  });
});
