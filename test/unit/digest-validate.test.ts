import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { digestKey, fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import {
  formatResult,
  gapPeriods,
  tailPeriods,
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

function digestKeyAt(endMs: number, trailName = 'opentrail'): string {
  return digestKey({
    account: '111111111111',
    region: 'us-east-1',
    trailName,
    homeRegion: 'us-east-1',
    endMs,
  });
}

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

  it('reports every due period after the newest digest of a chain known to be alive, one line each, and none before its first', async () => {
    const end = Date.UTC(2029, 0, 1);
    const { summary, lines } = await run(chain.objects, {
      startMs: T0 - 48 * HOUR,
      endMs: end,
      expectations: [
        { trailName: 'opentrail', account: '111111111111', region: 'us-east-1', firstStartMs: T0 },
      ],
    });

    const invalid = lines.filter((line) => line.includes('INVALID'));
    // Every hourly period from the chain's last digest (T0 + 6 h) to the range end is missing.
    expect(invalid).toHaveLength((end - (T0 + 6 * HOUR)) / HOUR);
    expect(invalid[0]).toBe(`Digest file\ts3://b/${digestKeyAt(end)}\tINVALID: not found`);
    expect(invalid[invalid.length - 1]).toBe(
      `Digest file\ts3://b/${digestKeyAt(T0 + 7 * HOUR)}\tINVALID: not found`,
    );
    expect(summary.digests).toEqual({ valid: 6, invalid: invalid.length });
  });

  it('reports no period before a chain starts, nor one that ended less than the grace ago', async () => {
    // The period T0+6h..T0+7h is due one hour (the grace) after it ends.
    const nowMs = T0 + 7 * HOUR + 59 * 60_000;
    const { lines } = await run(chain.objects, {
      startMs: T0 - 48 * HOUR,
      endMs: Date.UTC(2029, 0, 1),
      nowMs,
      expectations: [
        { trailName: 'opentrail', account: '111111111111', region: 'us-east-1', firstStartMs: T0 },
      ],
    });
    const late = await run(chain.objects, {
      startMs: T0 - 48 * HOUR,
      endMs: Date.UTC(2029, 0, 1),
      nowMs: nowMs + 2 * 60_000,
      expectations: [
        { trailName: 'opentrail', account: '111111111111', region: 'us-east-1', firstStartMs: T0 },
      ],
    });

    expect(lines.filter((line) => line.includes('INVALID'))).toEqual([]);
    expect(late.lines.filter((line) => line.includes('INVALID'))).toEqual([
      `Digest file\ts3://b/${digestKeyAt(T0 + 7 * HOUR)}\tINVALID: not found`,
    ]);
  });

  it('without an expectation cannot judge the tail (what --expect and GetTrailStatus are for)', async () => {
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
    // Digest folders, then the log folders searched for files no digest names.
    expect(reader.listed.filter((p) => p.includes('/CloudTrail-Digest/')).length).toBeLessThan(12);
    expect(reader.listed.filter((p) => p.includes('/CloudTrail/')).length).toBeLessThan(8);
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

describe('expected periods', () => {
  const H = HOUR;
  const at = (h: number, m = 0): number => T0 + h * H + m * 60_000;

  it.each<[string, number, number, number | undefined, [number, number][]]>([
    ['one missing hour', at(1), at(2), undefined, [[at(1), at(2)]]],
    [
      'two consecutive hours, newest first',
      at(1),
      at(3),
      undefined,
      [
        [at(2), at(3)],
        [at(1), at(2)],
      ],
    ],
    [
      'after an early-closed digest (10:20): the rest of its hour, then whole hours',
      at(1, 20),
      at(3),
      undefined,
      [
        [at(2), at(3)],
        [at(1, 20), at(2)],
      ],
    ],
    ['nothing when the digests touch', at(2), at(2), undefined, []],
    [
      'only periods ending after the range start',
      at(0),
      at(3),
      at(1, 30),
      [
        [at(2), at(3)],
        [at(1), at(2)],
      ],
    ],
  ])('gapPeriods: %s', (_name, from, to, after, expected) => {
    expect(gapPeriods(from, to, H, after).map((p) => [p.startMs, p.endMs])).toEqual(expected);
  });

  it('gapPeriods: an early close known from GetTrailStatus splits its hour, so both digests are named', () => {
    expect(
      gapPeriods(at(1), at(3), H, -Infinity, [at(2, 20)]).map((p) => [p.startMs, p.endMs]),
    ).toEqual([
      [at(2, 20), at(3)],
      [at(2), at(2, 20)],
      [at(1), at(2)],
    ]);
  });

  it('tailPeriods: an early close known from GetTrailStatus is followed', () => {
    expect(
      tailPeriods(at(6), {
        periodMs: H,
        dueMs: at(9),
        beforeMs: at(99),
        earlyEndsMs: [at(6, 30)],
      }).map((p) => [p.startMs, p.endMs]),
    ).toEqual([
      [at(6), at(6, 30)],
      [at(6, 30), at(7)],
      [at(7), at(8)],
      [at(8), at(9)],
    ]);
  });

  it.each<
    [string, number, { dueMs: number; beforeMs: number; headEndMs?: number }, [number, number][]]
  >([
    ['none before the grace has passed', at(6), { dueMs: at(6, 59), beforeMs: at(99) }, []],
    [
      'every due hour after the newest digest, oldest first',
      at(6),
      { dueMs: at(8, 30), beforeMs: at(99) },
      [
        [at(6), at(7)],
        [at(7), at(8)],
      ],
    ],
    [
      'up to the head the signer recorded even inside the grace, early close included',
      at(6),
      { dueMs: at(5), beforeMs: at(99), headEndMs: at(7, 20) },
      [
        [at(6), at(7)],
        [at(7), at(7, 20)],
      ],
    ],
    [
      'none starting at or after the range end',
      at(6),
      { dueMs: at(20), beforeMs: at(7) },
      [[at(6), at(7)]],
    ],
  ])('tailPeriods: %s', (_name, from, options, expected) => {
    expect(tailPeriods(from, { periodMs: H, ...options }).map((p) => [p.startMs, p.endMs])).toEqual(
      expected,
    );
  });
});

describe('validateLogs tamper evidence', () => {
  const chain = buildChain({ bucket: 'b', startMs: T0, periods: 6, logsPerPeriod: 1 });
  const alive = {
    expectations: [
      { trailName: 'opentrail', account: '111111111111', region: 'us-east-1', firstStartMs: T0 },
    ],
  };
  const without = (...keys: string[]): StoredObject[] =>
    chain.objects.filter((o) => !keys.includes(o.key));

  it('names both of two consecutive deleted digests', async () => {
    const { lines } = await run(without(chain.digests[2]!.key, chain.digests[3]!.key));

    // Their log files are left: no digest names them now.
    expect(lines.filter((line) => line.includes('INVALID'))).toEqual([
      `Digest file\ts3://b/${chain.digests[3]!.key}\tINVALID: not found`,
      `Digest file\ts3://b/${chain.digests[2]!.key}\tINVALID: not found`,
      ...[2, 3].map(
        (i) =>
          `Log file\ts3://b/${chain.digests[i]!.logKeys[0]}\tINVALID: not listed in any digest file`,
      ),
    ]);
  });

  it('names the deleted newest digests when the chain is known to go on', async () => {
    const { lines } = await run(
      without(
        chain.digests[4]!.key,
        chain.digests[5]!.key,
        ...chain.digests[4]!.logKeys,
        ...chain.digests[5]!.logKeys,
      ),
      { ...alive, endMs: T0 + 6 * HOUR },
    );

    expect(lines.filter((line) => line.includes('INVALID'))).toEqual([
      `Digest file\ts3://b/${chain.digests[5]!.key}\tINVALID: not found`,
      `Digest file\ts3://b/${chain.digests[4]!.key}\tINVALID: not found`,
    ]);
  });

  it('names every digest of a chain whose digests were all deleted', async () => {
    const { lines, summary } = await run(
      chain.objects.filter((o) => !o.key.includes('CloudTrail-Digest')),
      { ...alive, endMs: T0 + 6 * HOUR },
    );

    expect(lines.filter((line) => line.startsWith('Digest file'))).toEqual(
      [...chain.digests].reverse().map((d) => `Digest file\ts3://b/${d.key}\tINVALID: not found`),
    );
    // The log files are still there, but no digest names them.
    expect(lines.filter((line) => line.startsWith('Log file')).sort()).toEqual(
      chain.logKeys
        .map((key) => `Log file\ts3://b/${key}\tINVALID: not listed in any digest file`)
        .sort(),
    );
    expect(summary.digests).toEqual({ valid: 0, invalid: 6 });
  });

  it('reports a log file no digest names, and not one a later digest names', async () => {
    const forged = chain.digests[2]!.logKeys[0]!.replace(
      /_[A-Za-z0-9]{16}\.json\.gz$/,
      '_FORGEDFORGEDFORG.json.gz',
    );
    const forgedObject = {
      key: forged,
      body: chain.objects.find((o) => o.key === chain.digests[2]!.logKeys[0])!.body,
    };

    const { lines } = await run([...chain.objects, forgedObject]);
    // A range that ends before the digest naming the file: that digest is read too.
    const early = await run(chain.objects, { endMs: T0 + 2 * HOUR + 1 });

    expect(lines.filter((line) => line.includes('INVALID'))).toEqual([
      `Log file\ts3://b/${forged}\tINVALID: not listed in any digest file`,
    ]);
    expect(early.lines.filter((line) => line.includes('INVALID'))).toEqual([]);
  });

  it('refuses a digest whose end lies outside its key validity window', async () => {
    const [fingerprint] = [...KEYS.keys()];
    const windowed = new Map([
      [fingerprint!, { der: PUBLIC_DER, validFromMs: T0, validUntilMs: T0 + 4 * HOUR }],
    ]);

    const { lines } = await run(chain.objects, { publicKeys: windowed });

    expect(lines.filter((line) => line.includes('INVALID'))).toEqual(
      [5, 4].map(
        (i) =>
          `Digest file\ts3://b/${chain.digests[i]!.key}\tINVALID: digestEndTime ${chain.digests[i]!.digest.digestEndTime} lies outside the validity of public key ${fingerprint} (2024-03-05T21:00:00Z to 2024-03-06T01:00:00Z)`,
      ),
    );
  });
});
