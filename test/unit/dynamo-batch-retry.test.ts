/**
 * DynamoDB's per-item partial failures (BatchWriteItem UnprocessedItems, BatchGetItem
 * UnprocessedKeys) go through the one retry helper. dynalite never leaves items unprocessed, so
 * the faults are injected with aws-sdk-client-mock.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  type BatchGetCommandInput,
  type BatchWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { batchGetAll, BATCH_RETRY_POLICY } from '../../lambda/adapters/dynamodb';
import { DynamoHistoryStore } from '../../lambda/adapters/history';
import type { HistoryGroupItem } from '../../lambda/core/ports';

const TABLE = 'history';
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const dynamo = mockClient(documents);

afterEach(() => dynamo.reset());

const groupItems = (n: number): HistoryGroupItem[] =>
  Array.from({ length: n }, (_, i) => ({
    pk: `mN$k${i % 3}`,
    sk: `s#${i}`,
    x: 1,
    e: new Uint8Array([i]),
  }));

/** The items of each BatchWriteItem call, by sort key. */
function writtenPerCall(): string[][] {
  return dynamo
    .commandCalls(BatchWriteCommand)
    .map((call) =>
      (call.args[0].input.RequestItems![TABLE] ?? []).map(
        (request) => request.PutRequest!.Item!.sk as string,
      ),
    );
}

describe('BatchWriteItem UnprocessedItems (history index writes)', () => {
  it('sends again only the unprocessed items, then succeeds', async () => {
    // Arrange: the first call leaves two items unprocessed (copies, as DynamoDB returns them).
    dynamo.on(BatchWriteCommand).callsFake((input: BatchWriteCommandInput) => {
      const requests = input.RequestItems![TABLE]!;
      const first = dynamo.commandCalls(BatchWriteCommand).length === 1;
      return {
        UnprocessedItems: first
          ? {
              [TABLE]: requests
                .filter((r) => ['s#1', 's#3'].includes(r.PutRequest!.Item!.sk as string))
                .map((r) => ({ PutRequest: { Item: { ...r.PutRequest!.Item } } })),
            }
          : {},
      };
    });
    const store = new DynamoHistoryStore(documents, TABLE);

    // Act
    await store.putGroups(groupItems(5));

    // Assert
    expect(writtenPerCall()).toEqual([
      ['s#0', 's#1', 's#2', 's#3', 's#4'],
      ['s#1', 's#3'],
    ]);
  });

  it('throws naming the items left after the attempt limit', async () => {
    // Arrange: one item is never processed.
    dynamo.on(BatchWriteCommand).callsFake((input: BatchWriteCommandInput) => ({
      UnprocessedItems: {
        [TABLE]: input.RequestItems![TABLE]!.filter((r) => r.PutRequest!.Item!.sk === 's#2'),
      },
    }));
    const store = new DynamoHistoryStore(documents, TABLE);

    // Act
    const run = store.putGroups(groupItems(4));

    // Assert
    await expect(run).rejects.toThrow(
      `history: 1 group writes stayed unprocessed after ${BATCH_RETRY_POLICY.maxAttempts} BatchWriteItem calls`,
    );
    const calls = writtenPerCall();
    expect(calls).toHaveLength(BATCH_RETRY_POLICY.maxAttempts);
    expect(calls.slice(1).every((call) => call.length === 1 && call[0] === 's#2')).toBe(true);
  }, 15_000);
});

describe('BatchGetItem UnprocessedKeys', () => {
  it('asks again for the unprocessed keys only and returns every item once', async () => {
    // Arrange: the first call answers one key and leaves the other two unprocessed.
    dynamo.on(BatchGetCommand).callsFake((input: BatchGetCommandInput) => {
      const keys = input.RequestItems![TABLE]!.Keys!;
      const first = dynamo.commandCalls(BatchGetCommand).length === 1;
      const answered = first ? keys.slice(0, 1) : keys;
      return {
        Responses: { [TABLE]: answered.map((k) => ({ ...k, v: `value of ${String(k.id)}` })) },
        UnprocessedKeys: first ? { [TABLE]: { Keys: keys.slice(1).map((k) => ({ ...k })) } } : {},
      };
    });

    // Act
    const items = await batchGetAll(documents, TABLE, [{ id: 'a' }, { id: 'b' }, { id: 'c' }], {
      consistent: true,
    });

    // Assert
    expect(items.map((i) => i.v)).toEqual(['value of a', 'value of b', 'value of c']);
    expect(
      dynamo
        .commandCalls(BatchGetCommand)
        .map((call) => call.args[0].input.RequestItems![TABLE]!.Keys!.map((k) => String(k.id))),
    ).toEqual([
      ['a', 'b', 'c'],
      ['b', 'c'],
    ]);
  });

  it('throws after the attempt limit when keys stay unprocessed', async () => {
    // Arrange
    dynamo.on(BatchGetCommand).callsFake((input: BatchGetCommandInput) => ({
      Responses: { [TABLE]: [] },
      UnprocessedKeys: { [TABLE]: { Keys: input.RequestItems![TABLE]!.Keys } },
    }));

    // Act
    const run = batchGetAll(documents, TABLE, [{ id: 'a' }], { consistent: false });

    // Assert
    await expect(run).rejects.toThrow(
      `${TABLE}: 1 keys still unprocessed after ${BATCH_RETRY_POLICY.maxAttempts} BatchGetItem rounds`,
    );
    expect(dynamo.commandCalls(BatchGetCommand)).toHaveLength(BATCH_RETRY_POLICY.maxAttempts);
  }, 15_000);
});
