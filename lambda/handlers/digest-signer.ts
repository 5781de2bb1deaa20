/**
 * Lambda handler of the digest signer, invoked by an EventBridge Scheduler schedule (hourly, a
 * few minutes past the hour). Wiring only: the logic is lambda/core/digest-signing.ts. A
 * failure throws (the scheduler retries); a re-run never forks the chain.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { ENV, type DigestKeyConfig, type TrailConfig } from '../core/config';
import { signDueDigests } from '../core/digest-signing';
import type {
  DigestSigningDeps,
  PreviousSigningKey,
  SignedDigest,
  UndigestedChain,
} from '../core/digest-signing-deps';
import { keyWindows } from '../core/public-keys';
import { createClients } from '../adapters/clients';
import { documentClient } from '../adapters/dynamodb';
import { DynamoDigestChainStore, DynamoDigestManifest } from '../adapters/dynamodb-digests';
import { KmsDigestSigner } from '../adapters/kms-signer';
import { createLogger, createMetrics, metricsSink } from '../adapters/observability';
import { DEPLOYMENT_ENV } from '../core/metrics';
import { S3DigestStore } from '../adapters/s3-digests';
import { requiredEnv } from './env';

const logger = createLogger('digest-signer');

/**
 * The signer's keys from configuration (JSON DigestKeyConfig[], as ListPublicKeys serves
 * them): the current key's window start and every previous key with its window, each a KMS
 * signer. Throws naming the key when the current key of the list is not `currentKeyId`.
 */
export function kmsSigningKeys(
  client: KMSClient,
  currentKeyId: string,
  configs: readonly DigestKeyConfig[],
): { signerValidFromMs?: number; previousKeys: PreviousSigningKey[] } {
  const windows = keyWindows(configs);
  const current = windows.find((k) => k.validUntilMs === undefined);
  if (current && current.keyId !== currentKeyId) {
    throw new Error(
      `the current digest key of ${ENV.DIGEST_PUBLIC_KEYS} is ${current.keyId}, not ${ENV.DIGEST_KEY_ID} ${currentKeyId}`,
    );
  }
  return {
    ...(current ? { signerValidFromMs: current.validFromMs } : {}),
    previousKeys: windows.flatMap((k) =>
      k.validUntilMs === undefined
        ? []
        : [
            {
              signer: new KmsDigestSigner(client, k.keyId),
              validFromMs: k.validFromMs,
              validUntilMs: k.validUntilMs,
            },
          ],
    ),
  };
}

/** What one run did. */
export interface DigestSignerResult {
  readonly digests: readonly SignedDigest[];
}

/**
 * The handler. `closeAtMs` (embedded runtime only: `opentrail digest`) closes the open period
 * at that time; the deployed handler never takes it from the event.
 */
export function createDigestSignerHandler(deps: DigestSigningDeps) {
  return async (options: { closeAtMs?: number } = {}): Promise<DigestSignerResult> => {
    const digests = await signDueDigests(deps, options);
    for (const d of digests) {
      logger.info('digest', {
        stream: d.stream,
        key: d.key,
        logFiles: d.logFiles,
        created: d.created,
      });
    }
    return { digests };
  };
}

/**
 * Logs the chains behind (one line, oldest first): the metric carries only the oldest age, the
 * log says which chains (docs/operations.md#digestsigner-undigestedperiodage).
 */
export function logBacklog(chains: readonly UndigestedChain[]): void {
  if (chains.length > 0) logger.warn('digest chains behind', { chains });
}

let deployed: ReturnType<typeof createDigestSignerHandler> | undefined;
/** The handler's EMF metrics (exported for the EMF-capture test of the alarms). */
export const metrics = createMetrics('digest-signer', process.env[DEPLOYMENT_ENV]);

function fromEnvironment(): DigestSigningDeps {
  const region = requiredEnv('AWS_REGION');
  const clients = createClients({ region });
  const documents = documentClient(clients.dynamodb);
  const kms = new KMSClient({ region });
  const keyId = requiredEnv(ENV.DIGEST_KEY_ID);
  const keyList = process.env[ENV.DIGEST_PUBLIC_KEYS];
  return {
    trails: JSON.parse(requiredEnv(ENV.TRAILS)) as TrailConfig[],
    bucket: requiredEnv(ENV.LOG_BUCKET),
    homeRegion: region,
    periodMs: Number(requiredEnv(ENV.DIGEST_PERIOD_SECONDS)) * 1000,
    chain: new DynamoDigestChainStore(documents, requiredEnv(ENV.CHAIN_TABLE)),
    manifest: new DynamoDigestManifest(documents, requiredEnv(ENV.MANIFEST_TABLE)),
    objects: new S3DigestStore(clients.s3),
    signer: new KmsDigestSigner(kms, keyId),
    // Every key and its window: a period is signed with the key whose window holds its end.
    ...(keyList ? kmsSigningKeys(kms, keyId, JSON.parse(keyList) as DigestKeyConfig[]) : {}),
    metrics: metricsSink(metrics),
    reportBacklog: logBacklog,
    now: Date.now,
  };
}

/** Entry point in Lambda (the schedule's payload is ignored). */
export const handler = async (): Promise<{ digests: number }> => {
  deployed ??= createDigestSignerHandler(fromEnvironment());
  try {
    const result = await deployed();
    return { digests: result.digests.length };
  } finally {
    metrics.publishStoredMetrics();
  }
};
