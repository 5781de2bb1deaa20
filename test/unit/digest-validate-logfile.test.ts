import { gzipSync } from 'node:zlib';
import { digestGzipMember, MAX_LOG_FILE_BYTES } from '../../lambda/core/digest-validate-logfile';
import { GzipFormatError } from '../../lambda/core/gzip-stream';
import { sha256Hex } from '../../lambda/core/logfile';

describe('digestGzipMember, the log-file check validate-logs runs on its workers', () => {
  const data = Buffer.from(`{"Records":[${'{"eventID":"abc"},'.repeat(200)}{}]}`);
  const member = gzipSync(data);

  it('hashes the data of a gzip member and counts nothing after it', () => {
    expect(digestGzipMember(member)).toEqual({
      sha256: sha256Hex(data),
      uncompressedBytes: data.length,
      trailingBytes: 0,
    });
  });

  it('reads bytes that are a view into a larger buffer', () => {
    const larger = Buffer.concat([Buffer.from('prefix'), member, Buffer.from('suffix')]);
    const view = new Uint8Array(larger.buffer, larger.byteOffset + 6, member.length);

    expect(digestGzipMember(view)).toMatchObject({ sha256: sha256Hex(data), trailingBytes: 0 });
  });

  it.each<[string, Buffer, number]>([
    ['junk', Buffer.from('junk'), 4],
    ['a second member', gzipSync('more'), gzipSync('more').length],
    ['one byte', Buffer.from([0]), 1],
  ])('counts %s after the member, and hashes only the first member', (_name, tail, expected) => {
    const result = digestGzipMember(Buffer.concat([member, tail]));

    expect(result.trailingBytes).toBe(expected);
    expect(result.sha256).toBe(sha256Hex(data));
  });

  it('reads a header with extra field, file name, comment and header CRC', () => {
    // FEXTRA | FNAME | FCOMMENT | FHCRC, then the deflate data and trailer of a plain member.
    const header = Buffer.from([0x1f, 0x8b, 8, 4 | 8 | 16 | 2, 0, 0, 0, 0, 0, 3]);
    const bytes = Buffer.concat([
      header,
      Buffer.from([3, 0, 1, 2, 3]),
      Buffer.from('a.json\0hi\0'),
      Buffer.from([0xaa, 0xbb]),
      member.subarray(10),
    ]);

    expect(digestGzipMember(bytes)).toMatchObject({ sha256: sha256Hex(data), trailingBytes: 0 });
  });

  const corruptCrc = Buffer.from(member);
  corruptCrc[corruptCrc.length - 8] = corruptCrc[corruptCrc.length - 8]! ^ 1;
  const corruptLength = Buffer.from(member);
  corruptLength[corruptLength.length - 1] = corruptLength[corruptLength.length - 1]! ^ 1;
  const corruptDeflate = Buffer.from(member);
  corruptDeflate[10] = 0xff; // BTYPE 11, reserved: not deflate data
  const notDeflate = Buffer.from(member);
  notDeflate[2] = 7;
  const named = Buffer.from(member);
  named[3] = 8;

  it.each<[string, Buffer, string]>([
    ['plain JSON', data, 'not a gzip member'],
    ['an empty body', Buffer.alloc(0), 'truncated gzip header'],
    [
      'a wrong second magic byte',
      Buffer.from([0x1f, 0x8c, ...member.subarray(2)]),
      'not a gzip member',
    ],
    ['a method other than deflate', notDeflate, 'gzip method is not deflate'],
    ['a truncated header', member.subarray(0, 5), 'truncated gzip header'],
    ['a file name without its end', named.subarray(0, 14), 'truncated gzip header'],
    [
      'a truncated extra field',
      Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 9]),
      'truncated gzip header',
    ],
    ['a truncated member', member.subarray(0, member.length - 3), 'truncated gzip member'],
    [
      'a member without its trailer',
      member.subarray(0, member.length - 8),
      'truncated gzip member',
    ],
    ['a wrong CRC', corruptCrc, 'gzip member CRC does not match its data'],
    ['a wrong length', corruptLength, 'gzip member length does not match its data'],
    ['corrupt deflate data', corruptDeflate, 'bad deflate data'],
  ])('rejects %s', (_name, bytes, message) => {
    const check = (): unknown => digestGzipMember(bytes);

    expect(check).toThrow(GzipFormatError);
    expect(check).toThrow(message);
  });

  it('refuses a file that inflates past the limit (a decompression bomb) instead of holding it', () => {
    const zeros = gzipSync(Buffer.alloc(1024 * 1024));

    expect(MAX_LOG_FILE_BYTES).toBe(1024 ** 3);
    expect(digestGzipMember(zeros, 1024 * 1024).uncompressedBytes).toBe(1024 * 1024);
    expect(() => digestGzipMember(zeros, 1024 * 1024 - 1)).toThrow(
      new GzipFormatError('data larger than 1048575 bytes'),
    );
  });
});
