/**
 * The digest signer in the embedded runtime: the same use case and chain-state adapters as
 * the Lambda, with an RSA key under `<data-dir>/keys/` instead of KMS. It checks every second,
 * so a digest is written within a second or two after its period closes (`--digest-period`).
 *
 * Operations it adds behind `POST /`:
 * - `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListPublicKeys` (docs/formats.md#listpublickeys);
 * - `…GetTrailStatus` and `…DescribeTrails` (lambda/core/trail-status.ts), with a grace of
 *   LOCAL_DIGEST_GRACE_SECONDS: what validate-logs needs to find every missing digest;
 * - `Opentrail.CloseDigestPeriod` (local only; what `opentrail digest` calls): closes the open
 *   period of every stream at the next whole second and answers `{"Digests":[{"Stream",
 *   "S3Bucket","S3Object","DigestStartTime","DigestEndTime","LogFiles"}]}` — every digest
 *   written by the call, the due ones included.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { DEFAULT_DIGEST_PERIOD_SECONDS } from '../../lambda/core/config';
import { CLOSE_DIGEST_PERIOD_TARGET, periodEnd } from '../../lambda/core/digest-chain';
import { formatDigestTime } from '../../lambda/core/digest-format';
import { createListPublicKeys, LIST_PUBLIC_KEYS_TARGET } from '../../lambda/core/public-keys';
import {
  createDescribeTrails,
  createGetTrailStatus,
  DESCRIBE_TRAILS_TARGET,
  GET_TRAIL_STATUS_TARGET,
} from '../../lambda/core/trail-status';
import { DynamoDeliveryLog } from '../../lambda/adapters/dynamodb-deliveries';
import { CHAIN_TABLE } from '../../lambda/core/tables';
import {
  DynamoDigestChainStore,
  DynamoDigestManifest,
} from '../../lambda/adapters/dynamodb-digests';
import { LocalRsaSigner } from '../../lambda/adapters/local-signer';
import { S3DigestStore } from '../../lambda/adapters/s3-digests';
import {
  createDigestSignerHandler,
  type DigestSignerResult,
} from '../../lambda/handlers/digest-signer';
import type { RuntimeComponent } from '../runtime-context';

/** The chain-state table of the embedded runtime. */
export const DIGEST_CHAIN_TABLE = 'opentrail-digest-chain';

/** How often the signer looks for closed periods. */
const CHECK_INTERVAL_MS = 1000;

/**
 * How long after a period ends its digest may still be missing here: the signer looks every
 * second, and a run over a busy machine's emulators takes seconds, never half a minute.
 */
export const LOCAL_DIGEST_GRACE_SECONDS = 30;

/**
 * Ends of periods closed early by `opentrail digest`, one JSON line `{"stream","endMs"}` each in
 * `<data-dir>/digest-early-closes.jsonl`: GetTrailStatus reports them, so validate-logs names a
 * deleted early-closed digest by its real key.
 */
class FileEarlyCloseLog {
  constructor(private readonly path: string) {}

  async record(stream: string, endMs: number): Promise<void> {
    await appendFile(this.path, `${JSON.stringify({ stream, endMs })}\n`, { mode: 0o600 });
  }

  async endsMs(stream: string): Promise<number[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const ends = new Set<number>();
    for (const line of text.split('\n')) {
      try {
        const entry = JSON.parse(line) as { stream?: unknown; endMs?: unknown };
        if (entry.stream === stream && typeof entry.endMs === 'number') ends.add(entry.endMs);
      } catch {
        // A line cut short by a crash mid-append: that close is lost, nothing else.
      }
    }
    return [...ends].sort((a, b) => a - b);
  }
}

/** Creates the chain-state table unless it exists, and waits until it is active. */
export async function ensureChainTable(dynamodb: DynamoDBClient): Promise<void> {
  await dynamodb
    .send(
      new CreateTableCommand({
        TableName: DIGEST_CHAIN_TABLE,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: CHAIN_TABLE.partitionKey, AttributeType: 'S' },
          { AttributeName: CHAIN_TABLE.sortKey, AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: CHAIN_TABLE.partitionKey, KeyType: 'HASH' },
          { AttributeName: CHAIN_TABLE.sortKey, KeyType: 'RANGE' },
        ],
      }),
    )
    .catch((error: unknown) => {
      if ((error as Error).name !== 'ResourceInUseException') throw error;
    });
  for (let i = 0; i < 200; i++) {
    const table = await dynamodb.send(new DescribeTableCommand({ TableName: DIGEST_CHAIN_TABLE }));
    if (table.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`table ${DIGEST_CHAIN_TABLE} did not become active`);
}

