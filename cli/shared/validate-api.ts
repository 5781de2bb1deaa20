/**
 * validate-logs' calls to the opentrail API through the AWS SDK's `CloudTrailClient`
 * (see cli/shared/cloudtrail-api.ts): ListPublicKeys for the keys and their validity windows,
 * DescribeTrails and GetTrailStatus for where each digest chain begins and where its head is
 * (docs/formats.md#gettrailstatus-and-describetrails).
 */
import {
  DescribeTrailsCommand,
  GetTrailStatusCommand,
  ListPublicKeysCommand,
  type CloudTrailClient,
  type DescribeTrailsCommandOutput,
  type ListPublicKeysCommandOutput,
} from '@aws-sdk/client-cloudtrail';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import type { ChainExpectation, WindowedPublicKey } from '../../lambda/core/digest-validate';
import { FAR_FUTURE_EPOCH_SECONDS } from '../../lambda/core/public-keys';
import type { DigestChainStatus, TrailStatus } from '../../lambda/core/trail-status';
import { keepRawAnswer, rawJson, type RawAnswer } from './cloudtrail-api';
import type { ValidateLogsSettings } from './validate-settings';

/**
 * Sends one SDK command to the opentrail API, keeping its raw answer; an error answer is thrown as
 * `OPERATION ENDPOINT: STATUS: message` (the API's own message, else the start of the body).
 */
async function callApi<Output>(
  client: CloudTrailClient,
  endpoint: string,
  operation: string,
  command: Parameters<typeof keepRawAnswer>[0],
): Promise<{ output: Output; raw: RawAnswer }> {
  const raw = keepRawAnswer(command);
  try {
    const output = (await client.send(command as never)) as Output;
    return { output, raw };
  } catch (error) {
    if (raw.status === undefined) throw error;
    const body = raw.body ?? '';
    const message = rawJson(raw)?.message;
    throw new Error(
      `${operation} ${endpoint}: ${raw.status}: ${typeof message === 'string' ? message : body.slice(0, 200)}`,
    );
  }
}

/**
 * ListPublicKeys (all pages) → DER keys by fingerprint (computed, not trusted from the answer),
 * each with its validity window (a ValidityEndTime of 9999-12-31 means none).
 */
export async function listPublicKeys(
  client: CloudTrailClient,
  endpoint: string,
  startMs: number,
  endMs: number,
): Promise<Map<string, WindowedPublicKey>> {
  const keys = new Map<string, WindowedPublicKey>();
  let nextToken: string | undefined;
  do {
    const { output } = await callApi<ListPublicKeysCommandOutput>(
      client,
      endpoint,
      'ListPublicKeys',
      new ListPublicKeysCommand({
        StartTime: new Date(Math.floor(startMs / 1000) * 1000),
        EndTime: new Date(Math.ceil(endMs / 1000) * 1000),
        ...(nextToken !== undefined ? { NextToken: nextToken } : {}),
      }),
    );
    for (const entry of output.PublicKeyList ?? []) {
      if (!entry.Value) continue;
      const der = Buffer.from(entry.Value);
      const until = entry.ValidityEndTime?.getTime();
      keys.set(fingerprintOfPublicKey(der), {
        der,
        validFromMs: entry.ValidityStartTime?.getTime() ?? 0,
        ...(until !== undefined && until < FAR_FUTURE_EPOCH_SECONDS * 1000
          ? { validUntilMs: until }
          : {}),
      });
    }
    nextToken = output.NextToken || undefined;
  } while (nextToken);
  return keys;
}

/** What the API knows of the chains to validate: GetTrailStatus per trail. */
export interface ChainStatus {
  readonly expectations: ChainExpectation[];
  /** Trails whose status carried no chain information (a CloudTrail-only answer). */
  readonly unknown: string[];
  readonly periodSeconds?: number;
  readonly graceSeconds?: number;
}

/**
 * GetTrailStatus for the named trail, or for every trail DescribeTrails lists with log-file
 * validation on, in this bucket and under this prefix; chains filtered by account and region.
 */
export async function fetchChainStatus(
  client: CloudTrailClient,
  endpoint: string,
  settings: Pick<ValidateLogsSettings, 'trailName' | 'bucket' | 'prefix' | 'account' | 'region'>,
): Promise<ChainStatus> {
  let names: string[];
  if (settings.trailName !== undefined) {
    names = [settings.trailName];
  } else {
    const { output: described } = await callApi<DescribeTrailsCommandOutput>(
      client,
      endpoint,
      'DescribeTrails',
      new DescribeTrailsCommand({}),
    );
    names = (described.trailList ?? [])
      .filter(
        (t) =>
          t.LogFileValidationEnabled &&
          t.S3BucketName === settings.bucket &&
          (t.S3KeyPrefix ?? '') === (settings.prefix ?? ''),
      )
      .flatMap((t) => (t.Name ? [t.Name] : []));
  }
  const result: {
    expectations: ChainExpectation[];
    unknown: string[];
    periodSeconds?: number;
    graceSeconds?: number;
  } = { expectations: [], unknown: [] };
  for (const name of names) {
    // The SDK's GetTrailStatus output has no Opentrail* members (its deserializer drops what the
    // CloudTrail model does not define): they are read from the raw body of the same call.
    const { raw } = await callApi(
      client,
      endpoint,
      'GetTrailStatus',
      new GetTrailStatusCommand({ Name: name }),
    );
    const status = (rawJson(raw) ?? {}) as Partial<TrailStatus>;
    const chains: unknown = status.OpentrailDigestChains;
    if (!Array.isArray(chains)) {
      result.unknown.push(name);
      continue;
    }
    if (typeof status.OpentrailDigestPeriodSeconds === 'number')
      result.periodSeconds = status.OpentrailDigestPeriodSeconds;
    if (typeof status.OpentrailDigestGraceSeconds === 'number')
      result.graceSeconds = status.OpentrailDigestGraceSeconds;
    for (const chain of chains as DigestChainStatus[]) {
      if (typeof chain.FirstDigestStartTime !== 'number') continue;
      if (settings.account !== undefined && chain.AccountId !== settings.account) continue;
      if (settings.region !== undefined && chain.Region !== settings.region) continue;
      result.expectations.push({
        trailName: name,
        account: chain.AccountId,
        region: chain.Region,
        homeRegion: chain.HomeRegion,
        firstStartMs: chain.FirstDigestStartTime * 1000,
        ...(chain.LatestDigestEndTime !== undefined
          ? { headEndMs: chain.LatestDigestEndTime * 1000 }
          : {}),
        ...(Array.isArray(chain.EarlyClosedDigestEndTimes)
          ? { earlyClosedEndsMs: chain.EarlyClosedDigestEndTimes.map((t) => t * 1000) }
          : {}),
      });
    }
  }
  return result;
}
