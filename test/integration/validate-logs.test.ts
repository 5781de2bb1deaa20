import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createClients, destroyClients, type Clients } from '../../lambda/adapters/clients';
import {
  digestKey,
  fingerprintOfPublicKey,
  type DigestFile,
} from '../../lambda/core/digest-format';
import { encodeLogFile } from '../../lambda/core/logfile';
import { ensureBucket, type Emulators } from '../../local/emulators';
import { startLimitedEmulators } from '../support/limited-dynalite';
import { runValidateLogs } from '../../cli/shared/validate-run';
import { resolveValidateSettings } from '../../cli/shared/validate-settings';
import {
  buildChain,
  CHAIN_PUBLIC_PEM,
  digestMetadata,
  dirSink,
  s3Sink,
  signDigest,
  writeAll,
  type BuiltChain,
  type ObjectSink,
} from '../fixtures/validate-chain';
import { credentialsInEnv } from '../support/emulator-clients';

const HOUR = 3_600_000;
const CHAIN_START = Date.UTC(2024, 2, 5, 0, 0, 0);
const FOREIGN = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

let work: string;
let emulators: Emulators;
/** The S3 emulator's key in AWS_* env vars: the standard chain of --s3-endpoint runs. */
let restoreEnv: () => void = () => undefined;
let clients: Clients;
let publicKeyFile: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'opentrail-validate-'));
  emulators = await startLimitedEmulators({ dataDir: join(work, 'emulators') });
  restoreEnv = credentialsInEnv(emulators.credentials);
  clients = createClients({
    region: 'us-east-1',
    s3Endpoint: emulators.s3Endpoint,
    credentials: emulators.credentials,
  });
  publicKeyFile = join(work, 'key.pem');
  writeFileSync(publicKeyFile, CHAIN_PUBLIC_PEM);
});

afterAll(async () => {
  restoreEnv();
  destroyClients(clients);
  await emulators.close();
  rmSync(work, { recursive: true, force: true });
});

/** Six hourly digests from CHAIN_START, two log files each but period 4 empty. */
function chainFor(bucket: string): BuiltChain {
  return buildChain({ bucket, startMs: CHAIN_START, periods: 6, emptyPeriods: [4] });
}

interface Place {
  readonly bucket: string;
  readonly sink: ObjectSink;
  readonly flags: { s3Endpoint?: string; localDir?: string };
}

let places = 0;
async function newPlace(mode: 'online' | 'offline'): Promise<Place> {
  const bucket = `validate-${++places}`;
  if (mode === 'online') {
    await ensureBucket(clients.s3, bucket);
    return {
      bucket,
      sink: s3Sink(clients.s3, bucket),
      flags: { s3Endpoint: emulators.s3Endpoint },
    };
  }
  const dir = join(work, bucket);
  return { bucket, sink: dirSink(dir), flags: { localDir: dir } };
}

async function validate(
  place: Place,
  extra: { verbose?: boolean; startTime?: string; endTime?: string; output?: 'json' } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const settings = resolveValidateSettings(
    {
      trailArn: 'arn:aws:cloudtrail:us-east-1:111111111111:trail/opentrail',
      region: 'us-east-1',
      startTime: extra.startTime ?? '2024-03-04T22:00:00Z',
      endTime: extra.endTime ?? '2024-03-05T10:00:00Z',
      s3Bucket: place.bucket,
      publicKey: [publicKeyFile],
      ...place.flags,
    },
    {},
    Date.now(),
  );
  if (typeof settings === 'string') throw new Error(settings);
  let stdout = '';
  let stderr = '';
  const code = await runValidateLogs(
    settings,
    {
      verbose: extra.verbose ?? false,
      output: extra.output ?? 'text',
      concurrency: 8,
      sign: 'auto',
      nowMs: Date.now(),
    },
    {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
    },
  );
  return { code, stdout, stderr };
}

function invalidLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.includes('\tINVALID: '));
}

