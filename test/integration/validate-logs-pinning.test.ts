import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register } from '../../cli/validate-logs';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import { runCommand } from '../support/cli-command';
import { buildChain, CHAIN_KEY, dirSink, writeAll } from '../fixtures/validate-chain';
import { createPublicKey } from 'node:crypto';

/** validate-logs --public-key-fingerprints: only pinned keys vouch for digests. */
const CHAIN_START = Date.UTC(2024, 2, 5, 0, 0, 0);
const OTHER = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
const fingerprint = (key: ReturnType<typeof createPublicKey>) =>
  fingerprintOfPublicKey(key.export({ type: 'pkcs1', format: 'der' }));
const CHAIN_FINGERPRINT = fingerprint(createPublicKey(CHAIN_KEY));
const OTHER_FINGERPRINT = fingerprint(OTHER);

let work: string;
let args: string[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'opentrail-pinning-'));
  const dir = join(work, 'bucket');
  await writeAll(
    dirSink(dir),
    buildChain({ bucket: 'pinned', startMs: CHAIN_START, periods: 3 }).objects,
  );
  const chainKey = join(work, 'chain.pem');
  const otherKey = join(work, 'other.pem');
  writeFileSync(chainKey, createPublicKey(CHAIN_KEY).export({ type: 'spki', format: 'pem' }));
  writeFileSync(otherKey, OTHER.export({ type: 'spki', format: 'pem' }));
  args = [
    '--trail-arn',
    'arn:aws:cloudtrail:us-east-1:111111111111:trail/opentrail',
    '--start-time',
    '2024-03-04T22:00:00Z',
    '--end-time',
    '2024-03-05T10:00:00Z',
    '--local-dir',
    dir,
    '--s3-bucket',
    'pinned',
    '--public-key',
    chainKey,
    '--public-key',
    otherKey,
  ];
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('validate-logs --public-key-fingerprints', () => {
  it('validates the chain when its signing key is pinned', async () => {
    const result = await runCommand(register, 'validate-logs', [
      ...args,
      '--public-key-fingerprints',
      `${OTHER_FINGERPRINT},${CHAIN_FINGERPRINT.toUpperCase()}`,
    ]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/3\/3 digest files valid/);
  });

  it('fails every digest signed by a key that is found but not pinned', async () => {
    const result = await runCommand(register, 'validate-logs', [
      ...args,
      '--public-key-fingerprints',
      OTHER_FINGERPRINT,
    ]);

    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/0\/3 digest files valid/);
  });

  it('without the flag, trusts every key it was given', async () => {
    const result = await runCommand(register, 'validate-logs', args);

    expect(result.exitCode).toBe(0);
  });

  it('refuses a value that is not a fingerprint, naming it', async () => {
    await expect(
      runCommand(register, 'validate-logs', [...args, '--public-key-fingerprints', 'abc']),
    ).rejects.toThrow(/"abc" is not a key fingerprint: 32 hex digits/);
  });
});
