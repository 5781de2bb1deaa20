/**
 * DynamoDB's size limits, counted the way DynamoDB counts them (UTF-8 bytes), for test doubles
 * that must fail where DynamoDB fails: the in-memory ports (test/fixtures/memory-*.ts) and the
 * dynalite proxy (test/support/limited-dynalite.ts). dynalite checks key sizes in characters,
 * not bytes, and not at all in Query key conditions; the in-memory ports checked nothing.
 *
 * - partition key value: 1 to 2,048 bytes; sort key value: 1 to 1,024 bytes (String: UTF-8
 *   bytes; Binary: raw bytes). Also for the values a Query's key condition compares a key
 *   attribute with, and for every key in GetItem, BatchGetItem, DeleteItem, UpdateItem.
 * - item: at most 400 KB = 409,600 bytes, attribute names included: a name's UTF-8 bytes plus
 *   its value's size (S: UTF-8 bytes; N: 1 byte per two significant digits, plus 1; B: raw
 *   bytes; BOOL and NULL: 1; L and M: 3 bytes plus 1 byte per element plus the elements, a
 *   map's member names included; sets: the sum of their elements).
 *
 * Violations throw {@link DynamoValidationError}: name `ValidationException` and DynamoDB's
 * wording, so code that maps SDK errors sees what it would see on AWS.
 */
import { marshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

export const MAX_PARTITION_KEY_BYTES = 2048;
export const MAX_SORT_KEY_BYTES = 1024;
export const MAX_ITEM_BYTES = 400 * 1024;

/** The document client's options (lambda/adapters/dynamodb.ts) plus class instances as maps. */
const MARSHALL_OPTIONS = { removeUndefinedValues: true, convertClassInstanceToMap: true };

/** What DynamoDB answers a request that breaks a limit with (HTTP 400). */
export class DynamoValidationError extends Error {
  override readonly name = 'ValidationException';
  readonly $fault = 'client';
  readonly $metadata = { httpStatusCode: 400 };
}

/** The wire form of an attribute value (the low-level API's JSON). */
export type WireValue = AttributeValue | Record<string, unknown>;

function utf8(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function numberBytes(text: string): number {
  const digits = text
    .replace(/^[+-]/, '')
    .replace(/[eE].*$/, '')
    .replace('.', '')
    .replace(/^0+/, '')
    .replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

function binaryBytes(value: unknown): number {
  if (typeof value === 'string') return Buffer.from(value, 'base64').length;
  return (value as Uint8Array).length;
}

/** Size of one attribute value as DynamoDB counts it (its name not included). */
export function valueSizeBytes(value: WireValue): number {
  const v = value as Record<string, unknown>;
  if (typeof v.S === 'string') return utf8(v.S);
  if (typeof v.N === 'string') return numberBytes(v.N);
  if (v.B !== undefined) return binaryBytes(v.B);
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (Array.isArray(v.SS)) return (v.SS as string[]).reduce((n, s) => n + utf8(s), 0);
  if (Array.isArray(v.NS)) return (v.NS as string[]).reduce((n, s) => n + numberBytes(s), 0);
  if (Array.isArray(v.BS))
    return (v.BS as unknown[]).reduce<number>((n, b) => n + binaryBytes(b), 0);
  if (Array.isArray(v.L)) {
    return (v.L as WireValue[]).reduce((n, item) => n + 1 + valueSizeBytes(item), 3);
  }
  if (v.M !== undefined && typeof v.M === 'object') {
    return Object.entries(v.M as Record<string, WireValue>).reduce(
      (n, [name, item]) => n + 1 + utf8(name) + valueSizeBytes(item),
      3,
    );
  }
  throw new DynamoValidationError(
    `Supplied AttributeValue is empty, must contain exactly one of the supported datatypes`,
  );
}

/** Size of an item in wire form: every attribute's name plus its value. */
export function itemSizeBytes(item: Record<string, WireValue>): number {
  return Object.entries(item).reduce(
    (n, [name, value]) => n + utf8(name) + valueSizeBytes(value),
    0,
  );
}

/** Size of a plain item (what the document client writes), marshalled as the SDK does. */
export function documentItemSizeBytes(item: Record<string, unknown>): number {
  return itemSizeBytes(marshall(item, MARSHALL_OPTIONS));
}

function keyBytes(value: WireValue): number {
  const v = value as Record<string, unknown>;
  if (typeof v.S === 'string') return utf8(v.S);
  if (v.B !== undefined) return binaryBytes(v.B);
  if (typeof v.N === 'string') return numberBytes(v.N);
  throw new DynamoValidationError(
    'One or more parameter values were invalid: a key attribute must be of type S, N or B',
  );
}

/** Throws as DynamoDB does for a key value (or a key condition value) outside its limits. */
export function checkKeyValue(kind: 'partition' | 'sort', name: string, value: WireValue): void {
  const bytes = keyBytes(value);
  const v = value as Record<string, unknown>;
  if (bytes === 0 && (typeof v.S === 'string' || v.B !== undefined)) {
    throw new DynamoValidationError(
      `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty ${typeof v.S === 'string' ? 'string' : 'binary'} value. Key: ${name}`,
    );
  }
  if (kind === 'partition' && bytes > MAX_PARTITION_KEY_BYTES) {
    throw new DynamoValidationError(
      `One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of ${MAX_PARTITION_KEY_BYTES} bytes (key ${name}: ${bytes} bytes)`,
    );
  }
  if (kind === 'sort' && bytes > MAX_SORT_KEY_BYTES) {
    throw new DynamoValidationError(
      `One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of ${MAX_SORT_KEY_BYTES} bytes (key ${name}: ${bytes} bytes)`,
    );
  }
}

/** Throws as DynamoDB does for an item over 400 KB. */
export function checkItemSize(item: Record<string, WireValue>): void {
  const bytes = itemSizeBytes(item);
  if (bytes > MAX_ITEM_BYTES) {
    throw new DynamoValidationError(
      `Item size has exceeded the maximum allowed size (${bytes} bytes > ${MAX_ITEM_BYTES})`,
    );
  }
}

/** A table's key attribute names. */
export interface KeySchema {
  readonly partitionKey: string;
  readonly sortKey?: string;
}

/** Checks the key attributes of a key or an item in wire form (absent ones are not checked). */
export function checkKey(schema: KeySchema, key: Record<string, WireValue>): void {
  const pk = key[schema.partitionKey];
  if (pk !== undefined) checkKeyValue('partition', schema.partitionKey, pk);
  if (schema.sortKey !== undefined) {
    const sk = key[schema.sortKey];
    if (sk !== undefined) checkKeyValue('sort', schema.sortKey, sk);
  }
}

/** Checks an item in wire form as PutItem / BatchWriteItem do: its keys, then its size. */
export function checkItem(schema: KeySchema, item: Record<string, WireValue>): void {
  checkKey(schema, item);
  checkItemSize(item);
}

/** {@link checkItem} for a plain item (the document client's form). */
export function checkDocumentItem(schema: KeySchema, item: Record<string, unknown>): void {
  checkItem(schema, marshall(item, MARSHALL_OPTIONS));
}

/** {@link checkKeyValue} for a plain string key value. */
export function checkStringKey(kind: 'partition' | 'sort', name: string, value: string): void {
  checkKeyValue(kind, name, { S: value });
}

const KEYWORDS = new Set(['AND', 'BETWEEN', 'BEGINS_WITH']);

/**
 * The key attribute each `:placeholder` of a key condition expression is compared with
 * (`#pk = :pk AND #sk BETWEEN :lo AND :hi`, `begins_with(#sk, :p)`), names resolved.
 */
export function keyConditionOperands(
  expression: string,
  names: Record<string, string> = {},
): Map<string, string> {
  const operands = new Map<string, string>();
  let attribute: string | undefined;
  for (const token of expression.match(/[#:]?[A-Za-z0-9_.-]+/g) ?? []) {
    if (token.startsWith(':')) {
      if (attribute !== undefined) operands.set(token, attribute);
    } else if (!KEYWORDS.has(token.toUpperCase())) {
      attribute = token.startsWith('#') ? (names[token] ?? token) : token;
    }
  }
  return operands;
}

/** Checks a Query's key condition values (KeyConditionExpression or legacy KeyConditions). */
export function checkQueryKeys(schema: KeySchema, query: Record<string, unknown>): void {
  const kindOf = (attribute: string): 'partition' | 'sort' | undefined =>
    attribute === schema.partitionKey
      ? 'partition'
      : attribute === schema.sortKey
        ? 'sort'
        : undefined;
  if (typeof query.KeyConditionExpression === 'string') {
    const values = (query.ExpressionAttributeValues ?? {}) as Record<string, WireValue>;
    const operands = keyConditionOperands(
      query.KeyConditionExpression,
      (query.ExpressionAttributeNames ?? {}) as Record<string, string>,
    );
    for (const [placeholder, attribute] of operands) {
      const kind = kindOf(attribute);
      const value = values[placeholder];
      if (kind && value !== undefined) checkKeyValue(kind, attribute, value);
    }
  }
  const legacy = query.KeyConditions as
    Record<string, { AttributeValueList?: WireValue[] }> | undefined;
  for (const [attribute, condition] of Object.entries(legacy ?? {})) {
    const kind = kindOf(attribute);
    if (kind)
      for (const value of condition.AttributeValueList ?? []) checkKeyValue(kind, attribute, value);
  }
  if (query.ExclusiveStartKey)
    checkKey(schema, query.ExclusiveStartKey as Record<string, WireValue>);
}
