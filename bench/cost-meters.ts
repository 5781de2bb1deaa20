/**
 * Meters the cost bench puts on its emulator clients: the DynamoDB capacity every call consumed
 * (ReturnConsumedCapacity TOTAL, per table) and the S3 requests by price class with the bytes
 * PUT.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';

export interface DynamoMeter {
  readonly tables: Map<string, { write: number; read: number; failedWrites: number }>;
}

const WRITE_COMMANDS = new Set([
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
  'BatchWriteItemCommand',
  'TransactWriteItemsCommand',
]);
const READ_COMMANDS = new Set([
  'GetItemCommand',
  'BatchGetItemCommand',
  'QueryCommand',
  'ScanCommand',
  'TransactGetItemsCommand',
]);

interface Consumed {
  TableName?: string;
  CapacityUnits?: number;
  WriteCapacityUnits?: number;
  ReadCapacityUnits?: number;
}

/** Asks every DynamoDB call for its consumed capacity and adds it up per table. */
export function meterDynamo(client: DynamoDBClient, meter: DynamoMeter): void {
  const entry = (table: string): { write: number; read: number; failedWrites: number } => {
    let e = meter.tables.get(table);
    if (!e) meter.tables.set(table, (e = { write: 0, read: 0, failedWrites: 0 }));
    return e;
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      const input = args.input as { ReturnConsumedCapacity?: string; TableName?: string };
      const write = WRITE_COMMANDS.has(command);
      if (write || READ_COMMANDS.has(command)) input.ReturnConsumedCapacity = 'TOTAL';
      try {
        const result = await next(args);
        const output = result.output as { ConsumedCapacity?: Consumed | Consumed[] };
        const consumed = output.ConsumedCapacity;
        for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
          const units =
            c.CapacityUnits ?? (write ? c.WriteCapacityUnits : c.ReadCapacityUnits) ?? 0;
          const e = entry(c.TableName ?? input.TableName ?? '?');
          if (write) e.write += units;
          else e.read += units;
        }
        return result;
      } catch (error) {
        // DynamoDB bills a failed conditional write (at least one unit); its error has no count.
        if (write && (error as Error).name === 'ConditionalCheckFailedException') {
          const e = entry(input.TableName ?? '?');
          e.write += 1;
          e.failedWrites += 1;
        }
        throw error;
      }
    },
    { step: 'initialize', name: 'opentrailCostMeter' },
  );
}

export interface S3Meter {
  puts: number;
  gets: number;
  storedBytes: number;
}

/** Counts S3 requests by price class, and the bytes PUT. */
export function meterS3(client: S3Client, meter: S3Meter): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      if (/^(Put|Copy|List|CreateMultipart|UploadPart|CompleteMultipart)/.test(command)) {
        meter.puts++;
        const body = (args.input as { Body?: unknown }).Body;
        if (body instanceof Uint8Array) meter.storedBytes += body.byteLength;
        else if (typeof body === 'string') meter.storedBytes += Buffer.byteLength(body);
      } else meter.gets++;
      return next(args);
    },
    { step: 'initialize', name: 'opentrailCostMeter' },
  );
}
