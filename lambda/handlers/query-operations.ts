/**
 * The query handler's operations composed from the Lambda environment: each reads its
 * configuration, builds its adapters and binds the lambda/core use case to them. Composition
 * lives here, in handlers; adapters only implement ports.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import {
  DEFAULT_DIGEST_PERIOD_SECONDS,
  ENV,
  type DigestKeyConfig,
  type TrailConfig,
} from '../core/config';
import { DEFAULT_DIGEST_GRACE_MS } from '../core/digest-validate';
import { lookupEvents } from '../core/history';
import { createListPublicKeys, keyWindows } from '../core/public-keys';
import {
  createDescribeTrails,
  createGetTrailStatus,
  type TrailStatusDeps,
} from '../core/trail-status';
import { createClients } from '../adapters/clients';
import { documentClient } from '../adapters/dynamodb';
import { DynamoDeliveryLog } from '../adapters/dynamodb-deliveries';
import { DynamoDigestChainStore } from '../adapters/dynamodb-digests';
import { DynamoHistoryStore } from '../adapters/history';
import { kmsPublicKeySources } from '../adapters/kms-signer';
import { KmsMac } from '../adapters/mac';

/** One operation as query.ts registers it (its `Operation`; not imported: query.ts imports this). */
type Operation = (request: Record<string, unknown>) => Promise<unknown>;

/**
 * LookupEvents as the deployed query handler serves it: the table and the KMS HMAC key from
 * the environment (OPENTRAIL_HISTORY_TABLE, OPENTRAIL_HISTORY_TOKEN_KEY_ID); undefined when
 * event history is not configured. The key is referenced by id: no secret in the environment.
 */
export function lookupEventsFromEnvironment(): Operation | undefined {
  const table = process.env[ENV.HISTORY_TABLE];
  const keyId = process.env[ENV.HISTORY_TOKEN_KEY_ID];
  if (!table || !keyId) return undefined;
  const region = process.env.AWS_REGION ?? '';
  const clients = createClients({ region });
  const deps = {
    store: new DynamoHistoryStore(documentClient(clients.dynamodb), table),
    mac: new KmsMac(new KMSClient({ region }), keyId),
    now: Date.now,
  };
  // Throttling errors become ThrottlingException in the query handler, for every operation.
  return (request) => lookupEvents(request, deps);
}

/**
 * ListPublicKeys for the deployed query function: the keys of OPENTRAIL_DIGEST_PUBLIC_KEYS
 * (JSON DigestKeyConfig[]), or undefined when log-file validation is not deployed.
 */
export function listPublicKeysFromEnvironment(): Operation | undefined {
  const raw = process.env[ENV.DIGEST_PUBLIC_KEYS];
  if (!raw) return undefined;
  const client = new KMSClient({ region: process.env.AWS_REGION });
  return createListPublicKeys(
    kmsPublicKeySources(client, keyWindows(JSON.parse(raw) as DigestKeyConfig[])),
    Date.now,
  );
}

/** The query function's trail-status configuration, or undefined when it is not deployed. */
function trailStatusDeps(): TrailStatusDeps | undefined {
  const env = process.env;
  const [trails, bucket, manifest, chain] = [
    env[ENV.TRAILS],
    env[ENV.LOG_BUCKET],
    env[ENV.MANIFEST_TABLE],
    env[ENV.CHAIN_TABLE],
  ];
  if (!trails || !bucket || !manifest || !chain) return undefined;
  const account = env[ENV.ACCOUNT_ID];
  const documents = documentClient(
    createClients({ region: env.AWS_REGION ?? 'us-east-1' }).dynamodb,
  );
  const seconds = (name: string, fallback: number): number => {
    const value = Number(env[name]);
    return Number.isFinite(value) && value > 0 ? value : fallback;
  };
  return {
    trails: JSON.parse(trails) as TrailConfig[],
    bucket,
    ...(account ? { account } : {}),
    homeRegion: env.AWS_REGION ?? 'us-east-1',
    chain: new DynamoDigestChainStore(documents, chain),
    deliveries: new DynamoDeliveryLog(documents, manifest),
    periodMs: seconds(ENV.DIGEST_PERIOD_SECONDS, DEFAULT_DIGEST_PERIOD_SECONDS) * 1000,
    graceMs: seconds(ENV.DIGEST_GRACE_SECONDS, DEFAULT_DIGEST_GRACE_MS / 1000) * 1000,
  };
}

/** GetTrailStatus for the deployed query function (trails with log-file validation deployed). */
export function getTrailStatusFromEnvironment(): Operation | undefined {
  const deps = trailStatusDeps();
  return deps && createGetTrailStatus(deps);
}

/** DescribeTrails for the deployed query function. */
export function describeTrailsFromEnvironment(): Operation | undefined {
  const deps = trailStatusDeps();
  return deps && createDescribeTrails(deps);
}
