/**
 * dynalite behind a thin HTTP proxy that enforces DynamoDB's size limits in UTF-8 bytes
 * (test/support/dynamo-limits.ts), so integration tests fail where DynamoDB would fail:
 * dynalite counts key sizes in characters, and checks no key size in a Query's key condition.
 *
 * A proxy rather than SDK middleware: it catches every client pointed at the endpoint (the
 * adapters', the CLI's, a handler's built from AWS_ENDPOINT_URL_DYNAMODB), not only the ones a
 * test remembers to wrap. A request that breaks a limit is answered as DynamoDB answers it,
 * HTTP 400 `{"__type":"com.amazon.coral.validate#ValidationException","message":…}`, and never
 * reaches dynalite; everything else is forwarded byte for byte.
 *
 * Checked: PutItem (keys, item size), GetItem/DeleteItem/UpdateItem keys, BatchWriteItem (each
 * put's keys and size, each delete's key), BatchGetItem keys, Query key-condition values and
 * ExclusiveStartKey (on the table or the index queried), Scan ExclusiveStartKey. Not checked:
 * the size an UpdateItem's result would have (the proxy does not read the stored item).
 *
 * Counted: the write units every write request is billed (test/support/write-units.ts), per
 * table and operation, in `writeUnits`: PutItem and each BatchWriteItem put by the item sent;
 * UpdateItem by the stored item after it (read back from dynalite), DeleteItem by the item it
 * deleted (read before); a write refused by its condition is billed as well, items a
 * BatchWriteItem leaves unprocessed and requests refused for a limit are not.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { startEmulators, type EmulatorOptions, type Emulators } from '../../local/emulators';
import {
  checkItem,
  checkKey,
  checkQueryKeys,
  DynamoValidationError,
  type KeySchema,
  itemSizeBytes,
  type WireValue,
} from './dynamo-limits';
import { WriteUnitLedger } from './write-units';

interface TableSchemas {
  readonly table: KeySchema;
  readonly indexes: ReadonlyMap<string, KeySchema>;
}

interface Upstream {
  readonly host: string;
  readonly port: number;
  /** Keep-alive connections to dynalite: the proxy adds no connection setup per request. */
  readonly agent: Agent;
}

/** The operations whose requests carry keys or items (the others are forwarded unread). */
const CHECKED = new Set([
  'PutItem',
  'GetItem',
  'DeleteItem',
  'UpdateItem',
  'BatchWriteItem',
  'BatchGetItem',
  'Query',
  'Scan',
]);

function send(
  upstream: Upstream,
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  body: Buffer,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const forwarded = httpRequest(
      {
        host: upstream.host,
        port: upstream.port,
        agent: upstream.agent,
        method,
        path,
        headers: {
          ...headers,
          host: `${upstream.host}:${upstream.port}`,
          'content-length': body.length,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 500,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        );
        response.on('error', reject);
      },
    );
    forwarded.on('error', reject);
    forwarded.end(body);
  });
}

function schemaOf(keySchema: { AttributeName: string; KeyType: string }[]): KeySchema {
  const partitionKey = keySchema.find((k) => k.KeyType === 'HASH')?.AttributeName ?? '';
  const sortKey = keySchema.find((k) => k.KeyType === 'RANGE')?.AttributeName;
  return { partitionKey, ...(sortKey !== undefined ? { sortKey } : {}) };
}

type Request = Record<string, unknown>;

/** Checks one request against the limits; throws DynamoValidationError. */
async function checkRequest(
  operation: string,
  input: Request,
  schemas: (table: string) => Promise<TableSchemas | undefined>,
): Promise<void> {
  const tableOf = async (name: unknown): Promise<TableSchemas | undefined> =>
    typeof name === 'string' ? schemas(name) : undefined;
  switch (operation) {
    case 'PutItem': {
      const s = await tableOf(input.TableName);
      if (s && input.Item) checkItem(s.table, input.Item as Record<string, WireValue>);
      return;
    }
    case 'GetItem':
    case 'DeleteItem':
    case 'UpdateItem': {
      const s = await tableOf(input.TableName);
      if (s && input.Key) checkKey(s.table, input.Key as Record<string, WireValue>);
      return;
    }
    case 'BatchWriteItem': {
      const all = (input.RequestItems ?? {}) as Record<string, Request[]>;
      for (const [table, requests] of Object.entries(all)) {
        const s = await tableOf(table);
        if (!s) continue;
        for (const r of requests) {
          const put = r.PutRequest as { Item?: Record<string, WireValue> } | undefined;
          const del = r.DeleteRequest as { Key?: Record<string, WireValue> } | undefined;
          if (put?.Item) checkItem(s.table, put.Item);
          if (del?.Key) checkKey(s.table, del.Key);
        }
      }
      return;
    }
    case 'BatchGetItem': {
      const all = (input.RequestItems ?? {}) as Record<
        string,
        { Keys?: Record<string, WireValue>[] }
      >;
      for (const [table, { Keys }] of Object.entries(all)) {
        const s = await tableOf(table);
        if (s) for (const key of Keys ?? []) checkKey(s.table, key);
      }
      return;
    }
    case 'Query':
    case 'Scan': {
      const s = await tableOf(input.TableName);
      if (!s) return;
      const index =
        typeof input.IndexName === 'string' ? s.indexes.get(input.IndexName) : undefined;
      const schema = index ?? s.table;
      if (operation === 'Query') checkQueryKeys(schema, input);
      else if (input.ExclusiveStartKey)
        checkKey(schema, input.ExclusiveStartKey as Record<string, WireValue>);
      return;
    }
    default:
      return;
  }
}