/** Re-signs an edited digest with `key` (the real one by default), keeping its key. */
function resigned(
  chain: BuiltChain,
  index: number,
  edit: (d: DigestFile) => DigestFile,
  key = undefined as Parameters<typeof signDigest>[1],
): { key: string; body: Buffer; metadata: Record<string, string> } {
  const original = chain.digests[index]!;
  const signed = signDigest(edit(original.digest), key);
  return { key: original.key, body: signed.body, metadata: digestMetadata(signed.signature) };
}

/** The lines for log files no digest names, in key order (as reported, after the digests). */
function unlisted(bucket: string, keys: readonly string[]): string[] {
  return [...keys]
    .sort()
    .map((key) => `Log file\ts3://${bucket}/${key}\tINVALID: not listed in any digest file`);
}

type Tamper = (chain: BuiltChain, sink: ObjectSink, bucket: string) => Promise<string[]>;

const TAMPERS: [string, Tamper][] = [
  [
    "a log file's bytes changed",
    async (chain, sink, bucket) => {
      const key = chain.digests[1]!.logKeys[0]!;
      await sink.put({ key, body: encodeLogFile(['{"eventID":"forged"}']).gzip });
      return [`Log file\ts3://${bucket}/${key}\tINVALID: hash value doesn't match`];
    },
  ],
  [
    'a log file deleted',
    async (chain, sink, bucket) => {
      const key = chain.digests[3]!.logKeys[1]!;
      await sink.remove(key);
      return [`Log file\ts3://${bucket}/${key}\tINVALID: not found`];
    },
  ],
  [
    'a log file with bytes appended after its gzip stream',
    async (chain, sink, bucket) => {
      const key = chain.digests[5]!.logKeys[0]!;
      const original = chain.objects.find((o) => o.key === key)!;
      await sink.put({ key, body: Buffer.concat([original.body, gzipSync('{"Records":[]}')]) });
      return [
        `Log file\ts3://${bucket}/${key}\tINVALID: unexpected data after end of compressed stream`,
      ];
    },
  ],
  [
    'a log file that is not gzip',
    async (chain, sink, bucket) => {
      const key = chain.digests[0]!.logKeys[1]!;
      await sink.put({ key, body: Buffer.from('{"Records":[]}') });
      return [`Log file\ts3://${bucket}/${key}\tINVALID: invalid format`];
    },
  ],
  [
    "a digest's JSON changed",
    async (chain, sink, bucket) => {
      const d = chain.digests[3]!;
      const stored = chain.objects.find((o) => o.key === d.key)!;
      const json = gunzipSync(stored.body)
        .toString()
        .replace(d.digest.logFiles[0]!.hashValue, '0'.repeat(64));
      await sink.put({ key: d.key, body: gzipSync(json), metadata: stored.metadata! });
      return [`Digest file\ts3://${bucket}/${d.key}\tINVALID: signature verification failed`];
    },
  ],
  [
    'a digest that is not JSON',
    async (chain, sink, bucket) => {
      const d = chain.digests[2]!;
      await sink.put({
        key: d.key,
        body: gzipSync('not json'),
        metadata: digestMetadata(d.signature),
      });
      // Its log files are then named by no readable digest.
      return [
        `Digest file\ts3://${bucket}/${d.key}\tINVALID: invalid format`,
        ...unlisted(bucket, d.logKeys),
      ];
    },
  ],
  [
    'a digest deleted (a gap)',
    async (chain, sink, bucket) => {
      await sink.remove(chain.digests[2]!.key);
      return [
        `Digest file\ts3://${bucket}/${chain.digests[2]!.key}\tINVALID: not found`,
        ...unlisted(bucket, chain.digests[2]!.logKeys),
      ];
    },
  ],
  [
    'the oldest digest deleted while the range starts before it',
    async (chain, sink, bucket) => {
      await sink.remove(chain.digests[0]!.key);
      return [
        `Digest file\ts3://${bucket}/${chain.digests[0]!.key}\tINVALID: not found`,
        ...unlisted(bucket, chain.digests[0]!.logKeys),
      ];
    },
  ],
  [
    'a digest re-signed with a foreign key',
    async (chain, sink, bucket) => {
      await sink.put(resigned(chain, 3, (d) => d, FOREIGN));
      return [
        `Digest file\ts3://${bucket}/${chain.digests[3]!.key}\tINVALID: signature verification failed`,
      ];
    },
  ],
  [
    'a digest re-signed with a foreign key that names its own fingerprint',
    async (chain, sink, bucket) => {
      const foreign = fingerprintOfPublicKey(
        createPublicKey(FOREIGN).export({ type: 'pkcs1', format: 'der' }),
      );
      await sink.put(
        resigned(chain, 1, (d) => ({ ...d, digestPublicKeyFingerprint: foreign }), FOREIGN),
      );
      return [
        `Digest file\ts3://${bucket}/${chain.digests[1]!.key}\tINVALID: public key not found in region us-east-1 for fingerprint ${foreign}`,
      ];
    },
  ],
  [
    'a digest copied to another key',
    async (chain, sink, bucket) => {
      const d = chain.digests[1]!;
      const copyKey = digestKey({
        account: '111111111111',
        region: 'us-east-1',
        trailName: 'opentrail',
        homeRegion: 'us-east-1',
        endMs: CHAIN_START + 2 * HOUR + 30 * 60_000,
      });
      const stored = chain.objects.find((o) => o.key === d.key)!;
      await sink.put({ ...stored, key: copyKey });
      return [
        `Digest file\ts3://${bucket}/${copyKey}\tINVALID: has been moved from its original location`,
      ];
    },
  ],
  [
    'a previousDigestHashValue altered and re-signed with the real key',
    async (chain, sink, bucket) => {
      await sink.put(
        resigned(chain, 5, (d) => ({ ...d, previousDigestHashValue: 'f'.repeat(64) })),
      );
      return [
        `Digest file\ts3://${bucket}/${chain.digests[5]!.key}\tINVALID: previous digest hash value doesn't match`,
      ];
    },
  ],
  [
    'a previousDigestSignature altered and re-signed with the real key',
    async (chain, sink, bucket) => {
      await sink.put(
        resigned(chain, 5, (d) => ({ ...d, previousDigestSignature: 'ab'.repeat(256) })),
      );
      return [
        `Digest file\ts3://${bucket}/${chain.digests[5]!.key}\tINVALID: previous digest signature doesn't match`,
      ];
    },
  ],
  [
    'a chain restarted (previousDigest* null) and re-signed with the real key',
    async (chain, sink, bucket) => {
      await sink.put(
        resigned(chain, 5, (d) => ({
          ...d,
          previousDigestS3Bucket: null,
          previousDigestS3Object: null,
          previousDigestHashValue: null,
          previousDigestHashAlgorithm: null,
          previousDigestSignature: null,
        })),
      );
      return [
        `Digest file\ts3://${bucket}/${chain.digests[5]!.key}\tINVALID: previous digest location doesn't match`,
      ];
    },
  ],
  [
    'a digest whose signature metadata is gone',
    async (chain, sink, bucket) => {
      const d = chain.digests[4]!;
      const stored = chain.objects.find((o) => o.key === d.key)!;
      await sink.remove(d.key);
      await sink.put({ key: d.key, body: stored.body });
      return [`Digest file\ts3://${bucket}/${d.key}\tINVALID: signature verification failed`];
    },
  ],
];

