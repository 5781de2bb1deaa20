import {
  EVENT_OVERHEAD_BYTES,
  logEventTimestamp,
  logStreamName,
  MAX_CALL_BYTES,
  MAX_EVENT_BYTES,
  planLogEvents,
  type LogEventInput,
} from '../../lambda/core/log-events';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);
const HOUR = 3600_000;
const DAY = 24 * HOUR;

function input(
  index: number,
  eventTimeMs: number,
  text = `{"i":${index}}`,
  arrivalMs = NOW,
): LogEventInput {
  return { index, text, eventTimeMs, arrivalMs };
}

describe('CloudWatch Logs planning', () => {
  it('names the stream ACCOUNT_CloudTrail_REGION', () => {
    expect(logStreamName('111122223333', 'eu-west-1')).toBe('111122223333_CloudTrail_eu-west-1');
  });

  it.each([
    ['recent: its eventTime', NOW - HOUR, NOW, NOW - HOUR],
    ['older than 14 days: its arrival time', NOW - 30 * DAY, NOW - 5 * HOUR, NOW - 5 * HOUR],
    ['old and arrived long ago: the delivery time', NOW - 400 * DAY, NOW - 20 * DAY, NOW],
    ['far in the future: its arrival time', NOW + 5 * HOUR, NOW - HOUR, NOW - HOUR],
    ['unreadable eventTime: its arrival time', Number.NaN, NOW - HOUR, NOW - HOUR],
  ])('timestamp of a record %s', (_name, eventTimeMs, arrivalMs, expected) => {
    expect(logEventTimestamp(input(0, eventTimeMs, '{}', arrivalMs), NOW)).toBe(expected);
  });

  it('keeps the original eventTime in the message of a re-stamped event', () => {
    const text = '{"eventTime":"2020-01-01T00:00:00Z"}';
    const plan = planLogEvents([input(0, Date.UTC(2020, 0, 1), text, NOW - HOUR)], NOW);
    expect(plan.restamped).toBe(1);
    expect(plan.calls[0]![0]).toMatchObject({
      message: text,
      timestamp: NOW - HOUR,
      restamped: true,
    });
  });

  it('sorts chronologically, stable for equal times', () => {
    const plan = planLogEvents(
      [input(0, NOW - 1000), input(1, NOW - 3000), input(2, NOW - 1000)],
      NOW,
    );
    expect(plan.calls.map((c) => c.map((e) => e.index))).toEqual([[1, 0, 2]]);
  });

  it('skips records over 256 KB and counts them', () => {
    const big = `"${'a'.repeat(MAX_EVENT_BYTES - 1)}"`;
    const plan = planLogEvents([input(0, NOW - 1000, big), input(1, NOW - 1000)], NOW);
    expect(plan.skipped).toBe(1);
    expect(plan.calls.flat().map((e) => e.index)).toEqual([1]);
  });

  it('cuts calls at 10,000 events', () => {
    const plan = planLogEvents(
      Array.from({ length: 10_001 }, (_, i) => input(i, NOW - 1000)),
      NOW,
    );
    expect(plan.calls.map((c) => c.length)).toEqual([10_000, 1]);
  });

  it('cuts calls at 1,048,576 bytes counting 26 bytes per event', () => {
    const text = 'x'.repeat(100_000);
    const plan = planLogEvents(
      Array.from({ length: 12 }, (_, i) => input(i, NOW - 1000, text)),
      NOW,
    );
    for (const call of plan.calls) {
      expect(call.reduce((s, e) => s + e.sizeBytes, 0)).toBeLessThanOrEqual(MAX_CALL_BYTES);
      expect(call[0]!.sizeBytes).toBe(100_000 + EVENT_OVERHEAD_BYTES);
    }
    expect(plan.calls.map((c) => c.length)).toEqual([10, 2]);
  });

  it('cuts calls so that none spans 24 hours', () => {
    const plan = planLogEvents(
      [input(0, NOW - 3 * DAY), input(1, NOW - 2 * DAY), input(2, NOW - 2 * DAY + HOUR)],
      NOW,
    );
    expect(plan.calls.map((c) => c.map((e) => e.index))).toEqual([[0], [1, 2]]);
  });
});