const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);
const CONDITION_FAILED = 'ConditionalCheckFailedException';

type Item = Record<string, WireValue>;

/** The stored item under `key` (a consistent GetItem on dynalite), or undefined. */
async function storedItem(
  upstream: Upstream,
  headers: IncomingHttpHeaders,
  table: string,
  key: unknown,
): Promise<Item | undefined> {
  const answer = await send(
    upstream,
    'POST',
    '/',
    { ...headers, 'x-amz-target': 'DynamoDB_20120810.GetItem' },
    Buffer.from(JSON.stringify({ TableName: table, Key: key, ConsistentRead: true })),
  );
  if (answer.status !== 200) return undefined;
  return (JSON.parse(answer.body.toString('utf8')) as { Item?: Item }).Item;
}

/**
 * Bills one write another proxy forwarded to the DynamoDB emulator at `host:port` (the fault
 * proxy of test/support/fault-proxy.ts): as the limits proxy bills its own, except that a
 * DeleteItem is billed as one unit (the deleted item is not read first).
 */
export async function billForwardedWrite(
  ledger: WriteUnitLedger,
  target: { host: string; port: number; headers: IncomingHttpHeaders; agent: Agent },
  operation: string,
  body: Buffer,
  answer: { status: number; body: Buffer },
): Promise<void> {
  if (!WRITES.has(operation)) return;
  let input: Request;
  try {
    input = JSON.parse(body.toString('utf8')) as Request;
  } catch {
    return;
  }
  const upstream: Upstream = { host: target.host, port: target.port, agent: target.agent };
  await billWrite(ledger, operation, input, answer, undefined, (table, key) =>
    storedItem(upstream, target.headers, table, key),
  );
}

/** Bills one answered write request into `ledger` (nothing for a request DynamoDB refuses). */
async function billWrite(
  ledger: WriteUnitLedger,
  operation: string,
  input: Request,
  answer: { status: number; body: Buffer },
  deleted: Item | undefined,
  readStored: (table: string, key: unknown) => Promise<Item | undefined>,
): Promise<void> {
  const failure =
    answer.status === 200
      ? undefined
      : String((JSON.parse(answer.body.toString('utf8') || '{}') as { __type?: string }).__type);
  const conditionFailed = failure?.endsWith(`#${CONDITION_FAILED}`) ?? false;
  if (failure !== undefined && !conditionFailed) return;
  const table = String(input.TableName);
  switch (operation) {
    case 'PutItem': {
      const size = itemSizeBytes(input.Item as Item);
      ledger.record(table, operation, [size], conditionFailed);
      if (!conditionFailed)
        ledger.recordIndexWrites(table, operation, Object.keys(input.Item as Item), size);
      return;
    }
    case 'UpdateItem': {
      const after = await readStored(table, input.Key);
      const size = after ? itemSizeBytes(after) : 0;
      ledger.record(table, operation, [size], conditionFailed);
      if (after && !conditionFailed)
        ledger.recordIndexWrites(table, operation, Object.keys(after), size);
      return;
    }
    case 'DeleteItem':
      ledger.record(table, operation, [deleted ? itemSizeBytes(deleted) : 0], conditionFailed);
      return;
    case 'BatchWriteItem': {
      const output = JSON.parse(answer.body.toString('utf8')) as {
        UnprocessedItems?: Record<string, Request[]>;
      };
      for (const [name, requests] of Object.entries(
        (input.RequestItems ?? {}) as Record<string, Request[]>,
      )) {
        const unprocessed = new Set(
          (output.UnprocessedItems?.[name] ?? []).map((r) => JSON.stringify(r)),
        );
        const sizes: number[] = [];
        for (const r of requests) {
          if (unprocessed.has(JSON.stringify(r))) continue;
          const put = r.PutRequest as { Item?: Item } | undefined;
          const del = r.DeleteRequest as { Key?: Item } | undefined;
          if (put?.Item) {
            sizes.push(itemSizeBytes(put.Item));
            ledger.recordIndexWrites(name, operation, Object.keys(put.Item), sizes.at(-1)!);
          } else if (del?.Key) sizes.push(0); // a delete of at most 1 KB: 1 unit
        }
        if (sizes.length > 0) ledger.record(name, operation, sizes);
      }
      return;
    }
    default:
      return;
  }
}

/** A running limits proxy in front of a DynamoDB endpoint. */
export interface LimitsProxy {
  readonly endpoint: string;
  /** The endpoint behind the proxy (dynalite itself, unchecked). */
  readonly target: string;
  /** Requests answered with ValidationException by the proxy (not forwarded). */
  readonly refused: { operation: string; message: string }[];
  /** Write units billed for every write the proxy forwarded (test/support/write-units.ts). */
  readonly writeUnits: WriteUnitLedger;
  close(): Promise<void>;
}

