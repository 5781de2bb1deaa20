/**
 * GetTrailStatus (docs/formats.md#gettrailstatus-and-describetrails): CloudTrail's operation and
 * wire shape, so `aws cloudtrail get-trail-status --endpoint-url` and the SDK's
 * `GetTrailStatusCommand` work, plus what `opentrail validate-logs` needs to find every missing
 * digest (see docs/guarantees.md#tamper-evidence).
 *
 * `POST /` with `X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.GetTrailStatus`,
 * request `{"Name"}` (trail name or ARN) →
 * `{"IsLogging": true, "LatestDeliveryTime", "LatestDigestDeliveryTime", "StartLoggingTime"
 * (epoch seconds, each absent until there is one), "TimeLoggingStarted" (ISO-8601),
 * "OpentrailLogFileValidation", "OpentrailDigestPeriodSeconds", "OpentrailDigestGraceSeconds",
 * "OpentrailDigestChains": [{"AccountId", "Region", "HomeRegion", "FirstDigestStartTime",
 * "LatestDigestEndTime"?, "LatestDigestS3Bucket"?, "LatestDigestS3Object"?,
 * "EarlyClosedDigestEndTimes"? (embedded runtime: periods `opentrail digest` closed early)}]}` — one chain per
 * (account, region) the trail has delivered for; clients that do not know the `Opentrail*`
 * fields ignore them. LatestDigestDeliveryTime is the end of the newest digest's period (the
 * chain head), not the moment it was written (within the grace after that).
 *
 * DescribeTrails (`…CloudTrail_20131101.DescribeTrails`, request `{"trailNameList"?}`) →
 * `{"trailList":[{"Name", "S3BucketName", "S3KeyPrefix"?, "LogFileValidationEnabled",
 * "HomeRegion", "IsOrganizationTrail", "IsMultiRegionTrail", "TrailARN"?}]}`: how
 * validate-logs finds the trails of a bucket and prefix when none is named.
 */
import { ApiError } from './api-error';
import type { TrailConfig } from './config';
import { DESCRIBE_TRAILS_TARGET, GET_TRAIL_STATUS_TARGET } from './contracts';
import { periodStart, streamId } from './digest-chain';
import type { DeliveryLog, DigestChainStore, EarlyCloseLog } from './ports';

export { DESCRIBE_TRAILS_TARGET, GET_TRAIL_STATUS_TARGET };

export interface TrailStatusDeps {
  readonly trails: readonly TrailConfig[];
  /** The log bucket every trail delivers to. */
  readonly bucket: string;
  /** The deployment's account, for trail ARNs; absent (embedded runtime): no TrailARN. */
  readonly account?: string;
  /** The stream registry and chain heads. */
  readonly chain: Pick<DigestChainStore, 'listStreams' | 'getHead'>;
  readonly deliveries: DeliveryLog;
  /** Early closes (embedded runtime); absent: periods are never closed early (deployed). */
  readonly earlyCloses?: EarlyCloseLog;
  /** The deployment's region (HOMEREGION of digest keys). */
  readonly homeRegion: string;
  readonly periodMs: number;
  /** How long after a period ends its digest may still be on its way. */
  readonly graceMs: number;
}

export interface DigestChainStatus {
  readonly AccountId: string;
  readonly Region: string;
  readonly HomeRegion: string;
  readonly FirstDigestStartTime: number;
  readonly LatestDigestEndTime?: number;
  readonly LatestDigestS3Bucket?: string;
  readonly LatestDigestS3Object?: string;
  /** Ends (epoch seconds) of periods closed early by `opentrail digest`. */
  readonly EarlyClosedDigestEndTimes?: readonly number[];
}

export interface TrailStatus {
  readonly IsLogging: boolean;
  readonly LatestDeliveryTime?: number;
  readonly LatestDigestDeliveryTime?: number;
  readonly StartLoggingTime?: number;
  readonly TimeLoggingStarted?: string;
  readonly OpentrailLogFileValidation: boolean;
  readonly OpentrailDigestPeriodSeconds: number;
  readonly OpentrailDigestGraceSeconds: number;
  readonly OpentrailDigestChains: readonly DigestChainStatus[];
}

const TRAIL_ARN = /^arn:[^:]+:cloudtrail:[^:]*:\d{12}:trail\/(.+)$/;

const seconds = (ms: number): number => Math.floor(ms / 1000);

