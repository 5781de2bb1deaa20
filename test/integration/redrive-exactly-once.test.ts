/**
 * Exactly once across trails through a redrive, in the embedded runtime (s3rver, dynalite,
 * kinesalite, the real stream poller and its S3 on-failure records): the second trail's S3
 * writes fail until the packager's batch is given up, then `opentrail redrive --endpoints`
 * replays it. Counted on what is stored: every object under every trail's log prefix, gunzipped,
 * each eventID counted per trail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { closeDigestPeriod } from '../../cli/digest';
import { register } from '../../cli/redrive';
import type { TrailConfig } from '../../lambda/core/config';
import { digestComponent } from '../../local/components/digest';
import { packagerComponent } from '../../local/components/packager';
import { startRuntime, type Runtime, type RuntimeComponent } from '../../local/runtime';
import {
  clientsFor,
  destroyClients,
  getObject,
  listKeys,
  manifestRows,
  waitFor,
} from '../e2e/harness';
import { runCommand } from '../support/cli-command';

jest.setTimeout(90_000);

const TRAILS: TrailConfig[] = [
  { name: 'first', prefix: 'one', logFileValidation: true },
  { name: 'second', prefix: 'two', logFileValidation: true },
];
const LOG_FILE = /\/CloudTrail\//;
const DIGEST_FILE = /\/CloudTrail-Digest\//;
const EVENT_IDS = Array.from({ length: 40 }, (_, i) => `ev-${String(i).padStart(3, '0')}`);

/** The packager, with every S3 write under `two/` failing while `state.failing`. */
function packagerFailingSecondTrail(state: { failing: boolean }): RuntimeComponent {
  return {
    name: 'packager',
    start: (context) => {
      const s3 = context.clients.s3;
      const faulty = {
        send: (command: unknown, ...rest: unknown[]) => {
          if (
            state.failing &&
            command instanceof PutObjectCommand &&
            String(command.input.Key).startsWith('two/')
          ) {
            const error = new Error('injected: S3 refuses writes under two/');
            error.name = 'ServiceUnavailable';
            return Promise.reject(error);
          }
          return (s3.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
        },
      } as unknown as S3Client;
      return packagerComponent.start({ ...context, clients: { ...context.clients, s3: faulty } });
    },
  };
}

function record(eventID: string): Record<string, unknown> {
  return {
    eventVersion: '1.11',
    userIdentity: { type: 'IAMUser', accountId: '111111111111' },
    eventTime: '2024-05-01T12:00:00Z',
    eventSource: 'iam.amazonaws.com',
    eventName: 'ListUsers',
    awsRegion: 'us-east-1',
    eventID,
    eventType: 'AwsApiCall',
    eventCategory: 'Management',
    managementEvent: true,
    recipientAccountId: '111111111111',
  };
}

function runRedrive(args: string[]): Promise<{ stdout: string; exitCode: number }> {
  return runCommand(register, 'redrive', args);
}

describe('redrive: exactly once per trail in the embedded runtime', () => {
  let dataDir: string;
  let runtime: Runtime | undefined;

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'opentrail-redrive-once-'));
  });

  afterEach(async () => {
    await runtime?.close();
    runtime = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** eventID → copies, per trail prefix, over every object under the prefix. */
  async function storedCounts(clients: ReturnType<typeof clientsFor>, bucket: string) {
    const counts: Record<string, Record<string, number>> = {};
    for (const trail of TRAILS) {
      const perTrail: Record<string, number> = {};
      const keys = await listKeys(clients, bucket, `${trail.prefix}/`);
      for (const key of keys.filter((k) => LOG_FILE.test(k))) {
        const body = gunzipSync(await getObject(clients, bucket, key)).toString('utf8');
        for (const stored of (JSON.parse(body) as { Records: { eventID: string }[] }).Records)
          perTrail[stored.eventID] = (perTrail[stored.eventID] ?? 0) + 1;
      }
      counts[trail.name] = perTrail;
    }
    return counts;
  }

  it.each<[string, number]>([
    ['promptly', 0],
    ['after the dedup window has passed (a batch given up for age)', 2_500],
  ])(
    "the second trail's writes fail until the batch is given up, then a redrive %s: each trail holds each event once, every object delivered",
    async (_, waitMs) => {
      // Arrange
      const state = { failing: true };
      runtime = await startRuntime({
        dataDir,
        port: 0,
        flushSeconds: 0.5,
        shards: 1,
        maxRetries: 1,
        retryBaseMs: 50,
        dedupWindowSeconds: 1,
        trails: TRAILS,
        components: [packagerFailingSecondTrail(state), digestComponent],
      });
      const endpoints = runtime.endpoints;
      const clients = clientsFor(endpoints);
      try {
        const put = await clients.kinesis.send(
          new PutRecordsCommand({
            StreamName: endpoints.stream,
            Records: EVENT_IDS.map((id) => ({
              PartitionKey: id,
              Data: Buffer.from(JSON.stringify(record(id))),
            })),
          }),
        );
        expect(put.FailedRecordCount ?? 0).toBe(0);
        const given = await waitFor('a batch given up', 30_000, async () => {
          const keys = await listKeys(clients, endpoints.failedBucket, 'aws/lambda/packager/');
          return keys.length > 0 ? keys : undefined;
        });
        state.failing = false;
        await new Promise((resolve) => setTimeout(resolve, waitMs));

        // Act
        const result = await runRedrive(['--endpoints', join(dataDir, 'endpoints.json')]);

        // Assert: counted once the second trail holds every event (whatever path they took)
        const counts = await waitFor('the second trail to hold every event', 20_000, async () => {
          const stored = await storedCounts(clients, endpoints.bucket);
          return Object.keys(stored.second ?? {}).length === EVENT_IDS.length ? stored : undefined;
        });
        const once = Object.fromEntries(EVENT_IDS.map((id) => [id, 1]));
        expect(counts).toEqual({ first: once, second: once });
        expect(result.exitCode).toBe(0);
        expect(result.stdout).toContain(`objects replayed: ${given.length}`);
        const rows = await manifestRows(clients, endpoints.manifestTable);
        const stored = [
          ...(await listKeys(clients, endpoints.bucket, 'one/')),
          ...(await listKeys(clients, endpoints.bucket, 'two/')),
        ];
        const objects = stored.filter((key) => LOG_FILE.test(key)).sort();
        expect(rows.filter((row) => row.state !== 'delivered')).toEqual([]);
        expect(rows.map((row) => row.key).sort()).toEqual(objects);
        expect(await listKeys(clients, endpoints.failedBucket, 'aws/')).toEqual([]);
        // Every log file is listed in exactly one digest once the period is closed.
        await closeDigestPeriod(endpoints.api);
        const listed: string[] = [];
        for (const key of (
          await Promise.all(TRAILS.map((t) => listKeys(clients, endpoints.bucket, `${t.prefix}/`)))
        )
          .flat()
          .filter((k) => DIGEST_FILE.test(k))) {
          const digest = JSON.parse(
            gunzipSync(await getObject(clients, endpoints.bucket, key)).toString('utf8'),
          ) as { logFiles: { s3Object: string }[] };
          listed.push(...digest.logFiles.map((file) => file.s3Object));
        }
        expect(listed.sort()).toEqual(objects);
      } finally {
        destroyClients(clients);
      }
    },
  );
});