/** Starts the proxy on 127.0.0.1 (port 0) in front of `target` (an http:// endpoint). */
export async function startLimitsProxy(target: string): Promise<LimitsProxy> {
  const url = new URL(target);
  const upstream: Upstream = {
    host: url.hostname,
    port: Number(url.port),
    agent: new Agent({ keepAlive: true }),
  };
  const cache = new Map<string, TableSchemas | undefined>();
  const refused: { operation: string; message: string }[] = [];
  const writeUnits = new WriteUnitLedger();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const targetHeader = String(req.headers['x-amz-target'] ?? '');
        const operation = targetHeader.slice(targetHeader.indexOf('.') + 1);
        const schemas = async (table: string): Promise<TableSchemas | undefined> => {
          if (cache.has(table)) return cache.get(table);
          const described = await send(
            upstream,
            'POST',
            '/',
            { ...req.headers, 'x-amz-target': 'DynamoDB_20120810.DescribeTable' },
            Buffer.from(JSON.stringify({ TableName: table })),
          );
          if (described.status !== 200) return undefined;
          const t = (
            JSON.parse(described.body.toString('utf8')) as {
              Table: {
                KeySchema: { AttributeName: string; KeyType: string }[];
                GlobalSecondaryIndexes?: {
                  IndexName: string;
                  KeySchema: { AttributeName: string; KeyType: string }[];
                }[];
                LocalSecondaryIndexes?: {
                  IndexName: string;
                  KeySchema: { AttributeName: string; KeyType: string }[];
                }[];
              };
            }
          ).Table;
          const indexes = new Map<string, KeySchema>();
          for (const i of [...(t.GlobalSecondaryIndexes ?? []), ...(t.LocalSecondaryIndexes ?? [])])
            indexes.set(i.IndexName, schemaOf(i.KeySchema));
          const found = { table: schemaOf(t.KeySchema), indexes };
          cache.set(table, found);
          return found;
        };
        try {
          if (operation === 'CreateTable' || operation === 'DeleteTable') cache.clear();
          let input: Request | undefined;
          try {
            input =
              CHECKED.has(operation) || WRITES.has(operation)
                ? (JSON.parse(body.toString('utf8')) as Request)
                : undefined;
          } catch {
            input = undefined; // dynalite answers malformed JSON itself
          }
          if (input && typeof input === 'object') await checkRequest(operation, input, schemas);
          const readStored = (table: string, key: unknown): Promise<Item | undefined> =>
            storedItem(upstream, req.headers, table, key);
          const billed = input && typeof input === 'object' && WRITES.has(operation);
          const deleted =
            billed && operation === 'DeleteItem'
              ? await readStored(String(input!.TableName), input!.Key)
              : undefined;
          const answer = await send(
            upstream,
            req.method ?? 'POST',
            req.url ?? '/',
            req.headers,
            body,
          );
          if (billed) await billWrite(writeUnits, operation, input!, answer, deleted, readStored);
          res.writeHead(answer.status, answer.headers);
          res.end(answer.body);
        } catch (error) {
          if (error instanceof DynamoValidationError) {
            refused.push({ operation, message: error.message });
            res.writeHead(400, { 'Content-Type': 'application/x-amz-json-1.0' });
            res.end(
              JSON.stringify({
                __type: 'com.amazon.coral.validate#ValidationException',
                message: error.message,
              }),
            );
            return;
          }
          res.writeHead(502, { 'Content-Type': 'text/plain' });
          res.end(`limits proxy: ${(error as Error).message}`);
        }
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    target,
    refused,
    writeUnits,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
        upstream.agent.destroy();
      }),
  };
}

/** Emulators whose DynamoDB endpoint is dynalite behind the limits proxy. */
export interface LimitedEmulators extends Emulators {
  readonly limits: LimitsProxy;
}

/** Starts emulators with `start` and puts the limits proxy in front of their DynamoDB. */
export async function withLimitsProxy(
  start: (options: EmulatorOptions) => Promise<Emulators>,
  options: EmulatorOptions,
): Promise<LimitedEmulators> {
  const emulators = await start(options);
  let limits: LimitsProxy;
  try {
    limits = await startLimitsProxy(emulators.dynamodbEndpoint);
  } catch (error) {
    await emulators.close();
    throw error;
  }
  return {
    s3Endpoint: emulators.s3Endpoint,
    kinesisEndpoint: emulators.kinesisEndpoint,
    dynamodbEndpoint: limits.endpoint,
    credentials: emulators.credentials,
    pids: emulators.pids,
    limits,
    close: async () => {
      await limits.close();
      await emulators.close();
    },
  };
}

/**
 * local/emulators.ts's startEmulators with `dynamodbEndpoint` behind the limits proxy: what
 * integration tests that start the emulators themselves use. (The embedded runtime started
 * by startRuntime still talks to dynalite directly.)
 */
export function startLimitedEmulators(options: EmulatorOptions): Promise<LimitedEmulators> {
  return withLimitsProxy(startEmulators, options);
}
