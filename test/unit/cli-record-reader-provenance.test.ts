/**
 * put-events replaying opentrail's own log files (docs/formats.md#provenance): the reader drops
 * each record's `opentrailProvenance` stamp and leaves every other byte as written.
 */
import { withoutProvenance } from '../../cli/shared/record-reader';
import { parseRecordsText } from '../../cli/shared/record-text';

const STAMP =
  '"opentrailProvenance":{"principalArn":"arn:aws:iam::111111111111:user/opentrail-local","accountId":"111111111111","sourceIPAddress":"127.0.0.1","requestId":"r-1","receivedAt":"2026-11-25T06:00:01.234Z"}';

describe('withoutProvenance', () => {
  it('drops the stamp from each record of a log file, keeping the other members byte for byte', () => {
    // Arrange: a log file as the packager writes it, a number spelled as the producer spelled it.
    const log = `{"Records":[{"eventVersion":"1.11","eventTime":"2026-11-25T06:00:00Z","n":1.50,${STAMP}},{"eventID":"b",${STAMP},"big":12345678901234567890}]}`;
    const parsed = parseRecordsText(log);
    if (parsed.kind !== 'records') throw new Error(`not records: ${parsed.kind}`);

    // Act
    const replayed = parsed.items.map((item) => {
      if (!item.ok) throw new Error(item.message);
      return withoutProvenance({ source: 'log.json', ...item });
    });

    // Assert
    expect(replayed.map((r) => r.text)).toEqual([
      '{"eventVersion":"1.11","eventTime":"2026-11-25T06:00:00Z","n":1.50}',
      '{"eventID":"b","big":12345678901234567890}',
    ]);
    expect(replayed.map((r) => Object.keys(r.value))).toEqual([
      ['eventVersion', 'eventTime', 'n'],
      ['eventID', 'big'],
    ]);
  });

  it('leaves a record without a stamp as it was', () => {
    const record = {
      source: '-',
      position: 'record',
      value: { eventID: 'a', note: 'opentrailProvenance' },
      text: '{"eventID":"a","note":"opentrailProvenance"}',
    };

    expect(withoutProvenance(record)).toBe(record);
  });
});
