/**
 * DynamoDB write units as billed (docs/cost.md#dynamodb-write-units), counted per table and per
 * operation: each item written costs ceil(item bytes / 1 KB) units, at least one, with the
 * item's size as DynamoDB counts it (UTF-8 lengths of attribute names and values,
 * test/support/dynamo-limits.ts). Failed conditional writes and SDK retries are billed as
 * well; BatchWriteItem per item; UpdateItem by the item's size after the update; DeleteItem by
 * the size of the item deleted. A write whose resulting item holds every key attribute of a
 * global secondary index is billed once more, under `<operation> <index>`, sized as the item
 * (indexes project ALL): the manifest's `byStream` gets one write when a file is marked
 * delivered. (DynamoDB bills two when an update changes an index key; no writer here does.)
 *
 * The ledger is filled by the dynalite proxy (test/support/limited-dynalite.ts), which sees every
 * request any client sends, so a bench or test reads what the whole pipeline wrote.
 */

import { MANIFEST_TABLE } from '../../lambda/core/tables';
import { LOCAL_DEFAULTS } from '../../local/runtime-context';

/** One write unit covers an item of up to 1 KB. */
export const WRITE_UNIT_BYTES = 1024;

/** Write units of one item write: ceil(bytes / 1 KB), at least 1 (an empty delete too). */
export function writeUnitsOfItem(itemBytes: number): number {
  return Math.max(1, Math.ceil(itemBytes / WRITE_UNIT_BYTES));
}

/** What one table's writes of one operation cost. */
export interface WriteUnitCount {
  /** Requests billed (a BatchWriteItem is one request of many items). */
  requests: number;
  /** Item writes billed, failed conditional writes included. */
  items: number;
  units: number;
  /** Item writes refused by their condition (billed all the same). */
  conditionFailures: number;
}

/** A global secondary index of a table: its name and key attributes. */
export interface IndexKeys {
  readonly name: string;
  readonly keys: readonly string[];
}

/** The embedded runtime's tables with global secondary indexes. */
export const EMBEDDED_RUNTIME_INDEXES: Readonly<Record<string, readonly IndexKeys[]>> = {
  [LOCAL_DEFAULTS.manifestTable]: [
    {
      name: MANIFEST_TABLE.indexName,
      keys: [MANIFEST_TABLE.indexPartitionKey, MANIFEST_TABLE.indexSortKey],
    },
  ],
};

/** Write units per table and operation, as the proxy saw them. */
export class WriteUnitLedger {
  private readonly counts = new Map<string, Map<string, WriteUnitCount>>();

  constructor(
    private readonly indexes: Readonly<
      Record<string, readonly IndexKeys[]>
    > = EMBEDDED_RUNTIME_INDEXES,
  ) {}

  /**
   * Bills the index writes of one item written to `table`: one per index whose key attributes
   * the item, as stored after the write, holds (`attributes`: its attribute names).
   */
  recordIndexWrites(
    table: string,
    operation: string,
    attributes: readonly string[],
    itemBytes: number,
  ): void {
    for (const index of this.indexes[table] ?? [])
      if (index.keys.every((key) => attributes.includes(key)))
        this.record(table, `${operation} ${index.name}`, [itemBytes]);
  }

  /** Records one billed request: the sizes of the items it wrote (or tried to write). */
  record(
    table: string,
    operation: string,
    itemBytes: readonly number[],
    conditionFailed = false,
  ): void {
    const byOperation = this.counts.get(table) ?? new Map<string, WriteUnitCount>();
    this.counts.set(table, byOperation);
    const count = byOperation.get(operation) ?? {
      requests: 0,
      items: 0,
      units: 0,
      conditionFailures: 0,
    };
    byOperation.set(operation, count);
    count.requests += 1;
    count.items += itemBytes.length;
    count.units += itemBytes.reduce((sum, bytes) => sum + writeUnitsOfItem(bytes), 0);
    if (conditionFailed) count.conditionFailures += itemBytes.length;
  }

  /** Units per table and operation: `{ table: { PutItem: {...}, BatchWriteItem: {...} } }`. */
  byTable(): Record<string, Record<string, WriteUnitCount>> {
    return Object.fromEntries(
      [...this.counts].map(([table, ops]) => [
        table,
        Object.fromEntries([...ops].map(([op, count]) => [op, { ...count }])),
      ]),
    );
  }

  /** Units written to one table (every operation), or to every table without an argument. */
  units(table?: string): number {
    let sum = 0;
    for (const [name, ops] of this.counts)
      if (table === undefined || name === table) for (const c of ops.values()) sum += c.units;
    return sum;
  }

  /** Item writes to one table, or to every table. */
  items(table?: string): number {
    let sum = 0;
    for (const [name, ops] of this.counts)
      if (table === undefined || name === table) for (const c of ops.values()) sum += c.items;
    return sum;
  }

  reset(): void {
    this.counts.clear();
  }
}
