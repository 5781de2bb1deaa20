/**
 * DynamoDB's size limits, checked by the adapters before they write (see
 * docs/guarantees.md#digest-chain). The emulator (dynalite) does not enforce them as DynamoDB
 * does (key sizes in characters, not UTF-8 bytes), so an adapter that could exceed one checks
 * it itself, or tests pass on code that fails on AWS.
 */

/** Largest item: 400 KB, attribute names included. */
export const MAX_ITEM_BYTES = 400 * 1024;
/** Largest partition key value. */
export const MAX_PARTITION_KEY_BYTES = 2048;
/** Largest sort key value. */
export const MAX_SORT_KEY_BYTES = 1024;

/** Thrown before a write that DynamoDB would refuse for its size. */
export class DynamoLimitError extends Error {
  override readonly name = 'DynamoLimitError';
  constructor(
    message: string,
    readonly table: string,
    readonly limit: 'item' | 'partitionKey' | 'sortKey',
    readonly bytes: number,
  ) {
    super(message);
  }
}

const utf8 = (text: string): number => Buffer.byteLength(text, 'utf8');

/**
 * DynamoDB's size of a number: about one byte per two significant digits, plus one
 * (AWS: "Numbers are variable length, with up to 38 significant digits").
 */
function numberBytes(value: number | bigint): number {
  const digits = String(value)
    .replace(/^-/, '')
    .replace(/e.*$/i, '')
    .replace('.', '')
    .replace(/^0+/, '')
    .replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

/**
 * The size DynamoDB counts for a value as the document client marshals it: strings and
 * binaries by their bytes, numbers by their digits, lists and maps with 3 bytes of overhead
 * and 1 per element (names of map entries counted like attribute names).
 */
export function valueBytes(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return utf8(value);
  if (typeof value === 'number' || typeof value === 'bigint') return numberBytes(value);
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) {
    let n = 0;
    for (const v of value as Set<unknown>) n += valueBytes(v);
    return n;
  }
  if (Array.isArray(value)) {
    return 3 + value.reduce((n: number, v: unknown) => n + 1 + valueBytes(v), 0);
  }
  if (typeof value === 'object') {
    let n = 3;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      n += 1 + utf8(k) + valueBytes(v);
    }
    return n;
  }
  throw new TypeError(`cannot size a ${typeof value} for DynamoDB`);
}

/** The size DynamoDB counts for an item: every attribute name and value. */
export function itemBytes(item: Readonly<Record<string, unknown>>): number {
  let n = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    n += utf8(name) + valueBytes(value);
  }
  return n;
}

/**
 * Throws a {@link DynamoLimitError} naming the table, the limit and the size when `item` (with
 * key attributes `keys`) would be refused by DynamoDB for its size.
 */
export function checkItemLimits(
  table: string,
  item: Readonly<Record<string, unknown>>,
  keys: { readonly partitionKey: string; readonly sortKey?: string },
): void {
  const pk = item[keys.partitionKey];
  if (typeof pk === 'string' && utf8(pk) > MAX_PARTITION_KEY_BYTES) {
    throw new DynamoLimitError(
      `${table}: partition key ${keys.partitionKey} is ${utf8(pk)} bytes in UTF-8; DynamoDB allows ${MAX_PARTITION_KEY_BYTES}`,
      table,
      'partitionKey',
      utf8(pk),
    );
  }
  const sk = keys.sortKey === undefined ? undefined : item[keys.sortKey];
  if (typeof sk === 'string' && utf8(sk) > MAX_SORT_KEY_BYTES) {
    throw new DynamoLimitError(
      `${table}: sort key ${keys.sortKey!} is ${utf8(sk)} bytes in UTF-8; DynamoDB allows ${MAX_SORT_KEY_BYTES}`,
      table,
      'sortKey',
      utf8(sk),
    );
  }
  const size = itemBytes(item);
  if (size > MAX_ITEM_BYTES) {
    throw new DynamoLimitError(
      `${table}: item ${JSON.stringify(pk)}${sk === undefined ? '' : ` / ${JSON.stringify(sk)}`} is ${size} bytes; DynamoDB allows ${MAX_ITEM_BYTES} per item`,
      table,
      'item',
      size,
    );
  }
}
