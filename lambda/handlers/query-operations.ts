/**
 * The query handler's operations composed from the Lambda environment: each reads its
 * configuration, builds its adapters and binds the lambda/core use case to them. Composition
 * lives here, in handlers; adapters only implement ports.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { ENV, type DigestKeyConfig } from '../core/config';
import { lookupEvents } from '../core/history';
import { createListPublicKeys, keyWindows } from '../core/public-keys';
import { createClients } from '../adapters/clients';
import { documentClient } from '../adapters/dynamodb';
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