function describe(result: DigestSignerResult) {
  return {
    Digests: result.digests.map((d) => ({
      Stream: d.stream,
      S3Bucket: d.bucket,
      S3Object: d.key,
      DigestStartTime: formatDigestTime(d.startMs),
      DigestEndTime: formatDigestTime(d.endMs),
      LogFiles: d.logFiles,
    })),
  };
}

export const digestComponent: RuntimeComponent = {
  name: 'digest',
  start: async (context) => {
    const { options, names } = context;
    await ensureChainTable(context.clients.dynamodb);
    const signer = await LocalRsaSigner.open(join(context.dataDir, 'keys'));
    const periodSeconds = options.digestPeriodSeconds ?? DEFAULT_DIGEST_PERIOD_SECONDS;
    const chain = new DynamoDigestChainStore(context.documents, DIGEST_CHAIN_TABLE);
    const earlyCloses = new FileEarlyCloseLog(join(context.dataDir, 'digest-early-closes.jsonl'));
    const sign = createDigestSignerHandler({
      trails: context.trails,
      bucket: names.bucket,
      homeRegion: context.region,
      periodMs: periodSeconds * 1000,
      chain,
      manifest: new DynamoDigestManifest(context.documents, names.manifestTable),
      objects: new S3DigestStore(context.clients.s3),
      signer,
      metrics: context.metrics,
      now: Date.now,
    });
    // One run at a time: racing runs would be safe (that is the design), just wasteful.
    let queue: Promise<unknown> = Promise.resolve();
    const serial = <T>(run: () => Promise<T>): Promise<T> => {
      const next = queue.then(run, run);
      queue = next.catch(() => undefined);
      return next;
    };

    // Periods are aligned, so after a run at t nothing falls due before the next boundary.
    let nextDueMs = 0;
    context.every('digest', CHECK_INTERVAL_MS, async () => {
      const startedMs = Date.now();
      if (startedMs < nextDueMs) return;
      const result = await serial(() => sign());
      nextDueMs = periodEnd(startedMs, periodSeconds * 1000);
      for (const d of result.digests) {
        context.log('digest written', { key: d.key, logFiles: d.logFiles, created: d.created });
      }
    });
    context.operation(CLOSE_DIGEST_PERIOD_TARGET, async () => {
      // Close at the next whole second (digest times have whole seconds), once it has passed.
      const closeAtMs = Math.ceil((Date.now() + 1) / 1000) * 1000;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, closeAtMs - Date.now())));
      const result = await serial(() => sign({ closeAtMs }));
      for (const d of result.digests) {
        if (d.endMs % (periodSeconds * 1000) !== 0) await earlyCloses.record(d.stream, d.endMs);
      }
      return describe(result);
    });
    context.operation(
      LIST_PUBLIC_KEYS_TARGET,
      createListPublicKeys(
        [
          {
            keyId: signer.keyId,
            validFromMs: Math.floor(signer.createdMs / 86_400_000) * 86_400_000,
            publicKeySpki: () => signer.publicKeySpki(),
          },
        ],
        Date.now,
      ),
    );
    const statusDeps = {
      trails: context.trails,
      bucket: names.bucket,
      homeRegion: context.region,
      chain,
      deliveries: new DynamoDeliveryLog(context.documents, names.manifestTable),
      earlyCloses,
      periodMs: periodSeconds * 1000,
      graceMs: LOCAL_DIGEST_GRACE_SECONDS * 1000,
    };
    context.operation(GET_TRAIL_STATUS_TARGET, createGetTrailStatus(statusDeps));
    context.operation(DESCRIBE_TRAILS_TARGET, createDescribeTrails(statusDeps));
    context.endpoint('digestChainTable', DIGEST_CHAIN_TABLE);
    context.endpoint('digestPeriodSeconds', String(periodSeconds));
  },
};
