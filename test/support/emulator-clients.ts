/**
 * Reading what the emulators hold, for e2e and integration suites and the bench: clients for a
 * runtime's endpoints.json, every key of a bucket, objects, manifest rows, and polling.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3';
import { createClients, destroyClients, type Clients } from '../../lambda/adapters/clients';
import { documentClient } from '../../lambda/adapters/dynamodb';
import type { ManifestRow } from '../../lambda/core/ports';
import type { Endpoints } from '../../local/runtime';

/** Clients of a runtime, signing with the access key of its endpoints.json. */
export function clientsFor(endpoints: Endpoints): Clients {
  return createClients({
    region: endpoints.region,
    s3Endpoint: endpoints.s3,
    dynamodbEndpoint: endpoints.dynamodb,
    kinesisEndpoint: endpoints.kinesis,
    credentials: {
      accessKeyId: endpoints.accessKeyId,
      secretAccessKey: endpoints.secretAccessKey,
    },
  });
}

/**
 * Puts an access key in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (no session token or profile),
 * as `eval "$(npx opentrail env)"` does, for CLI runs that use the standard credential chain
 * (in-process, or children, which inherit the environment). Returns the undo.
 */
export function credentialsInEnv(credentials: {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}): () => void {
  const names = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'];
  const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
  for (const name of names) delete process.env[name];
  process.env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
  return () => {
    for (const name of names) {
      const value = saved[name];
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

/** Every key in a bucket, page by page. */
export async function listKeys(clients: Clients, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await clients.s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

export async function getObject(clients: Clients, bucket: string, key: string): Promise<Buffer> {
  const response = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

/** Every manifest row. */
export async function manifestRows(clients: Clients, table: string): Promise<ManifestRow[]> {
  const documents = documentClient(clients.dynamodb);
  const rows: ManifestRow[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    rows.push(...((page.Items ?? []) as ManifestRow[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return rows;
}

export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
  );
}

export { destroyClients };
