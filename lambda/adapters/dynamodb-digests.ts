import { createHash, randomUUID } from 'node:crypto';
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
import { checkItemLimits } from './dynamodb-limits';

const STREAM_SEPARATOR = '#';
/** Digits of a reservation's sort key (epoch ms, zero-padded so byte order is time order). */
const START_DIGITS = 13;
/** Digits of a part's index in its sort key (room for far more parts than any period needs). */
const PART_DIGITS = 6;
/**
 * Uncompressed JSON bytes of candidates per part. gzip never grows data by more than a few
 * hundred bytes at this size, so a part item stays well under DynamoDB's 400 KB whatever the
 * keys hold; checkItemLimits proves it before every write.
 */
const PART_RAW_BYTES = 300_000;

function reservationSortKey(startMs: number): string {
  return String(startMs).padStart(START_DIGITS, '0');
}

function partPrefix(startMs: number, nonce: string): string {
  return `${reservationSortKey(startMs)}#part#${nonce}#`;
}

/** Candidates packed into gzip'd JSON arrays of at most PART_RAW_BYTES each (order kept). */
function packParts(candidates: readonly DigestCandidate[]): Buffer[] {
  const parts: Buffer[] = [];
  let batch: string[] = [];
  let bytes = 0;
  const flush = (): void => {
    parts.push(gzipSync(`[${batch.join(',')}]`));
    batch = [];
    bytes = 0;
  };
  for (const c of candidates) {
    const json = JSON.stringify(c);
    const size = Buffer.byteLength(json, 'utf8') + 1;
    if (batch.length > 0 && bytes + size > PART_RAW_BYTES) flush();
    batch.push(json);
    bytes += size;
  }
  if (batch.length > 0) flush();
  return parts;
}

function candidatesHash(candidates: readonly DigestCandidate[]): string {
  return createHash('sha256').update(JSON.stringify(candidates)).digest('hex');
}

/**
 * The digest chain-state table (see core/tables.ts, CHAIN_TABLE): stream registry, chain
 * heads and reservations. Every write is conditional; reads are consistent.
 *
 * A reservation's candidates may be any number of log files (see
 * docs/guarantees.md#digest-chain): they are written first as part items (gzip'd JSON arrays
 * of at most PART_RAW_BYTES uncompressed each) under a fresh nonce, then the reservation item
 * itself names the nonce, the part count, the candidate count and their SHA-256; its
 * conditional create decides which writer's parts count. A losing racer's or a crashed run's
 * parts are never read (no reservation names their nonce); they stay, bounded by the runs
 * that raced. Reservations written before this layout hold their candidates inline
 * (`candidatesGz`) and are still read. Every item's size is checked before it is written.
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
      await this.put(
        {
          [CHAIN_TABLE.partitionKey]: CHAIN_TABLE.streamsPartition,
          [CHAIN_TABLE.sortKey]: sk,
          trail: stream.trail,
          account: stream.account,
          region: stream.region,
          firstSeenMs: stream.firstSeenMs,
        },
        true,
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
    const item = {
      [CHAIN_TABLE.partitionKey]: `head#${stream}`,
      [CHAIN_TABLE.sortKey]: CHAIN_TABLE.headSortKey,
      ...next,
    };
    checkItemLimits(this.table, item, {
      partitionKey: CHAIN_TABLE.partitionKey,
      sortKey: CHAIN_TABLE.sortKey,
    });
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: item,
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
      candidates:
        item.candidatesGz === undefined
          ? await this.readParts(stream, startMs, item)
          : // Written before reservations had parts (one item, a few thousand files at most).
            (JSON.parse(
              gunzipSync(item.candidatesGz as Uint8Array).toString('utf8'),
            ) as DigestCandidate[]),
    };
  }

  private async readParts(
    stream: string,
    startMs: number,
    item: Record<string, unknown>,
  ): Promise<DigestCandidate[]> {
    const nonce = item.nonce as string;
    const parts: Uint8Array[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
          ExpressionAttributeNames: { '#pk': CHAIN_TABLE.partitionKey, '#sk': CHAIN_TABLE.sortKey },
          ExpressionAttributeValues: {
            ':pk': `res#${stream}`,
            ':prefix': partPrefix(startMs, nonce),
          },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const part of page.Items ?? []) parts.push(part.gz as Uint8Array);
      start = page.LastEvaluatedKey;
    } while (start);
    const candidates = parts.flatMap(
      (gz) => JSON.parse(gunzipSync(gz).toString('utf8')) as DigestCandidate[],
    );
    if (
      parts.length !== Number(item.parts) ||
      candidates.length !== Number(item.count) ||
      candidatesHash(candidates) !== item.candidatesSha256
    ) {
      throw new Error(
        `reservation of ${stream} at ${startMs}: its parts (nonce ${nonce}) hold ${parts.length} parts and ${candidates.length} candidates, not the ${String(item.parts)} parts and ${String(item.count)} candidates it names (inspect the chain table)`,
      );
    }
    return candidates;
  }

  async reserve(reservation: DigestReservation): Promise<DigestReservation> {
    const pk = `res#${reservation.stream}`;
    const nonce = randomUUID();
    const parts = packParts(reservation.candidates);
    // Parts first: a reservation never names parts that are not all stored.
    for (const [index, gz] of parts.entries()) {
      await this.put({
        [CHAIN_TABLE.partitionKey]: pk,
        [CHAIN_TABLE.sortKey]: `${partPrefix(reservation.startMs, nonce)}${String(index).padStart(PART_DIGITS, '0')}`,
        gz,
      });
    }
    try {
      await this.put(
        {
          [CHAIN_TABLE.partitionKey]: pk,
          [CHAIN_TABLE.sortKey]: reservationSortKey(reservation.startMs),
          endMs: reservation.endMs,
          bucket: reservation.bucket,
          key: reservation.key,
          previous: reservation.previous,
          nonce,
          parts: parts.length,
          count: reservation.candidates.length,
          candidatesSha256: candidatesHash(reservation.candidates),
        },
        true,
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

  /** PutItem after the size check; `create`: only when the key is absent. */
  private async put(item: Record<string, unknown>, create = false): Promise<void> {
    checkItemLimits(this.table, item, {
      partitionKey: CHAIN_TABLE.partitionKey,
      sortKey: CHAIN_TABLE.sortKey,
    });
    await this.client.send(
      new PutCommand({
        TableName: this.table,
        Item: item,
        ...(create
          ? {
              ConditionExpression: 'attribute_not_exists(#pk)',
              ExpressionAttributeNames: { '#pk': CHAIN_TABLE.partitionKey },
            }
          : {}),
      }),
    );
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
