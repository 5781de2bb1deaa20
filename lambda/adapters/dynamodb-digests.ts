import { gunzipSync, gzipSync } from 'node:zlib';
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type {
  DigestCandidate,
  DigestChainHead,
  DigestChainStore,
  DigestManifest,
  DigestReservation,
  DigestStreamRef,
} from '../core/ports';
import { CHAIN_TABLE, MANIFEST_TABLE } from '../core/tables';
import { isConditionFailure } from './aws-errors';

const STREAM_SEPARATOR = '#';

function reservationSortKey(startMs: number): string {
  return String(startMs).padStart(13, '0');
}

/**
 * The digest chain-state table (see core/tables.ts, CHAIN_TABLE): stream registry, chain
 * heads and reservations. Every write is conditional; reads are consistent.
 *
 * A reservation's candidates are stored as gzip'd JSON (a Binary attribute) to keep well under
 * DynamoDB's 400 KB item limit: about 4,000 log files per stream and period.
 */
export class DynamoDigestChainStore implements DigestChainStore {
  /** Streams this process has registered (the registry write is skipped after the first). */
  private readonly registered = new Set<string>();

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async register(stream: DigestStreamRef): Promise<void> {
    const sk = [stream.trail, stream.account, stream.region].join(STREAM_SEPARATOR);
    if (this.registered.has(sk)) return;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            [CHAIN_TABLE.partitionKey]: CHAIN_TABLE.streamsPartition,
            [CHAIN_TABLE.sortKey]: sk,
            trail: stream.trail,
            account: stream.account,
            region: stream.region,
            firstSeenMs: stream.firstSeenMs,
          },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': CHAIN_TABLE.partitionKey },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    this.registered.add(sk);
  }

  async listStreams(): Promise<DigestStreamRef[]> {
    const streams: DigestStreamRef[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': CHAIN_TABLE.partitionKey },
          ExpressionAttributeValues: { ':pk': CHAIN_TABLE.streamsPartition },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        streams.push({
          trail: item.trail as string,
          account: item.account as string,
          region: item.region as string,
          firstSeenMs: Number(item.firstSeenMs),
        });
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return streams;
  }

  async getHead(stream: string): Promise<DigestChainHead | undefined> {
    const response = await this.client.send(
      new GetCommand({
        TableName: this.table,
        Key: {
          [CHAIN_TABLE.partitionKey]: `head#${stream}`,
          [CHAIN_TABLE.sortKey]: CHAIN_TABLE.headSortKey,
        },
        ConsistentRead: true,
      }),
    );
    const item = response.Item;
    if (!item) return undefined;
    return {
      endMs: Number(item.endMs),
      bucket: item.bucket as string,
      key: item.key as string,
      sha256: item.sha256 as string,
      signature: item.signature as string,
    };
  }

  async moveHead(
    stream: string,
    next: DigestChainHead,
    expectedEndMs: number | undefined,
  ): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            [CHAIN_TABLE.partitionKey]: `head#${stream}`,
            [CHAIN_TABLE.sortKey]: CHAIN_TABLE.headSortKey,
            ...next,
          },
          ...(expectedEndMs === undefined
            ? {
                ConditionExpression: 'attribute_not_exists(#pk)',
                ExpressionAttributeNames: { '#pk': CHAIN_TABLE.partitionKey },
              }
            : {
                ConditionExpression: '#end = :expected',
                ExpressionAttributeNames: { '#end': 'endMs' },
                ExpressionAttributeValues: { ':expected': expectedEndMs },
              }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async getReservation(stream: string, startMs: number): Promise<DigestReservation | undefined> {
    const response = await this.client.send(
      new GetCommand({
        TableName: this.table,
        Key: {
          [CHAIN_TABLE.partitionKey]: `res#${stream}`,
          [CHAIN_TABLE.sortKey]: reservationSortKey(startMs),
        },
        ConsistentRead: true,
      }),
    );
    const item = response.Item;
    if (!item) return undefined;
    return {
      stream,
      startMs,
      endMs: Number(item.endMs),
      bucket: item.bucket as string,
      key: item.key as string,
      previous: (item.previous as DigestChainHead | null | undefined) ?? null,
      candidates: JSON.parse(
        gunzipSync(item.candidatesGz as Uint8Array).toString('utf8'),
      ) as DigestCandidate[],
    };
  }

  async reserve(reservation: DigestReservation): Promise<DigestReservation> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            [CHAIN_TABLE.partitionKey]: `res#${reservation.stream}`,
            [CHAIN_TABLE.sortKey]: reservationSortKey(reservation.startMs),
            endMs: reservation.endMs,
            bucket: reservation.bucket,
            key: reservation.key,
            previous: reservation.previous,
            candidatesGz: gzipSync(JSON.stringify(reservation.candidates)),
          },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': CHAIN_TABLE.partitionKey },
        }),
      );
      return reservation;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const stored = await this.getReservation(reservation.stream, reservation.startMs);
      if (!stored)
        throw new Error(
          `reservation of ${reservation.stream} at ${reservation.startMs} refused but not found`,
        );
      return stored;
    }
  }
}

/**
 * The delivery manifest as the digest signer reads it: the `byStream` index (delivered rows
 * only, in delivery order) and conditional claims on the rows themselves.
 */
export class DynamoDigestManifest implements DigestManifest {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async unclaimed(stream: string, fromIso: string, toIso: string): Promise<DigestCandidate[]> {
    // BETWEEN is inclusive; the window's end is exclusive.
    const last = new Date(Date.parse(toIso) - 1).toISOString();
    if (last < fromIso) return [];
    const rows: DigestCandidate[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: MANIFEST_TABLE.indexName,
          KeyConditionExpression: '#stream = :stream AND #at BETWEEN :from AND :to',
          FilterExpression: 'attribute_not_exists(#claim)',
          ExpressionAttributeNames: {
            '#stream': MANIFEST_TABLE.indexPartitionKey,
            '#at': MANIFEST_TABLE.indexSortKey,
            '#claim': CHAIN_TABLE.manifestClaimAttribute,
          },
          ExpressionAttributeValues: { ':stream': stream, ':from': fromIso, ':to': last },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        if (item.state !== 'delivered') continue;
        rows.push({
          bucket: item.bucket as string,
          key: item.key as string,
          sha256: item.sha256 as string,
          oldestEventTime: item.oldestEventTime as string,
          newestEventTime: item.newestEventTime as string,
        });
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return rows;
  }

  async claim(bucket: string, key: string, digestId: string): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { [MANIFEST_TABLE.partitionKey]: `${bucket}/${key}` },
          UpdateExpression: 'SET #claim = :digest',
          ConditionExpression:
            'attribute_exists(#pk) AND #state = :delivered AND (attribute_not_exists(#claim) OR #claim = :digest)',
          ExpressionAttributeNames: {
            '#pk': MANIFEST_TABLE.partitionKey,
            '#state': 'state',
            '#claim': CHAIN_TABLE.manifestClaimAttribute,
          },
          ExpressionAttributeValues: { ':digest': digestId, ':delivered': 'delivered' },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }
}
