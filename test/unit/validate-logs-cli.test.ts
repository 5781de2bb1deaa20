import { createPublicKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import { formatSummary } from '../../cli/shared/validate-output';
import {
  parseTimeFlag,
  readPublicKey,
  resolveValidateSettings,
  type ValidateLogsFlags,
} from '../../cli/shared/validate-settings';
import { LocalDirReader, parseSidecar } from '../../cli/shared/local-dir-reader';
import { CHAIN_KEY } from '../fixtures/validate-chain';

const NOW = Date.UTC(2024, 2, 5, 12, 0, 0);

describe('parseTimeFlag', () => {
  it.each<[string, number]>([
    ['2024-03-05T10:00:00Z', Date.UTC(2024, 2, 5, 10)],
    ['2024-03-05T10:00:00', Date.UTC(2024, 2, 5, 10)],
    ['2024-03-05T12:00:00+02:00', Date.UTC(2024, 2, 5, 10)],
    ['2024-03-05', Date.UTC(2024, 2, 5)],
    ['1709632800', Date.UTC(2024, 2, 5, 10)],
  ])('reads %s', (text, ms) => {
    expect(parseTimeFlag(text)).toBe(ms);
  });

  it('names the value it cannot read', () => {
    expect(() => parseTimeFlag('yesterday')).toThrow('Unable to parse date value: yesterday');
  });
});

describe('resolveValidateSettings', () => {
  const base: ValidateLogsFlags = {
    startTime: '2024-03-05T00:00:00Z',
    s3Bucket: 'b',
    publicKey: ['key.pem'],
  };

  it('takes the account, home region and trail name from --trail-arn', () => {
    const settings = resolveValidateSettings(
      { ...base, trailArn: 'arn:aws:cloudtrail:eu-west-1:111111111111:trail/main_trail' },
      {},
      NOW,
    );

    expect(settings).toMatchObject({
      account: '111111111111',
      homeRegion: 'eu-west-1',
      trailName: 'main_trail',
      startMs: Date.UTC(2024, 2, 5),
      endMs: NOW,
    });
  });

  it('lets --account-id override the account of --trail-arn (organization member)', () => {
    const settings = resolveValidateSettings(
      {
        ...base,
        trailArn: 'arn:aws:cloudtrail:eu-west-1:111111111111:trail/t',
        accountId: '222222222222',
      },
      {},
      NOW,
    );

    expect(settings).toMatchObject({ account: '222222222222' });
  });

  it('takes the API, S3 endpoint and bucket from an endpoints file unless flags say otherwise', () => {
    const settings = resolveValidateSettings(
      { startTime: '2024-03-05T00:00:00Z' },
      { api: 'http://127.0.0.1:1', s3: 'http://127.0.0.1:2', bucket: 'logs' },
      NOW,
    );

    expect(settings).toMatchObject({
      endpoint: 'http://127.0.0.1:1',
      s3Endpoint: 'http://127.0.0.1:2',
      bucket: 'logs',
    });
  });

  it.each<[string, ValidateLogsFlags, string]>([
    ['a malformed ARN', { ...base, trailArn: 'arn:aws:s3:::b' }, 'Invalid trail ARN provided'],
    [
      'a trail name unlike the ARN',
      { ...base, trailArn: 'arn:aws:cloudtrail:us-east-1:111111111111:trail/a', trailName: 'b' },
      'differs from the name in --trail-arn',
    ],
    ['a short account', { ...base, accountId: '123' }, '--account-id must be 12 digits'],
    ['a bad start', { ...base, startTime: 'soon' }, 'Unable to parse date value: soon'],
    [
      'an end before the start',
      { ...base, endTime: '2024-03-04T00:00:00Z' },
      'start-time must occur before end-time',
    ],
    ['no bucket', { ...base, s3Bucket: undefined }, '--s3-bucket is required'],
    ['no keys', { ...base, publicKey: [] }, '--public-key FILE (repeatable) or --endpoint URL'],
    [
      'both a local dir and an S3 endpoint',
      { ...base, localDir: 'x', s3Endpoint: 'http://127.0.0.1:1' },
      '--local-dir and --s3-endpoint exclude each other',
    ],
  ])('refuses %s', (_name, flags, message) => {
    expect(resolveValidateSettings(flags, {}, NOW)).toContain(message);
  });
});

describe('readPublicKey', () => {
  const pkcs1 = createPublicKey(CHAIN_KEY).export({ type: 'pkcs1', format: 'der' });
  const fingerprint = fingerprintOfPublicKey(pkcs1);

  it.each<[string, Buffer]>([
    [
      'PKCS#1 PEM',
      Buffer.from(createPublicKey(CHAIN_KEY).export({ type: 'pkcs1', format: 'pem' })),
    ],
    ['SPKI PEM', Buffer.from(createPublicKey(CHAIN_KEY).export({ type: 'spki', format: 'pem' }))],
    ['PKCS#1 DER', pkcs1],
    ['SPKI DER', createPublicKey(CHAIN_KEY).export({ type: 'spki', format: 'der' })],
  ])('reads %s', (_name, bytes) => {
    expect(fingerprintOfPublicKey(readPublicKey(bytes, 'k'))).toBe(fingerprint);
  });

  it('names the file it cannot read', () => {
    expect(() => readPublicKey(Buffer.from('nope'), 'k.pem')).toThrow('--public-key k.pem');
  });
});

describe('formatSummary', () => {
  const range = {
    startMs: Date.UTC(2024, 2, 5),
    endMs: Date.UTC(2024, 2, 6),
    chains: 1,
    uncompressedBytes: 0,
  };

  it.each<[string, Parameters<typeof formatSummary>[0], string[]]>([
    [
      'no digests',
      { ...range, digests: { valid: 0, invalid: 0 }, logs: { valid: 0, invalid: 0 } },
      ['Results requested for 2024-03-05T00:00:00Z to 2024-03-06T00:00:00Z', 'No digests found'],
    ],
    [
      'everything valid',
      {
        ...range,
        foundStartMs: Date.UTC(2024, 2, 5, 1),
        foundEndMs: Date.UTC(2024, 2, 5, 9),
        digests: { valid: 8, invalid: 0 },
        logs: { valid: 20, invalid: 0 },
      },
      [
        'Results requested for 2024-03-05T00:00:00Z to 2024-03-06T00:00:00Z',
        'Results found for 2024-03-05T01:00:00Z to 2024-03-05T09:00:00Z:',
        '',
        '8/8 digest files valid',
        '20/20 log files valid',
      ],
    ],
    [
      'invalid files and no valid digest',
      { ...range, digests: { valid: 0, invalid: 2 }, logs: { valid: 0, invalid: 0 } },
      [
        'Results requested for 2024-03-05T00:00:00Z to 2024-03-06T00:00:00Z',
        'No valid digests found in range',
        '',
        '0/2 digest files valid, 2/2 digest files INVALID',
      ],
    ],
  ])('writes the AWS CLI summary for %s', (_name, summary, lines) => {
    expect(formatSummary(summary)).toEqual(lines);
  });
});

describe('parseSidecar', () => {
  it('reads string fields as lower-case metadata names', () => {
    expect(
      parseSidecar('{"Signature":"ab","signature-algorithm":"SHA256withRSA","n":1}', 'k'),
    ).toEqual({
      signature: 'ab',
      'signature-algorithm': 'SHA256withRSA',
    });
  });

  it.each(['not json', '[]', 'null'])('refuses %j, naming the sidecar', (text) => {
    expect(() => parseSidecar(text, 'a/b.json.gz')).toThrow('a/b.json.gz.metadata.json');
  });
});

describe('LocalDirReader', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'opentrail-local-dir-'));
    mkdirSync(join(dir, 'root', 'a', 'b'), { recursive: true });
    writeFileSync(join(dir, 'root', 'a', 'b', 'k.json.gz'), 'data');
    writeFileSync(join(dir, 'root', 'a', 'b', 'k.json.gz.metadata.json'), '{"signature":"ab"}');
    writeFileSync(join(dir, 'outside'), 'secret');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists keys under a prefix without their sidecars, and folders', async () => {
    const reader = new LocalDirReader(join(dir, 'root'));

    await expect(reader.list('b', 'a/')).resolves.toEqual(['a/b/k.json.gz']);
    await expect(reader.list('b', 'a/b/k')).resolves.toEqual(['a/b/k.json.gz']);
    await expect(reader.list('b', 'z/')).resolves.toEqual([]);
    await expect(reader.listFolders('b', 'a/')).resolves.toEqual(['a/b/']);
  });

  it('opens a key with its sidecar metadata, or without when asked', async () => {
    const reader = new LocalDirReader(join(dir, 'root'));

    const withMetadata = await reader.open('b', 'a/b/k.json.gz');
    const without = await reader.open('b', 'a/b/k.json.gz', { metadata: false });

    expect(withMetadata?.metadata).toEqual({ signature: 'ab' });
    expect(without?.metadata).toEqual({});
    const chunks: Buffer[] = [];
    for await (const chunk of withMetadata!.body) chunks.push(Buffer.from(chunk));
    for await (const _chunk of without!.body) void _chunk;
    expect(Buffer.concat(chunks).toString()).toBe('data');
  });

  it.each(['../outside', 'a/../../outside', 'a/b', 'a/b/missing'])(
    'treats %j as not found',
    async (key) => {
      await expect(new LocalDirReader(join(dir, 'root')).open('b', key)).resolves.toBeUndefined();
    },
  );
});
