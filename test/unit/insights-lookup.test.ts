/**
 * Insights records in event history: found by the EventName and EventSource of the call they
 * are about (insightDetails), as CloudTrail's LookupEvents finds them; and the trail
 * insightSelectors that decide which trails receive them.
 */
import { derivedFields, lookupPairs } from '../../lambda/core/history-keys';
import { validateTrailConfigs } from '../../lambda/core/selectors';

const START = {
  eventVersion: '1.11',
  eventTime: '2026-01-05T10:00:00Z',
  awsRegion: 'us-east-1',
  eventID: '5a5c1c4e-7d3b-5f1e-9f4e-1c0b2a3d4e5f',
  eventType: 'AwsCloudTrailInsight',
  recipientAccountId: '123456789012',
  sharedEventID: 'b1e6c2a4-2f3d-5c6e-8a9b-0c1d2e3f4a5b',
  insightDetails: {
    state: 'Start',
    eventSource: 'iam.amazonaws.com',
    eventName: 'CreateAccessKey',
    insightType: 'ApiCallRateInsight',
  },
  eventCategory: 'Insight',
};

describe('Insights records in event history', () => {
  it('take EventName and EventSource from insightDetails', () => {
    expect(derivedFields(START)).toMatchObject({
      eventId: START.eventID,
      eventName: 'CreateAccessKey',
      eventSource: 'iam.amazonaws.com',
    });
  });

  it('are indexed under that EventName and EventSource', () => {
    expect(lookupPairs(START)).toEqual(
      expect.arrayContaining([
        ['EventName', 'CreateAccessKey'],
        ['EventSource', 'iam.amazonaws.com'],
      ]),
    );
  });
});

describe('trail insightSelectors', () => {
  it.each([
    [
      [{ InsightType: 'ApiCallRate' }],
      'insightSelectors InsightType "ApiCallRate" must be one of ApiCallRateInsight, ApiErrorRateInsight',
    ],
    [
      [{ InsightType: 'ApiCallRateInsight' }, { InsightType: 'ApiCallRateInsight' }],
      'insightSelectors names ApiCallRateInsight twice',
    ],
    ['all', 'insightSelectors must be an array'],
  ])('refuses %j, naming the field and the rule', (insightSelectors, message) => {
    const problems = validateTrailConfigs([{ name: 'audit', insightSelectors } as never], 5);
    expect(problems).toEqual([expect.stringContaining(`trail "audit": ${message}`)]);
  });

  it('accepts CloudTrail’s shape, and none', () => {
    expect(
      validateTrailConfigs(
        [
          { name: 'audit', insightSelectors: [{ InsightType: 'ApiErrorRateInsight' }] },
          { name: 'other', prefix: 'other', insightSelectors: [] },
        ],
        5,
      ),
    ).toEqual([]);
  });
});