/** The GetTrailStatus operation over these trails and stores. */
export function createGetTrailStatus(
  deps: TrailStatusDeps,
): (request: Record<string, unknown>) => Promise<TrailStatus> {
  return async (request) => {
    const name = request.Name;
    if (typeof name !== 'string' || name === '') {
      throw new ApiError(
        'InvalidTrailNameException',
        'Name: required, a trail name or trail ARN (a non-empty string)',
      );
    }
    const trailName = TRAIL_ARN.exec(name)?.[1] ?? name;
    const trail = deps.trails.find((t) => t.name === trailName);
    if (!trail) {
      throw new ApiError(
        'TrailNotFoundException',
        `Name: unknown trail ${name}; trails: ${deps.trails.map((t) => t.name).join(', ') || 'none'}`,
      );
    }
    const validated = trail.logFileValidation === true;
    const streams = (await deps.chain.listStreams())
      .filter((s) => s.trail === trail.name)
      .sort((a, b) => (streamId(a) < streamId(b) ? -1 : 1));
    const chains: DigestChainStatus[] = [];
    let latestDeliveryMs: number | undefined;
    let latestDigestMs: number | undefined;
    let startMs: number | undefined;
    for (const stream of streams) {
      const id = streamId(stream);
      const delivered = await deps.deliveries.latestDeliveryMs(id);
      if (delivered !== undefined) latestDeliveryMs = Math.max(latestDeliveryMs ?? 0, delivered);
      startMs = Math.min(startMs ?? Infinity, stream.firstSeenMs);
      if (!validated) continue;
      const head = await deps.chain.getHead(id);
      if (head) latestDigestMs = Math.max(latestDigestMs ?? 0, head.endMs);
      const early = (await deps.earlyCloses?.endsMs(id)) ?? [];
      chains.push({
        AccountId: stream.account,
        Region: stream.region,
        HomeRegion: deps.homeRegion,
        // The signer's first digest of a stream starts at the period of its first file.
        FirstDigestStartTime: seconds(periodStart(stream.firstSeenMs, deps.periodMs)),
        ...(head
          ? {
              LatestDigestEndTime: seconds(head.endMs),
              LatestDigestS3Bucket: head.bucket,
              LatestDigestS3Object: head.key,
            }
          : {}),
        ...(early.length > 0
          ? { EarlyClosedDigestEndTimes: early.map(seconds).sort((a, b) => a - b) }
          : {}),
      });
    }
    return {
      IsLogging: true,
      ...(latestDeliveryMs !== undefined ? { LatestDeliveryTime: seconds(latestDeliveryMs) } : {}),
      ...(latestDigestMs !== undefined
        ? { LatestDigestDeliveryTime: seconds(latestDigestMs) }
        : {}),
      ...(startMs !== undefined
        ? {
            StartLoggingTime: seconds(startMs),
            TimeLoggingStarted: new Date(startMs).toISOString(),
          }
        : {}),
      OpentrailLogFileValidation: validated,
      OpentrailDigestPeriodSeconds: seconds(deps.periodMs),
      OpentrailDigestGraceSeconds: seconds(deps.graceMs),
      OpentrailDigestChains: chains,
    };
  };
}

export interface TrailDescription {
  readonly Name: string;
  readonly S3BucketName: string;
  readonly S3KeyPrefix?: string;
  readonly LogFileValidationEnabled: boolean;
  readonly HomeRegion: string;
  readonly IsOrganizationTrail: boolean;
  readonly IsMultiRegionTrail: boolean;
  readonly TrailARN?: string;
}

/** The DescribeTrails operation: every trail, or those `trailNameList` names (names or ARNs). */
export function createDescribeTrails(
  deps: Pick<TrailStatusDeps, 'trails' | 'bucket' | 'account' | 'homeRegion'>,
): (request: Record<string, unknown>) => Promise<{ trailList: TrailDescription[] }> {
  return (request) => {
    const list = request.trailNameList;
    if (
      list !== undefined &&
      list !== null &&
      (!Array.isArray(list) || list.some((n) => typeof n !== 'string'))
    ) {
      return Promise.reject(
        new ApiError('InvalidParameterException', 'trailNameList: must be a list of strings'),
      );
    }
    const wanted = Array.isArray(list)
      ? new Set((list as string[]).map((n) => TRAIL_ARN.exec(n)?.[1] ?? n))
      : undefined;
    return Promise.resolve({
      trailList: deps.trails
        .filter((t) => !wanted || wanted.has(t.name))
        .map((t) => ({
          Name: t.name,
          S3BucketName: deps.bucket,
          ...(t.prefix ? { S3KeyPrefix: t.prefix } : {}),
          LogFileValidationEnabled: t.logFileValidation === true,
          HomeRegion: deps.homeRegion,
          IsOrganizationTrail: t.organizationId !== undefined,
          IsMultiRegionTrail: true,
          ...(deps.account
            ? { TrailARN: `arn:aws:cloudtrail:${deps.homeRegion}:${deps.account}:trail/${t.name}` }
            : {}),
        })),
    });
  };
}
