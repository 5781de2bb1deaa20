/**
 * Log-file integrity through the embedded runtime: a replay of real CloudTrail logs with
 * 3-second digest periods, `opentrail digest` to close the open one, then every (trail,
 * account, region) has a signed chain whose digests together list every log file in the
 * bucket exactly once; the signatures verify under the key ListPublicKeys serves, and
 * `opentrail validate-logs` agrees (exit 0).
 */
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseLogFileKey } from '../../lambda/core/layout';
import {
  parseDigest,
  parseDigestKey,
  signingString,
  verifyDigestSignature,
  type DigestFile,
} from '../../lambda/core/digest-format';
import { LIST_PUBLIC_KEYS_TARGET } from '../../lambda/core/public-keys';
import { sha256Hex } from '../../lambda/core/logfile';
import { fixtureRecords } from '../fixtures/cloudtrail-data';
import { waitForLogRecords } from '../support/log-check';
import { S3DigestStore } from '../../lambda/adapters/s3-digests';
import {
  clientsFor,
  destroyClients,
  listKeys,
  replayFixtures,
  runCli,
  runtimeForSuite,
} from './harness';

const DIGEST_PERIOD_SECONDS = 3;

describe('signed digest chains in the embedded runtime', () => {
  const suite = runtimeForSuite([
    '--flush-seconds',
    '1',
    '--digest-period',
    String(DIGEST_PERIOD_SECONDS),
  ]);

  it('after a replay and `opentrail digest`, every log file is in exactly one valid digest of its chain', async () => {
    const { runtime, dataDir } = suite;
    const sent = await replayFixtures(runtime.endpoints.api);
    expect(sent.code).toBe(0);
    const clients = clientsFor(runtime.endpoints);
    try {
      await waitForLogRecords(clients, runtime.endpoints, fixtureRecords().length);
      // Let at least one regular period close on its own, then close the open one now.
      await new Promise((resolve) => setTimeout(resolve, DIGEST_PERIOD_SECONDS * 1000 + 1500));
      const closed = await runCli([
        'digest',
        '--endpoint',
        runtime.endpoints.api,
        '--output',
        'json',
      ]);
      expect(closed.code).toBe(0);
      expect(JSON.parse(closed.stdout)).toMatchObject({ digests: expect.any(Array) });

      const bucket = runtime.endpoints.bucket;
      const keys = await listKeys(clients, bucket);
      const logFiles = keys.filter((k) => parseLogFileKey(k) !== undefined);
      const digestKeys = keys.filter((k) => parseDigestKey(k) !== undefined);
      expect(logFiles.length).toBeGreaterThan(0);

      const keysResponse = await fetch(`${runtime.endpoints.api}/`, {
        method: 'POST',
        headers: {
          'X-Amz-Target': LIST_PUBLIC_KEYS_TARGET,
          'Content-Type': 'application/x-amz-json-1.1',
        },
        body: JSON.stringify({ StartTime: 0 }),
      });
      const { PublicKeyList } = (await keysResponse.json()) as {
        PublicKeyList: { Value: string; Fingerprint: string }[];
      };
      expect(PublicKeyList).toHaveLength(1);
      const publicKey = Buffer.from(PublicKeyList[0]!.Value, 'base64');

      // One chain per (trail, account, region) that has log files.
      const streams = new Set(
        logFiles.map((k) => {
          const p = parseLogFileKey(k)!;
          return `${p.account}/${p.region}`;
        }),
      );
      const chains = new Map<
        string,
        { key: string; json: Buffer; digest: DigestFile; signature: string }[]
      >();
      const store = new S3DigestStore(clients.s3);
      for (const key of digestKeys.sort()) {
        const p = parseDigestKey(key)!;
        const stored = (await store.getWithMetadata(bucket, key))!;
        const json = gunzipSync(stored.body);
        const digest = parseDigest(json);
        const signature = stored.metadata.signature!;
        expect(digest.digestPublicKeyFingerprint).toBe(PublicKeyList[0]!.Fingerprint);
        expect(
          verifyDigestSignature(
            signingString(digest, sha256Hex(json), digest.previousDigestSignature),
            signature,
            publicKey,
          ),
        ).toBe(true);
        const id = `${p.account}/${p.region}`;
        chains.set(id, [...(chains.get(id) ?? []), { key, json, digest, signature }]);
      }
      expect([...chains.keys()].sort()).toEqual([...streams].sort());
      for (const chain of chains.values()) {
        chain.forEach((entry, i) => {
          const previous = chain[i - 1];
          if (!previous) return expect(entry.digest.previousDigestS3Object).toBeNull();
          expect(entry.digest.digestStartTime).toBe(previous.digest.digestEndTime);
          expect(entry.digest.previousDigestHashValue).toBe(sha256Hex(previous.json));
          expect(entry.digest.previousDigestSignature).toBe(previous.signature);
        });
      }
      const listed = [...chains.values()].flatMap((c) =>
        c.flatMap((d) => d.digest.logFiles.map((f) => f.s3Object)),
      );
      expect(listed.sort()).toEqual([...logFiles].sort());

      const validated = await runCli([
        'validate-logs',
        '--endpoints',
        join(dataDir, 'endpoints.json'),
        '--start-time',
        '2000-01-01T00:00:00Z',
      ]);
      expect(validated.stderr).not.toMatch(/INVALID/);
      expect(validated.code).toBe(0);
      // The signer keeps closing periods meanwhile: at least the digests seen above.
      const valid = /(\d+)\/(\d+) digest files valid/.exec(validated.stdout);
      expect(valid?.[1]).toBe(valid?.[2]);
      expect(Number(valid?.[1])).toBeGreaterThanOrEqual(digestKeys.length);
      expect(validated.stdout).toContain(`${logFiles.length}/${logFiles.length} log files valid`);
    } finally {
      destroyClients(clients);
    }
  });
});
