import { PutRecordsCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import type { PutRecordResult, RecordStream } from '../core/ports';

/** RecordStream over a Kinesis data stream. */
export class KinesisRecordStream implements RecordStream {
  constructor(
    private readonly client: KinesisClient,
    private readonly streamName: string,
  ) {}

  async putRecords(
    records: readonly { partitionKey: string; data: Uint8Array }[],
  ): Promise<PutRecordResult[]> {
    const response = await this.client.send(
      new PutRecordsCommand({
        StreamName: this.streamName,
        Records: records.map((r) => ({ PartitionKey: r.partitionKey, Data: r.data })),
      }),
    );
    return (response.Records ?? []).map((entry): PutRecordResult =>
      entry.ErrorCode
        ? { ok: false, errorCode: entry.ErrorCode, errorMessage: entry.ErrorMessage ?? '' }
        : { ok: true, sequenceNumber: entry.SequenceNumber ?? '', shardId: entry.ShardId ?? '' },
    );
  }
}
