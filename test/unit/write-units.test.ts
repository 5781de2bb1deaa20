import { documentItemSizeBytes } from '../support/dynamo-limits';
import { WriteUnitLedger, writeUnitsOfItem } from '../support/write-units';

/** A plain item of exactly `bytes` bytes as DynamoDB counts them (attribute names included). */
function itemOf(bytes: number): Record<string, unknown> {
  const item = { pk: 'p', sk: 's', j: '' };
  item.j = 'x'.repeat(bytes - documentItemSizeBytes(item));
  expect(documentItemSizeBytes(item)).toBe(bytes);
  return item;
}

describe('write units as billed', () => {
  it.each([
    [7, 1],
    [1024, 1],
    [1025, 2],
    [2048, 2],
    [2049, 3],
    [400 * 1024, 400],
  ])('an item of %i bytes costs %i write units', (bytes, units) => {
    expect(writeUnitsOfItem(documentItemSizeBytes(itemOf(bytes)))).toBe(units);
  });

  it('counts each item of a batch on its own, per table and operation', () => {
    const ledger = new WriteUnitLedger();
    ledger.record('history', 'BatchWriteItem', [100, 1025, 3000]);
    ledger.record('history', 'PutItem', [1024], true);
    ledger.record('dedup', 'PutItem', [10]);
    expect(ledger.units('history')).toBe(1 + 2 + 3 + 1);
    expect(ledger.units()).toBe(8);
    expect(ledger.items('history')).toBe(4);
    expect(ledger.byTable()).toEqual({
      history: {
        BatchWriteItem: { requests: 1, items: 3, units: 6, conditionFailures: 0 },
        PutItem: { requests: 1, items: 1, units: 1, conditionFailures: 1 },
      },
      dedup: { PutItem: { requests: 1, items: 1, units: 1, conditionFailures: 0 } },
    });
    ledger.reset();
    expect(ledger.units()).toBe(0);
  });

  it('bills a global secondary index write when the written item holds its keys', () => {
    const ledger = new WriteUnitLedger({
      manifest: [{ name: 'byStream', keys: ['stream', 'at'] }],
    });
    ledger.record('manifest', 'PutItem', [300]);
    ledger.recordIndexWrites('manifest', 'PutItem', ['pk', 'stream'], 300);
    expect(ledger.units('manifest')).toBe(1);
    ledger.record('manifest', 'UpdateItem', [1500]);
    ledger.recordIndexWrites('manifest', 'UpdateItem', ['pk', 'stream', 'at'], 1500);
    expect(ledger.units('manifest')).toBe(1 + 2 + 2);
    expect(ledger.byTable().manifest!['UpdateItem byStream']).toEqual({
      requests: 1,
      items: 1,
      units: 2,
      conditionFailures: 0,
    });
    ledger.recordIndexWrites('history', 'PutItem', ['stream', 'at'], 300);
    expect(ledger.units('history')).toBe(0);
  });
});
