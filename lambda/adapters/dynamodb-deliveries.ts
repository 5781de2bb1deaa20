import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ENV, DEFAULT_DIGEST_PERIOD_SECONDS, type TrailConfig } from '../core/config';
import { DEFAULT_DIGEST_GRACE_MS } from '../core/digest-validate';
import type { DeliveryLog } from '../core/ports';
import { MANIFEST_TABLE } from '../core/tables';
import {
  createDescribeTrails,
  createGetTrailStatus,
  type TrailStatusDeps,
} from '../core/trail-status';
import { createClients } from './clients';
import { DynamoDigestChainStore } from './dynamodb-digests';
import { documentClient } from './dynamodb';

/**
 * The newest delivery of a stream, from the delivery manifest's `byStream` index (delivered
 * rows only, sorted by `deliveredAt`): one Query of one item, newest first.
 */
export class DynamoDeliveryLog implements DeliveryLog {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async latestDeliveryMs(stream: string): Promise<number | undefined> {
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: MANIFEST_TABLE.indexName,
        KeyConditionExpression: '#stream = :stream',
        ExpressionAttributeNames: { '#stream': MANIFEST_TABLE.indexPartitionKey },
        ExpressionAttributeValues: { ':stream': stream },
        ScanIndexForward: false,
        Limit: 1,
      }),
    );
    const at: unknown = page.Items?.[0]?.[MANIFEST_TABLE.indexSortKey];
    return typeof at === 'string' && !Number.isNaN(Date.parse(at)) ? Date.parse(at) : undefined;
  }
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
export function getTrailStatusFromEnvironment():
  ((request: Record<string, unknown>) => Promise<unknown>) | undefined {
  const deps = trailStatusDeps();
  return deps && createGetTrailStatus(deps);
}

/** DescribeTrails for the deployed query function. */
export function describeTrailsFromEnvironment():
  ((request: Record<string, unknown>) => Promise<unknown>) | undefined {
  const deps = trailStatusDeps();
  return deps && createDescribeTrails(deps);
}
