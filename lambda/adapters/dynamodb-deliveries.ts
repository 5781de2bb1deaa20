import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DeliveryLog } from '../core/ports';
import { MANIFEST_TABLE } from '../core/tables';

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
