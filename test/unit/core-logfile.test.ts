import { createHash } from 'node:crypto';
import { crc32, gunzipSync, inflateRawSync } from 'node:zlib';
import { encodeLogFile, MAX_RECORDS_PER_FILE, uncompressedSha256 } from '../../lambda/core/logfile';

const RECORDS: [string, string[], string][] = [
  ['no records', [], '{"Records":[]}'],
  ['one record', ['{"eventID":"a"}'], '{"Records":[{"eventID":"a"}]}'],
  [
    'records kept as their stored texts',
    ['{"eventID":"a","n":12345678901234567890}', '{"eventID":"b","p":1.50,"u":"ü 😀 \\"q\\""}'],
    '{"Records":[{"eventID":"a","n":12345678901234567890},{"eventID":"b","p":1.50,"u":"ü 😀 \\"q\\""}]}',
  ],
];

/** Splits a gzip member: header length (no optional fields), deflate length consumed, trailer. */
function members(gzip: Buffer): { deflateEnd: number; crc: number; isize: number } {
  expect(gzip[3]).toBe(0); // FLG: no name, comment, extra or header CRC: header is 10 bytes
  const { engine } = inflateRawSync(gzip.subarray(10), { info: true }) as unknown as {
    engine: { bytesWritten: number };
  };
  const deflateEnd = 10 + engine.bytesWritten;
  return {
    deflateEnd,
    crc: gzip.readUInt32LE(deflateEnd),
    isize: gzip.readUInt32LE(deflateEnd + 4),
  };
}

describe('encodeLogFile', () => {
  it.each(RECORDS)('with %s gives exactly {"Records":[...]}', (_, texts, expected) => {
    // Act
    const file = encodeLogFile(texts);

    // Assert
    expect(file.json.toString('utf8')).toBe(expected);
  });

  it.each(RECORDS)('with %s gives a gzip that inflates to the JSON', (_, texts) => {
    // Act
    const file = encodeLogFile(texts);

    // Assert
    expect(gunzipSync(file.gzip).equals(file.json)).toBe(true);
  });

  it.each(RECORDS)('with %s gives identical bytes for identical input', (_, texts) => {
    // Act
    const first = encodeLogFile(texts);
    const second = encodeLogFile([...texts]);

    // Assert
    expect(second.gzip.equals(first.gzip)).toBe(true);
    expect(second.sha256).toBe(first.sha256);
  });

  it.each(RECORDS)(
    'with %s writes a gzip header with magic, deflate and a zero mtime',
    (_, texts) => {
      // Act
      const { gzip } = encodeLogFile(texts);

      // Assert
      expect([...gzip.subarray(0, 3)]).toEqual([0x1f, 0x8b, 0x08]);
      expect(gzip.readUInt32LE(4)).toBe(0);
    },
  );

  it.each(RECORDS)('with %s writes one gzip member and no trailing bytes', (_, texts) => {
    // Act
    const file = encodeLogFile(texts);

    // Assert
    const { deflateEnd, crc, isize } = members(file.gzip);
    expect(deflateEnd + 8).toBe(file.gzip.length);
    expect(isize).toBe(file.json.length);
    expect(crc).toBe(crc32(file.json));
  });

  it.each(RECORDS)(
    'with %s gives the hex SHA-256 of the uncompressed bytes',
    (_, texts, expected) => {
      // Act
      const file = encodeLogFile(texts);

      // Assert
      expect(file.sha256).toBe(createHash('sha256').update(expected, 'utf8').digest('hex'));
      expect(uncompressedSha256(file.gzip)).toBe(file.sha256);
    },
  );

  it('gives different bytes for records in another order', () => {
    // Act
    const ab = encodeLogFile(['{"a":1}', '{"b":2}']);
    const ba = encodeLogFile(['{"b":2}', '{"a":1}']);

    // Assert
    expect(ab.sha256).not.toBe(ba.sha256);
  });

  it('accepts exactly 50,000 records', () => {
    // Arrange
    const texts = Array.from({ length: MAX_RECORDS_PER_FILE }, () => '{}');

    // Act
    const file = encodeLogFile(texts);

    // Assert
    expect(MAX_RECORDS_PER_FILE).toBe(50_000);
    expect(file.json.length).toBe('{"Records":[]}'.length + 50_000 * 3 - 1);
  });

  it('refuses 50,001 records', () => {
    // Arrange
    const texts = Array.from({ length: MAX_RECORDS_PER_FILE + 1 }, () => '{}');

    // Act
    const encode = (): unknown => encodeLogFile(texts);

    // Assert
    expect(encode).toThrow(RangeError);
  });
});

describe('uncompressedSha256', () => {
  it('refuses bytes that are not gzip', () => {
    // Act
    const hash = (): string => uncompressedSha256(Buffer.from('{"Records":[]}'));

    // Assert
    expect(hash).toThrow();
  });
});