describe.each(['online', 'offline'] as const)('validate-logs %s', (mode) => {
  it('reports every digest and log file valid on an untouched chain, newest first, and exits 0', async () => {
    const place = await newPlace(mode);
    const chain = chainFor(place.bucket);
    await writeAll(place.sink, chain.objects);

    const result = await validate(place, { verbose: true });

    expect(result).toMatchObject({ code: 0, stderr: '' });
    const lines = result.stdout.split('\n');
    const digestLines = lines.filter((line) => line.startsWith('Digest file\t'));
    expect(digestLines).toEqual(
      [...chain.digests].reverse().map((d) => `Digest file\ts3://${place.bucket}/${d.key}\tvalid`),
    );
    expect(lines.filter((line) => line.startsWith('Log file\t')).sort()).toEqual(
      chain.logKeys.map((key) => `Log file\ts3://${place.bucket}/${key}\tvalid`).sort(),
    );
    expect(result.stdout).toContain(
      'Validating log files for trail arn:aws:cloudtrail:us-east-1:111111111111:trail/opentrail between 2024-03-04T22:00:00Z and 2024-03-05T10:00:00Z\n\n',
    );
    expect(result.stdout).toMatch(
      /\n\nResults requested for 2024-03-04T22:00:00Z to 2024-03-05T10:00:00Z\nResults found for 2024-03-05T00:00:00Z to 2024-03-05T06:00:00Z:\n\n6\/6 digest files valid\n10\/10 log files valid\n\n$/,
    );
  });

  it('prints only the summary without --verbose, and a JSON summary with --output json', async () => {
    const place = await newPlace(mode);
    await writeAll(place.sink, chainFor(place.bucket).objects);

    const text = await validate(place);
    const json = await validate(place, { output: 'json' });

    expect(text.stdout).not.toContain('\tvalid');
    expect(text.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      digests: { valid: 6, invalid: 0, total: 6 },
      logs: { valid: 10, invalid: 0, total: 10 },
      found: { start: '2024-03-05T00:00:00Z', end: '2024-03-05T06:00:00Z' },
      invalid: [],
    });
  });

  it('validates only the digests a sub-range needs (the one covering its end included)', async () => {
    const place = await newPlace(mode);
    await writeAll(place.sink, chainFor(place.bucket).objects);

    const result = await validate(place, {
      startTime: '2024-03-05T01:30:00Z',
      endTime: '2024-03-05T03:30:00Z',
    });

    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      'Results found for 2024-03-05T01:30:00Z to 2024-03-05T03:30:00Z:',
    );
    expect(result.stdout).toContain('3/3 digest files valid\n6/6 log files valid');
  });

  it('says No digests found for a range without digests', async () => {
    const place = await newPlace(mode);
    await writeAll(place.sink, chainFor(place.bucket).objects);

    const result = await validate(place, {
      startTime: '2024-03-06T00:00:00Z',
      endTime: '2024-03-06T05:00:00Z',
    });

    expect(result.stdout).toContain(
      'Results requested for 2024-03-06T00:00:00Z to 2024-03-06T05:00:00Z\nNo digests found\n',
    );
  });

  it.each(TAMPERS)('catches %s and exits 1', async (_name, tamper) => {
    const place = await newPlace(mode);
    const chain = chainFor(place.bucket);
    await writeAll(place.sink, chain.objects);
    const expected = await tamper(chain, place.sink, place.bucket);

    const result = await validate(place);

    expect(result.code).toBe(1);
    expect(invalidLines(result.stderr)).toEqual(expected);
    expect(result.stdout).toMatch(/ files INVALID\n/);
  });
});

