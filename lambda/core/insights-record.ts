/**
 * The Insights records (docs/formats.md#insights-events) the detector raises: their shape, their
 * ids (derived from the series and start minute, so judging the same counts again yields the
 * same records) and their statistics and attributions as CloudTrail prints them.
 */
import { createHash } from 'node:crypto';
import { formatIsoSeconds } from './contracts';
import {
  ATTRIBUTES,
  MINUTE_MS,
  type AttributeCounts,
  type InsightType,
  type SeriesKey,
} from './insights-counts';

const TOP_ATTRIBUTIONS = 5;

export interface InsightRecord {
  readonly eventVersion: string;
  readonly eventTime: string;
  readonly awsRegion: string;
  readonly eventID: string;
  readonly eventType: 'AwsCloudTrailInsight';
  readonly recipientAccountId: string;
  readonly sharedEventID: string;
  readonly insightDetails: {
    readonly state: 'Start' | 'End';
    readonly eventSource: string;
    readonly eventName: string;
    readonly insightType: InsightType;
    readonly errorCode?: string;
    readonly insightContext: {
      readonly statistics: {
        readonly baseline: { readonly average: number };
        readonly insight: { readonly average: number };
        readonly insightDuration: number;
        readonly baselineDuration: number;
      };
      readonly attributions: readonly {
        readonly attribute: string;
        readonly insight: readonly { readonly value: string; readonly average: number }[];
        readonly baseline: readonly { readonly value: string; readonly average: number }[];
      }[];
    };
  };
  readonly eventCategory: 'Insight';
}

/** An Insight started and not yet ended: what its Start and End records are built from. */
export interface OpenInsight {
  readonly kind: 'spike' | 'drop';
  readonly start: number;
  readonly sharedEventID: string;
  readonly baselineRate: number;
  readonly baselineMinutes: number;
  readonly baselineAttributions: AttributeCounts;
  calls: number;
  readonly attributions: AttributeCounts;
}

export function uuidFrom(text: string): string {
  const hex = createHash('sha256').update(text).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function minuteTime(minute: number): string {
  return formatIsoSeconds(minute * MINUTE_MS);
}

/** Averages as CloudTrail prints them: plain numbers, 8 significant digits. */
function average(value: number): number {
  return Number(value.toPrecision(8));
}

function top(
  counts: Record<string, number>,
  minutes: number,
): { value: string; average: number }[] {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, TOP_ATTRIBUTIONS)
    .map(([value, n]) => ({ value, average: average(minutes > 0 ? n / minutes : 0) }));
}

/** A Start (dated at the insight's start, covering it up to `until`) or End record of a series. */
export function insightRecord(
  series: { readonly key: SeriesKey; readonly id: string },
  open: OpenInsight,
  phase: 'Start' | 'End',
  until: number,
  eventVersion: string,
): InsightRecord {
  const duration = Math.max(1, until - open.start);
  const key = series.key;
  return {
    eventVersion,
    eventTime: minuteTime(phase === 'Start' ? open.start : until),
    awsRegion: key.region,
    eventID: uuidFrom(`${series.id}|${open.start}|${open.kind}|${phase}`),
    eventType: 'AwsCloudTrailInsight',
    recipientAccountId: key.account,
    sharedEventID: open.sharedEventID,
    insightDetails: {
      state: phase,
      eventSource: key.eventSource,
      eventName: key.eventName,
      insightType: key.insightType,
      ...(key.errorCode !== undefined ? { errorCode: key.errorCode } : {}),
      insightContext: {
        statistics: {
          baseline: { average: average(open.baselineRate) },
          insight: { average: average(open.calls / duration) },
          insightDuration: duration,
          baselineDuration: open.baselineMinutes,
        },
        attributions: ATTRIBUTES.map((attribute) => ({
          attribute,
          insight: top(open.attributions[attribute], duration),
          baseline: top(open.baselineAttributions[attribute], open.baselineMinutes),
        })),
      },
    },
    eventCategory: 'Insight',
  };
}
