import {
  MinuteAggregator,
  seriesOf,
  type CountableRecord,
} from '../../lambda/core/insights-counts';
import { logPoissonTail } from '../../lambda/core/insights-baseline';

const write: CountableRecord = {
  eventTime: '2026-03-02T10:15:42Z',
  eventSource: 'iam.amazonaws.com',
  eventName: 'CreateUser',
  awsRegion: 'us-east-1',
  recipientAccountId: '111122223333',
  userIdentity: { arn: 'arn:aws:iam::111122223333:user/alice' },
  userAgent: 'aws-cli/2',
  readOnly: false,
  managementEvent: true,
  eventCategory: 'Management',
  eventType: 'AwsApiCall',
};

describe('which records an Insight counts', () => {
  it.each<[string, CountableRecord, string[]]>([
    ['a write management call counts for the call rate', write, ['ApiCallRateInsight']],
    ['a read call counts for nothing', { ...write, readOnly: true }, []],
    ['a call without readOnly is not known to write', { ...write, readOnly: undefined }, []],
    [
      'a failed write counts for the call rate and its error code',
      { ...write, errorCode: 'AccessDenied' },
      ['ApiCallRateInsight', 'ApiErrorRateInsight:AccessDenied'],
    ],
    [
      'a failed read counts for the error rate only',
      { ...write, readOnly: true, errorCode: 'Throttling' },
      ['ApiErrorRateInsight:Throttling'],
    ],
    ['a data event counts for nothing', { ...write, eventCategory: 'Data' }, []],
    [
      'an Insights record never feeds the next Insight',
      { ...write, eventType: 'AwsCloudTrailInsight', eventCategory: 'Insight' },
      [],
    ],
    ['a record without eventSource counts for nothing', { ...write, eventSource: undefined }, []],
  ])('%s', (_name, record, expected) => {
    expect(
      seriesOf(record).map((k) => k.insightType + (k.errorCode ? `:${k.errorCode}` : '')),
    ).toEqual(expected);
  });

  it('takes the account from recipientAccountId, else from userIdentity.accountId', () => {
    const [key] = seriesOf({
      ...write,
      recipientAccountId: undefined,
      userIdentity: { accountId: '444455556666' },
    });
    expect(key?.account).toBe('444455556666');
  });
});

describe('aggregation within a batch', () => {
  it('turns 5,000 events of one key in one minute into one count, whatever the event count', () => {
    const aggregator = new MinuteAggregator();
    for (let i = 0; i < 5000; i += 1)
      aggregator.add({
        ...write,
        eventTime: `2026-03-02T10:15:${String(i % 60).padStart(2, '0')}Z`,
      });
    const counts = aggregator.drain();
    expect(counts).toHaveLength(1);
    expect(counts[0]).toMatchObject({
      minute: Date.parse('2026-03-02T10:15:00Z') / 60_000,
      calls: 5000,
    });
    expect(counts[0]!.attributions.userIdentityArn).toEqual({
      'arn:aws:iam::111122223333:user/alice': 5000,
    });
    expect(counts[0]!.attributions.errorCode).toEqual({ null: 5000 });
  });

  it('keeps one count per key per minute: distinct keys and minutes, not events, set the size', () => {
    const aggregator = new MinuteAggregator();
    for (let i = 0; i < 3000; i += 1)
      aggregator.add({
        ...write,
        eventName: `Op${i % 3}`,
        eventTime: `2026-03-02T10:${String(10 + (i % 2)).padStart(2, '0')}:00Z`,
      });
    expect(aggregator.size).toBe(6);
    expect(aggregator.drain().reduce((sum, c) => sum + c.calls, 0)).toBe(3000);
    expect(aggregator.size).toBe(0);
  });

  it('keeps the 20 largest values of an attribute per minute', () => {
    const aggregator = new MinuteAggregator();
    for (let i = 0; i < 30; i += 1)
      for (let n = 0; n <= i; n += 1) aggregator.add({ ...write, userAgent: `agent-${i}` });
    const [count] = aggregator.drain();
    const agents = Object.keys(count!.attributions.userAgent);
    expect(agents).toHaveLength(20);
    expect(agents).toContain('agent-29');
    expect(agents).not.toContain('agent-0');
  });
});

describe('the Poisson tail bound', () => {
  function exactLogTail(k: number, mu: number): number {
    let below = 0;
    let term = Math.exp(-mu);
    for (let j = 0; j < k; j += 1) {
      below += term;
      term *= mu / (j + 1);
    }
    return Math.log(1 - below);
  }

  it.each([
    [15, 5],
    [30, 10],
    [8, 1],
    [45, 15],
  ])('bounds ln P(X ≥ %d) for mean %d from above, within 20 %%', (k, mu) => {
    const exact = exactLogTail(k, mu);
    const bound = logPoissonTail(k, mu);
    expect(bound).toBeGreaterThanOrEqual(exact - 1e-9);
    expect(bound - exact).toBeLessThan(Math.log(1.2));
  });

  it('is 0 (certain) when the count does not exceed the mean', () => {
    expect(logPoissonTail(5, 5)).toBe(0);
    expect(logPoissonTail(0, 0.1)).toBe(0);
  });
});