describe('validate-logs chain check', () => {
  it('flags both links when a middle digest is re-signed with an altered previous hash', async () => {
    const place = await newPlace('offline');
    const chain = chainFor(place.bucket);
    await writeAll(place.sink, chain.objects);
    await place.sink.put(
      resigned(chain, 3, (d) => ({ ...d, previousDigestHashValue: 'f'.repeat(64) })),
    );

    const result = await validate(place);

    expect(invalidLines(result.stderr)).toEqual([
      `Digest file\ts3://${place.bucket}/${chain.digests[4]!.key}\tINVALID: previous digest hash value doesn't match`,
      `Digest file\ts3://${place.bucket}/${chain.digests[3]!.key}\tINVALID: previous digest hash value doesn't match`,
    ]);
  });
});

describe('validate-logs tamper evidence (s3rver)', () => {
  // The chain is known to exist from CHAIN_START (as GetTrailStatus or --expect would say).
  const EXPECT = 'opentrail,111111111111,us-east-1,2024-03-05T00:00:00Z';

  async function tampered(
    tamper: (chain: BuiltChain, place: Place) => Promise<void>,
    extra: { expect?: string[]; endTime?: string; grace?: number } = {},
  ): Promise<{ code: number; lines: string[]; chain: BuiltChain; bucket: string; stdout: string }> {
    const place = await newPlace('online');
    const chain = chainFor(place.bucket);
    await writeAll(place.sink, chain.objects);
    await tamper(chain, place);
    const settings = resolveValidateSettings(
      {
        trailArn: 'arn:aws:cloudtrail:us-east-1:111111111111:trail/opentrail',
        region: 'us-east-1',
        startTime: '2024-03-04T22:00:00Z',
        endTime: extra.endTime ?? '2024-03-05T06:00:00Z',
        s3Bucket: place.bucket,
        publicKey: [publicKeyFile],
        expect: extra.expect ?? [EXPECT],
        ...(extra.grace !== undefined ? { grace: extra.grace } : {}),
        ...place.flags,
      },
      {},
      Date.now(),
    );
    if (typeof settings === 'string') throw new Error(settings);
    let stdout = '';
    let stderr = '';
    const code = await runValidateLogs(
      settings,
      { verbose: false, output: 'text', concurrency: 8, sign: 'auto', nowMs: Date.now() },
      {
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: (s: string) => (stderr += s) },
      },
    );
    return { code, lines: invalidLines(stderr), chain, bucket: place.bucket, stdout };
  }

  const notFound = (bucket: string, key: string): string =>
    `Digest file\ts3://${bucket}/${key}\tINVALID: not found`;

  it('exits 0 on the untouched chain known to exist, and says the tail was checked', async () => {
    const result = await tampered(() => Promise.resolve());

    expect(result.code).toBe(0);
    expect(result.lines).toEqual([]);
    expect(result.stdout).not.toContain('Not checked');
  });

  it('names each deleted newest digest (their log files deleted too) and exits 1', async () => {
    const result = await tampered(async (chain, place) => {
      for (const d of chain.digests.slice(4)) {
        await place.sink.remove(d.key);
        for (const key of d.logKeys) await place.sink.remove(key);
      }
    });

    expect(result.code).toBe(1);
    expect(result.lines).toEqual([
      notFound(result.bucket, result.chain.digests[5]!.key),
      notFound(result.bucket, result.chain.digests[4]!.key),
    ]);
  });

  it('passes the same deletion without --expect: the tail cannot be judged from the bucket alone', async () => {
    const result = await tampered(
      async (chain, place) => {
        for (const d of chain.digests.slice(4)) {
          await place.sink.remove(d.key);
          for (const key of d.logKeys) await place.sink.remove(key);
        }
      },
      { expect: [] },
    );

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Not checked: where each chain begins and ends');
  });

  it('names every digest when all of them are deleted, and every log file left unnamed', async () => {
    const result = await tampered(async (chain, place) => {
      for (const d of chain.digests) await place.sink.remove(d.key);
    });

    expect(result.code).toBe(1);
    expect(result.lines).toEqual([
      ...[...result.chain.digests].reverse().map((d) => notFound(result.bucket, d.key)),
      ...unlisted(result.bucket, result.chain.logKeys),
    ]);
  });

  it('names both of two consecutive deleted digests', async () => {
    const result = await tampered(async (chain, place) => {
      for (const d of chain.digests.slice(2, 4)) {
        await place.sink.remove(d.key);
        for (const key of d.logKeys) await place.sink.remove(key);
      }
    });

    expect(result.code).toBe(1);
    expect(result.lines).toEqual([
      notFound(result.bucket, result.chain.digests[3]!.key),
      notFound(result.bucket, result.chain.digests[2]!.key),
    ]);
  });

  it('reports a forged log file that no digest lists, and exits 1', async () => {
    let forged = '';
    const result = await tampered(async (chain, place) => {
      const real = chain.digests[1]!.logKeys[0]!;
      forged = real.replace(/_[A-Za-z0-9]{16}\.json\.gz$/, '_Forged0000000000.json.gz');
      await place.sink.put({ key: forged, body: encodeLogFile(['{"eventID":"forged"}']).gzip });
    });

    expect(result.code).toBe(1);
    expect(result.lines).toEqual([
      `Log file\ts3://${result.bucket}/${forged}\tINVALID: not listed in any digest file`,
    ]);
  });
});
