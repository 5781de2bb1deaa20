import { MAX_NESTING_DEPTH, normaliseRecord, RecordError } from '../../lambda/core/records';

function nested(levels: number): string {
  // requestParameters itself is one level inside the record.
  const inner = '{"a":'.repeat(levels - 1) + '1' + '}'.repeat(levels - 1);
  return `{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1","userIdentity":{},"requestParameters":${inner}}`;
}

const context = {
  accountId: '123456789012',
  nowMs: Date.parse('2024-01-02T00:00:00Z'),
  newEventId: () => 'id',
};

describe('nesting depth', () => {
  it(`accepts a record nested ${MAX_NESTING_DEPTH} levels deep`, () => {
    expect(normaliseRecord(nested(MAX_NESTING_DEPTH), context).eventID).toBe('id');
  });

  it.each([MAX_NESTING_DEPTH + 1, 20_000])(
    'refuses a record nested %i levels deep as InvalidData',
    (levels) => {
      const attempt = (): unknown => normaliseRecord(nested(levels), context);
      expect(attempt).toThrow(RecordError);
      expect(attempt).toThrow(/eventData: nests objects or arrays more than 128 levels deep/);
    },
  );

  it('does not count brackets inside strings', () => {
    const record = nested(3).replace('"a":1', `"a":"${'{['.repeat(500)}"`);
    expect(normaliseRecord(record, context).eventID).toBe('id');
  });
});
