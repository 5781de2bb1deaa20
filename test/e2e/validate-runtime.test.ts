/**
 * validate-logs over what the embedded runtime's signer wrote (short --digest-period, a replay
 * of test/fixtures/cloudtrail-data, `opentrail digest` to close the open period): online with
 * --endpoint (ListPublicKeys) and --s3-endpoint, offline on a downloaded copy with metadata
 * sidecars, and a log file deleted from the runtime's bucket caught online.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CloudTrailClient, GetTrailStatusCommand } from '@aws-sdk/client-cloudtrail';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { parseDigestKey } from '../../lambda/core/digest-format';
import { fixtureRecords } from '../fixtures/cloudtrail-data';
import { waitForLogRecords } from '../support/log-check';
import {
  clientsFor,
  destroyClients,
  getObject,
  listKeys,
  replayFixtures,
  runCli,
  runtimeForSuite,
} from './harness';
import { credentialsInEnv } from '../support/emulator-clients';

const DIGEST_PERIOD_SECONDS = 4;

describe('validate-logs over the embedded runtime', () => {
  const suite = runtimeForSuite([
    '--flush-seconds',
    '1',
    '--digest-period',
    String(DIGEST_PERIOD_SECONDS),
  ]);
  // The --s3-endpoint runs sign with the standard credential chain: here the run's own key, as
  // `eval "$(npx opentrail env)"` exports it (the CLI children inherit the environment).
  let restoreEnv = (): void => undefined;
  beforeEach(() => {
    restoreEnv = credentialsInEnv(suite.runtime.endpoints);
  });
  afterEach(() => restoreEnv());

  it('finds every digest and log file valid online and offline, and a deleted log file missing', async () => {
    const startTime = new Date(Date.now() - 60_000).toISOString();
    const { runtime, dataDir } = suite;
    const sent = await replayFixtures(runtime.endpoints.api);
    expect(sent.code).toBe(0);
    const clients = clientsFor(runtime.endpoints);
    try {
      const bucket = runtime.endpoints.bucket;
      await waitForLogRecords(clients, runtime.endpoints, fixtureRecords().length);
      const closed = await runCli(['digest', '--endpoints', join(dataDir, 'endpoints.json')]);
      expect(closed.code).toBe(0);
      const keys = await listKeys(clients, bucket, 'AWSLogs/');
      const logKeys = keys.filter((key) => key.includes('/CloudTrail/'));
      const digestKeys = keys.filter((key) => key.includes('/CloudTrail-Digest/'));
      const online = [
        'validate-logs',
        '--s3-bucket',
        bucket,
        '--s3-endpoint',
        runtime.endpoints.s3,
        '--endpoint',
        runtime.endpoints.api,
        '--start-time',
        startTime,
        '--end-time',
        '2099-01-01T00:00:00Z',
        '--output',
        'json',
        '--verbose',
      ];

      const result = await runCli(online);

      expect(result.code).toBe(0);
      const summary = JSON.parse(result.stdout) as {
        digests: { valid: number; invalid: number };
        valid: { kind: string; key: string }[];
      };
      // The signer keeps closing (empty) periods meanwhile: later digests may be there too.
      expect(summary.digests.invalid).toBe(0);
      expect(summary.digests.valid).toBeGreaterThanOrEqual(digestKeys.length);
      // Every log file in the bucket is listed, and so validated, exactly once.
      const validatedLogs = summary.valid.filter((r) => r.kind === 'log').map((r) => r.key);
      expect(validatedLogs.sort()).toEqual([...logKeys].sort());

      // Offline: the keys as paths, each digest's metadata in its sidecar.
      const copy = join(dataDir, 'copy');
      for (const key of keys) {
        const path = join(copy, ...key.split('/'));
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, await getObject(clients, bucket, key));
        if (key.includes('/CloudTrail-Digest/')) {
          const head = await clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
          writeFileSync(`${path}.metadata.json`, JSON.stringify(head.Metadata));
        }
      }
      // The copy ends where every chain in it has its newest digest: the signer goes on
      // meanwhile, and GetTrailStatus's heads make later digests count as missing from it.
      const newest = new Map<string, number>();
      for (const key of digestKeys) {
        const parts = parseDigestKey(key)!;
        const chain = `${parts.account}/${parts.region}`;
        newest.set(chain, Math.max(newest.get(chain) ?? 0, parts.endMs));
      }
      const copyEndMs = Math.min(...newest.values());
      const offline = await runCli([
        'validate-logs',
        '--s3-bucket',
        bucket,
        '--local-dir',
        copy,
        '--endpoint',
        runtime.endpoints.api,
        '--start-time',
        startTime,
        '--end-time',
        new Date(copyEndMs).toISOString(),
      ]);
      expect(offline.stderr).toBe('');
      expect(offline.code).toBe(0);
      // Chains whose newest digest ends after the copy's end contribute it (it covers the end).
      expect(offline.stdout).toMatch(
        new RegExp(
          `\\n(\\d+)/\\1 digest files valid\\n${logKeys.length}/${logKeys.length} log files valid\\n`,
        ),
      );

      await clients.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: logKeys[0]! }));
      const tampered = await runCli(online);
      expect(tampered.code).toBe(1);
      expect(JSON.parse(tampered.stdout)).toMatchObject({
        invalid: [{ kind: 'log', key: logKeys[0], reason: 'not found' }],
      });
    } finally {
      destroyClients(clients);
    }
  });
  it('answers GetTrailStatus, and names every deleted digest from what it says', async () => {
    const { runtime } = suite;
    const client = new CloudTrailClient({
      endpoint: runtime.endpoints.api,
      region: 'us-east-1',
      credentials: { accessKeyId: 'any', secretAccessKey: 'any' },
    });
    const clients = clientsFor(runtime.endpoints);
    try {
      // Delivered log files (a repeat of the first test's replay delivers nothing new).
      expect((await replayFixtures(runtime.endpoints.api)).code).toBe(0);
      let status = await client.send(new GetTrailStatusCommand({ Name: 'opentrail' }));
      for (let i = 0; i < 120 && !status.LatestDigestDeliveryTime; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        status = await client.send(new GetTrailStatusCommand({ Name: 'opentrail' }));
      }
      expect(status.IsLogging).toBe(true);
      expect(status.LatestDeliveryTime).toBeInstanceOf(Date);
      expect(status.LatestDigestDeliveryTime!.getTime()).toBeLessThanOrEqual(Date.now());
      expect(status.StartLoggingTime!.getTime()).toBeLessThanOrEqual(
        status.LatestDeliveryTime!.getTime(),
      );

      // Every digest so far deleted (the signer goes on from its head meanwhile).
      const bucket = runtime.endpoints.bucket;
      const deleted = (await listKeys(clients, bucket, 'AWSLogs/')).filter((key) =>
        key.includes('/CloudTrail-Digest/'),
      );
      expect(deleted.length).toBeGreaterThan(0);
      for (const key of deleted)
        await clients.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));

      const result = await runCli([
        'validate-logs',
        '--s3-bucket',
        bucket,
        '--s3-endpoint',
        runtime.endpoints.s3,
        '--endpoint',
        runtime.endpoints.api,
        '--start-time',
        new Date(Date.now() - 3_600_000).toISOString(),
      ]);

      expect(result.code).toBe(1);
      const lines = new Set(result.stderr.split('\n'));
      expect(
        deleted.filter(
          (key) => !lines.has(`Digest file\ts3://${bucket}/${key}\tINVALID: not found`),
        ),
      ).toEqual([]);
    } finally {
      client.destroy();
      destroyClients(clients);
    }
  });
});
