import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import {
  formatResult,
  validateLogs,
  type ValidateLogsOptions,
  type ValidationResult,
} from '../../lambda/core/digest-validate';
import { digestGzipStream, GzipFormatError } from '../../lambda/core/gzip-stream';
import { sha256Hex } from '../../lambda/core/logfile';
import type { ObjectReader, OpenedObject } from '../../lambda/core/ports';
import { buildChain, CHAIN_KEY, type StoredObject } from '../fixtures/validate-chain';

async function* chunks(bytes: Buffer, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}
async function* pieces(parts: Buffer[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield part;
}

describe('digestGzipStream', () => {
  const data = Buffer.from(`{"Records":[${'{"eventID":"abc"},'.repeat(200)}{}]}`);
  const member = gzipSync(data);

  it('hashes the same at every split point of the stream', async () => {
    for (let at = 0; at <= member.length; at++) {
      const result = await digestGzipStream(pieces([member.subarray(0, at), member.subarray(at)]));
      expect(result).toEqual({
        sha256: sha256Hex(data),
        uncompressedBytes: data.length,
        trailingBytes: 0,
      });
    }
  });

  it.each<[string, Buffer, number]>([
    ['junk', Buffer.from('junk'), 4],
    ['a second member', gzipSync('more'), gzipSync('more').length],
    ['one byte', Buffer.from([0]), 1],
  ])('counts %s after the member at every split point', async (_name, tail, expected) => {
    const bytes = Buffer.concat([member, tail]);
    for (let at = 0; at <= bytes.length; at += 3) {
      const result = await digestGzipStream(pieces([bytes.subarray(0, at), bytes.subarray(at)]));
      expect(result.trailingBytes).toBe(expected);
      expect(result.sha256).toBe(sha256Hex(data));
    }
  });

  it('reads a header with a file name and a comment', async () => {
    // FNAME | FCOMMENT, then the deflate data and trailer of a plain member.
    const header = Buffer.from([0x1f, 0x8b, 8, 8 | 16, 0, 0, 0, 0, 0, 3]);
    const bytes = Buffer.concat([header, Buffer.from('a.json\0hi\0'), member.subarray(10)]);

    await expect(digestGzipStream(chunks(bytes, 5))).resolves.toMatchObject({
      sha256: sha256Hex(data),
      trailingBytes: 0,
    });
  });

  const corruptCrc = Buffer.from(member);
  corruptCrc[corruptCrc.length - 8] = corruptCrc[corruptCrc.length - 8]! ^ 1;
  const corruptLength = Buffer.from(member);
  corruptLength[corruptLength.length - 1] = corruptLength[corruptLength.length - 1]! ^ 1;
  const corruptDeflate = Buffer.from(member);
  corruptDeflate[12] = corruptDeflate[12]! ^ 0xff;

  it.each<[string, Buffer]>([
    ['plain JSON', data],
    ['an empty body', Buffer.alloc(0)],
    ['a truncated header', member.subarray(0, 5)],
    ['a truncated member', member.subarray(0, member.length - 3)],
    ['a member without its trailer', member.subarray(0, member.length - 8)],
    ['a wrong CRC', corruptCrc],
    ['a wrong length', corruptLength],
    ['corrupt deflate data', corruptDeflate],
  ])('rejects %s', async (_name, bytes) => {
    await expect(digestGzipStream(chunks(bytes, 7))).rejects.toBeInstanceOf(GzipFormatError);
  });
});

/** An in-memory bucket. */
function memoryReader(
  objects: readonly StoredObject[],
): ObjectReader & { opened: string[]; listed: string[] } {
  const byKey = new Map(objects.map((o) => [o.key, o]));
  const opened: string[] = [];
  const listed: string[] = [];
  return {
    opened,
    listed,
    list: (_bucket, prefix) => {
      listed.push(prefix);
      return Promise.resolve([...byKey.keys()].filter((key) => key.startsWith(prefix)));
    },
    listFolders: (_bucket, prefix) => {
      listed.push(prefix);
      return Promise.resolve([
        ...new Set(
          [...byKey.keys()]
            .filter((key) => key.startsWith(prefix) && key.indexOf('/', prefix.length) > 0)
            .map((key) => key.slice(0, key.indexOf('/', prefix.length) + 1)),
        ),
      ]);
    },
    open: (_bucket, key): Promise<OpenedObject | undefined> => {
      opened.push(key);
      const object = byKey.get(key);
      return Promise.resolve(
        object && { body: chunks(object.body, 1000), metadata: object.metadata ?? {} },
      );
    },
  };
}

const PUBLIC_DER = createPublicKey(CHAIN_KEY).export({ type: 'pkcs1', format: 'der' });
const KEYS = new Map([[fingerprintOfPublicKey(PUBLIC_DER), PUBLIC_DER]]);
const T0 = Date.UTC(2024, 2, 5, 21, 0, 0);
const HOUR = 3_600_000;

async function run(
  objects: readonly StoredObject[],
  options: Partial<ValidateLogsOptions> = {},
): Promise<{ lines: string[]; summary: Awaited<ReturnType<typeof validateLogs>> }> {
  const results: ValidationResult[] = [];
  const summary = await validateLogs({
    reader: memoryReader(objects),
    bucket: 'b',
    startMs: T0 - HOUR,
    endMs: T0 + 10 * HOUR,
    nowMs: Date.UTC(2030, 0, 1),
    publicKeys: KEYS,
    onResult: (r) => results.push(r),
    ...options,
  });
  return { lines: results.map(formatResult), summary };
}

describe('validateLogs', () => {
  // Six hourly periods from 21:00, so the chain crosses midnight into the next day's folder.
  const chain = buildChain({ bucket: 'b', startMs: T0, periods: 6, logsPerPeriod: 1 });
  const otherRegion = buildChain({ bucket: 'b', startMs: T0, periods: 2, region: 'eu-west-1' });
  const otherAccount = buildChain({
    bucket: 'b',
    startMs: T0,
    periods: 3,
    account: '222222222222',
    trailName: 'second_trail',
  });
  const all = [...chain.objects, ...otherRegion.objects, ...otherAccount.objects];

  it.each<[string, Partial<ValidateLogsOptions>, number, number]>([
    ['every chain found when nothing is named', {}, 11, 16],
    ['one region', { regions: ['eu-west-1'] }, 2, 4],
    ['one account', { accounts: ['222222222222'] }, 3, 6],
    ['one trail name', { trailName: 'second_trail' }, 3, 6],
    ['a home region with no digests', { homeRegion: 'eu-central-1' }, 0, 0],
    [
      'a range inside the chain',
      {
        startMs: T0 + HOUR,
        endMs: T0 + 2 * HOUR,
        regions: ['us-east-1'],
        accounts: ['111111111111'],
      },
      1,
      1,
    ],
  ])('validates %s', async (_name, options, digests, logs) => {
    const { summary } = await run(all, options);

    expect(summary.digests).toEqual({ valid: digests, invalid: 0 });
    expect(summary.logs).toEqual({ valid: logs, invalid: 0 });
  });

  it('orders the lines digest by digest, newest first, whatever the concurrency', async () => {
    const serial = await run(chain.objects, { concurrency: 1 });
    const parallel = await run(chain.objects, { concurrency: 32 });

    expect(parallel.lines).toEqual(serial.lines);
    expect(serial.lines.slice(0, 2)).toEqual([
      `Digest file\ts3://b/${chain.digests[5]!.key}\tvalid`,
      `Log file\ts3://b/${chain.digests[5]!.logKeys[0]}\tvalid`,
    ]);
  });

  it('treats neither the time before the first digest nor a future end time as a gap', async () => {
    const { summary, lines } = await run(chain.objects, {
      startMs: T0 - 48 * HOUR,
      endMs: Date.UTC(2029, 0, 1),
    });

    expect(lines.filter((line) => line.includes('INVALID'))).toEqual([]);
    expect(summary).toMatchObject({ foundStartMs: T0, foundEndMs: T0 + 6 * HOUR });
  });

  it('finds digests under a key prefix, and none without it', async () => {
    const prefixed = buildChain({ bucket: 'b', startMs: T0, periods: 2, prefix: 'audit/prod' });

    const withPrefix = await run(prefixed.objects, { prefix: 'audit/prod' });
    const without = await run(prefixed.objects);

    expect(withPrefix.summary.digests).toEqual({ valid: 2, invalid: 0 });
    expect(without.summary.digests).toEqual({ valid: 0, invalid: 0 });
  });

  it('lists only day folders inside the range and never opens a digest outside it', async () => {
    const reader = memoryReader(chain.objects);
    await validateLogs({
      reader,
      bucket: 'b',
      startMs: T0 + 4 * HOUR + 1,
      endMs: T0 + 5 * HOUR,
      nowMs: Date.UTC(2030, 0, 1),
      publicKeys: KEYS,
      onResult: () => undefined,
    });

    expect(reader.opened.filter((key) => key.includes('CloudTrail-Digest'))).toEqual([
      chain.digests[4]!.key,
    ]);
  });

  it('walks only the year, month and day folders that exist for a range of decades', async () => {
    const reader = memoryReader(chain.objects);
    const results: ValidationResult[] = [];

    const summary = await validateLogs({
      reader,
      bucket: 'b',
      startMs: Date.UTC(2000, 0, 1),
      endMs: Date.UTC(2030, 0, 1),
      nowMs: Date.UTC(2030, 0, 1),
      publicKeys: KEYS,
      onResult: (r) => results.push(r),
    });

    expect(summary.digests).toEqual({ valid: 6, invalid: 0 });
    expect(reader.listed.length).toBeLessThan(12);
  });

  it('validates a chain across a key change with both keys, and names the fingerprint it lacks', async () => {
    const next = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const nextDer = createPublicKey(next).export({ type: 'pkcs1', format: 'der' });
    const changed = buildChain({
      bucket: 'b',
      startMs: T0,
      periods: 4,
      privateKeyFor: (period) => (period < 2 ? CHAIN_KEY : next),
    });

    const both = await run(changed.objects, {
      publicKeys: new Map([...KEYS, [fingerprintOfPublicKey(nextDer), nextDer]]),
    });
    const oldOnly = await run(changed.objects);

    expect(both.summary.digests).toEqual({ valid: 4, invalid: 0 });
    expect(oldOnly.lines.filter((line) => line.includes('INVALID'))).toEqual(
      [3, 2].map(
        (i) =>
          `Digest file\ts3://b/${changed.digests[i]!.key}\tINVALID: public key not found in region us-east-1 for fingerprint ${fingerprintOfPublicKey(nextDer)}`,
      ),
    );
  });
});
