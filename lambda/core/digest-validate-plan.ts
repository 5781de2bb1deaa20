/**
 * validate-logs' planning (docs/formats.md#what-validation-checks): its options, which chains
 * there are and which digests of each lie in the range (listing the bucket's day folders), and
 * which periods are expected to have a digest — the gap between two digests found, and the due
 * tail after the newest. Pure: I/O goes through the ObjectReader port.
 */
import { digestRegionFolder, parseDigestKey } from './digest-format';
import type { GzipStreamDigest } from './gzip-stream';
import type { ObjectReader } from './ports';
import type { ValidationProgress, ValidationResult } from './digest-validate-report';

export interface ValidateLogsOptions {
  readonly reader: ObjectReader;
  /** The bucket holding the digests. */
  readonly bucket: string;
  /** Key prefix, without leading or trailing slash. */
  readonly prefix?: string;
  /** Only this organization folder; absent: keys without one, and every `o-...` folder. */
  readonly organizationId?: string;
  /** Accounts to validate; absent: every account folder found. */
  readonly accounts?: readonly string[];
  /** Source regions (REGION folders) to validate; absent: every region folder found. */
  readonly regions?: readonly string[];
  /** Only digests of this trail; absent: every trail found (each its own chain). */
  readonly trailName?: string;
  /** Only digests of trails in this home region; absent: any. */
  readonly homeRegion?: string;
  readonly startMs: number;
  readonly endMs: number;
  /** The present: listing stops one hour past min(end, now). */
  readonly nowMs: number;
  /**
   * Public keys by fingerprint (hex MD5 of the PKCS#1 DER): PKCS#1 (or SPKI) DER, alone (a
   * `--public-key` file: any digest time accepted) or with the validity window ListPublicKeys
   * gave it (a digest whose `digestEndTime` lies outside it is INVALID).
   */
  readonly publicKeys: ReadonlyMap<string, Buffer | WindowedPublicKey>;
  /**
   * What is known about chains from outside the bucket (GetTrailStatus, `--expect`): their
   * missing tail and start are reported. Absent: neither can be judged.
   */
  readonly expectations?: readonly ChainExpectation[];
  /** Length of a regular digest period. @default 1 hour */
  readonly periodMs?: number;
  /** How long after a period ends its digest may still be on its way. @default DEFAULT_DIGEST_GRACE_MS */
  readonly graceMs?: number;
  /** Objects read at once. @default DEFAULT_VALIDATE_CONCURRENCY */
  readonly concurrency?: number;
  /**
   * Checks one log file's bytes with digestGzipMember's contract (digest-validate-logfile.ts):
   * the SHA-256 of its one gzip member's data and the bytes after it, GzipFormatError when
   * they are not one readable member. The CLI passes a pool of worker threads; any other
   * rejection reports the file `could not be read`, with its message.
   * @default digestGzipMember, in this thread
   */
  readonly checkLogBytes?: (
    bytes: Buffer,
    file: { readonly bucket: string; readonly key: string },
  ) => Promise<GzipStreamDigest>;
  readonly onResult: (result: ValidationResult) => void;
  /** Called as work completes, for a progress display. */
  readonly onProgress?: (progress: ValidationProgress) => void;
}

/** A public key with the window in which it signed (ListPublicKeys). */
export interface WindowedPublicKey {
  readonly der: Buffer;
  readonly validFromMs: number;
  /** Absent: no end (the current key). */
  readonly validUntilMs?: number;
}

/** One chain as GetTrailStatus (or `--expect TRAIL,ACCOUNT,REGION,FIRST`) describes it. */
export interface ChainExpectation {
  readonly trailName: string;
  readonly account: string;
  /** The source region (REGION folder). */
  readonly region: string;
  /** HOMEREGION of its digest keys; absent: the validation's home region, else `region`. */
  readonly homeRegion?: string;
  /** Start of the chain's first period (epoch ms). */
  readonly firstStartMs: number;
  /** digestEndTime of the newest digest the signer recorded (its head), when known. */
  readonly headEndMs?: number;
  /** Ends of the periods closed early (`opentrail digest`): boundaries besides the aligned ones. */
  readonly earlyClosedEndsMs?: readonly number[];
}

/**
 * Default grace: on AWS the signer runs hourly at minute 5 (`scheduleMinute`), EventBridge
 * Scheduler retries a failed run for up to 50 minutes and a run lasts at most 5 minutes, so a
 * period's digest is written within 60 minutes of its end; the next hourly run is the retry
 * after that. One hour therefore never reports a digest that is merely late.
 */
export const DEFAULT_DIGEST_GRACE_MS = 3_600_000;

/**
 * Objects read at once by default: with S3 20 ms away, 16 in flight left validateLogs waiting on
 * the network; 32 come within about 80% of what the embedded S3 serves with no delay at all on
 * two cores (bench/validate-logs.ts), where the CPU, not the latency, is the limit.
 */
export const DEFAULT_VALIDATE_CONCURRENCY = 32;

/** A period of a chain: [startMs, endMs). */
export interface Period {
  readonly startMs: number;
  readonly endMs: number;
}

/**
 * The periods of a gap between a digest ending at `fromMs` (or the chain's first period start)
 * and one starting at `toMs`, newest first. Regular periods end on aligned boundaries, or at an
 * early close (`earlyEndsMs`), so walking back from `toMs` names each missing digest by its end
 * (an early close not in `earlyEndsMs`, deleted with its neighbours, is named as the aligned
 * period holding it). Periods ending at or before `afterMs` (the range start) are left out.
 */
export function gapPeriods(
  fromMs: number,
  toMs: number,
  periodMs: number,
  afterMs = -Infinity,
  earlyEndsMs: readonly number[] = [],
): Period[] {
  const periods: Period[] = [];
  let endMs = toMs;
  while (endMs > fromMs && endMs > afterMs) {
    let startMs = Math.max(fromMs, Math.floor((endMs - 1) / periodMs) * periodMs);
    for (const early of earlyEndsMs) if (early > startMs && early < endMs) startMs = early;
    periods.push({ startMs, endMs });
    endMs = startMs;
  }
  return periods;
}

/**
 * The periods after a chain's newest digest found (ending at `fromMs`) that are due: each ends
 * at or before `dueMs` (now − grace) or at or before `headEndMs` (the signer recorded it) and
 * starts before `beforeMs` (the range end). Oldest first; early closes (`headEndMs`,
 * `earlyEndsMs`) are followed.
 */
export function tailPeriods(
  fromMs: number,
  options: {
    periodMs: number;
    dueMs: number;
    beforeMs: number;
    headEndMs?: number;
    earlyEndsMs?: readonly number[];
  },
): Period[] {
  const { periodMs, headEndMs } = options;
  const limitMs = Math.max(options.dueMs, headEndMs ?? -Infinity);
  const boundaries = [
    ...(options.earlyEndsMs ?? []),
    ...(headEndMs !== undefined ? [headEndMs] : []),
  ];
  const periods: Period[] = [];
  let startMs = fromMs;
  for (;;) {
    let endMs = Math.floor(startMs / periodMs) * periodMs + periodMs;
    for (const early of boundaries) if (early > startMs && early < endMs) endMs = early;
    if (endMs > limitMs || startMs >= options.beforeMs) return periods;
    periods.push({ startMs, endMs });
    startMs = endMs;
  }
}

export const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const ORG_FOLDER = /^o-[a-z0-9]{10,32}$/;

/** A digest key found in a listing. */
export interface ChainEntry {
  readonly key: string;
  readonly endMs: number;
}

/** One chain's identity, with what its keys are built from. */
export interface ChainId {
  readonly prefix?: string;
  readonly organizationId?: string;
  readonly account: string;
  readonly region: string;
  readonly trailName: string;
  readonly homeRegion: string;
}

/** Runs at most `limit` tasks at once. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** One chain to validate: its digests in range, and what is known of it from outside. */
export interface FoundChain {
  readonly id: ChainId;
  readonly entries: ChainEntry[];
  readonly expectation?: ChainExpectation;
  /** Where missing periods before the oldest digest in range may start; absent: unknown. */
  readonly floorMs?: number;
}

const ymd = (iso: string): string => `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}`;

/**
 * The `YYYY/MM/DD/` folders of `regionFolder` for the days from `fromMs` to `toMs`: each day of
 * a short span, the year, month and day folders that exist for a long one.
 */
export async function dayFolders(
  reader: ObjectReader,
  bucket: string,
  io: Limiter,
  regionFolder: string,
  fromMs: number,
  toMs: number,
): Promise<string[]> {
  const firstDay = new Date(Math.floor(fromMs / DAY_MS) * DAY_MS).toISOString();
  const lastDay = new Date(toMs).toISOString();
  const [first, last] = [ymd(firstDay), ymd(lastDay)];
  const spanDays = Math.round(
    (Date.parse(lastDay.slice(0, 10)) - Date.parse(firstDay.slice(0, 10))) / DAY_MS,
  );
  if (spanDays <= 7) {
    const days: string[] = [];
    for (let day = Date.parse(firstDay.slice(0, 10)); day <= toMs; day += DAY_MS)
      days.push(`${regionFolder}${ymd(new Date(day).toISOString())}/`);
    return days;
  }
  const within = (folder: string, length: number): boolean => {
    const name = folder.slice(regionFolder.length, -1);
    return name >= first.slice(0, length) && name <= last.slice(0, length);
  };
  const years = (await io.run(() => reader.listFolders(bucket, regionFolder))).filter((f) =>
    within(f, 4),
  );
  const months = (await Promise.all(years.map((y) => io.run(() => reader.listFolders(bucket, y)))))
    .flat()
    .filter((f) => within(f, 7));
  return (await Promise.all(months.map((m) => io.run(() => reader.listFolders(bucket, m)))))
    .flat()
    .filter((f) => within(f, 10));
}

/** Lists the digest keys in range, grouped into chains, oldest first in each. */
export async function findChains(options: ValidateLogsOptions, io: Limiter): Promise<FoundChain[]> {
  const { reader, bucket } = options;
  const root = options.prefix ? `${options.prefix}/AWSLogs/` : 'AWSLogs/';
  const lastName = (folder: string): string => folder.slice(0, -1).split('/').pop()!;

  // Account folders, with the organization folder each sits in.
  const accountFolders: { organizationId?: string; account: string }[] = [];
  const addAccounts = async (organizationId: string | undefined): Promise<void> => {
    const base = organizationId ? `${root}${organizationId}/` : root;
    if (options.accounts) {
      for (const account of options.accounts)
        accountFolders.push({ ...(organizationId ? { organizationId } : {}), account });
      return;
    }
    for (const folder of await io.run(() => reader.listFolders(bucket, base))) {
      const name = lastName(folder);
      if (!ORG_FOLDER.test(name))
        accountFolders.push({ ...(organizationId ? { organizationId } : {}), account: name });
    }
  };
  if (options.organizationId) {
    await addAccounts(options.organizationId);
  } else {
    await addAccounts(undefined);
    const organizations = (await io.run(() => reader.listFolders(bucket, root)))
      .map(lastName)
      .filter((name) => ORG_FOLDER.test(name));
    for (const organizationId of organizations) await addAccounts(organizationId);
  }

  // The days whose folders may hold a digest ending in (start, end + 1 h], the covering one of
  // `end` included; never past the present.
  const lastMs = Math.min(options.endMs, options.nowMs) + HOUR_MS;

  const chains = new Map<string, { id: ChainId; entries: ChainEntry[] }>();
  await Promise.all(
    accountFolders.map(async ({ organizationId, account }) => {
      const folderParts = {
        ...(options.prefix ? { prefix: options.prefix } : {}),
        ...(organizationId ? { organizationId } : {}),
        account,
      };
      const regions =
        options.regions ??
        (
          await io.run(() =>
            reader.listFolders(bucket, digestRegionFolder({ ...folderParts, region: '' })),
          )
        ).map(lastName);
      const regionDays = await Promise.all(
        regions.map(async (region) => ({
          region,
          days: await dayFolders(
            reader,
            bucket,
            io,
            digestRegionFolder({ ...folderParts, region }),
            options.startMs,
            lastMs,
          ),
        })),
      );
      await Promise.all(
        regionDays.flatMap(({ region, days }) =>
          days.map(async (day) => {
            const keys = await io.run(() => reader.list(bucket, day));
            for (const key of keys) {
              const parts = parseDigestKey(key);
              if (
                !parts ||
                parts.account !== account ||
                parts.region !== region ||
                parts.organizationId !== organizationId ||
                (options.trailName !== undefined && parts.trailName !== options.trailName) ||
                (options.homeRegion !== undefined && parts.homeRegion !== options.homeRegion)
              )
                continue;
              const id: ChainId = {
                ...folderParts,
                region,
                trailName: parts.trailName,
                homeRegion: parts.homeRegion,
              };
              const chainKey = JSON.stringify([
                organizationId,
                account,
                region,
                parts.trailName,
                parts.homeRegion,
              ]);
              let chain = chains.get(chainKey);
              if (!chain) {
                chain = { id, entries: [] };
                chains.set(chainKey, chain);
              }
              chain.entries.push({ key, endMs: parts.endMs });
            }
          }),
        ),
      );
    }),
  );

  // Chains known from outside the bucket: matched to the ones found, or empty (all deleted).
  const expected = new Map<string, ChainExpectation>();
  for (const expectation of options.expectations ?? []) {
    const homeRegion = expectation.homeRegion ?? options.homeRegion ?? expectation.region;
    const chainKey = JSON.stringify([
      options.organizationId,
      expectation.account,
      expectation.region,
      expectation.trailName,
      homeRegion,
    ]);
    expected.set(chainKey, expectation);
    if (!chains.has(chainKey)) {
      chains.set(chainKey, {
        id: {
          ...(options.prefix ? { prefix: options.prefix } : {}),
          ...(options.organizationId ? { organizationId: options.organizationId } : {}),
          account: expectation.account,
          region: expectation.region,
          trailName: expectation.trailName,
          homeRegion,
        },
        entries: [],
      });
    }
  }

  const result: FoundChain[] = [];
  for (const chainKey of [...chains.keys()].sort()) {
    const chain = chains.get(chainKey)!;
    const expectation = expected.get(chainKey);
    const sorted = chain.entries.sort((a, b) =>
      a.endMs !== b.endMs ? a.endMs - b.endMs : a.key < b.key ? -1 : a.key > b.key ? 1 : 0,
    );
    // In range: every digest ending after the start and up to the end, and the one after that
    // (it covers the end).
    const inRange: ChainEntry[] = [];
    let beforeEndMs: number | undefined;
    for (const entry of sorted) {
      if (entry.endMs <= options.startMs) {
        beforeEndMs = entry.endMs;
        continue;
      }
      inRange.push(entry);
      if (entry.endMs >= options.endMs) break;
    }
    const floors = [expectation?.firstStartMs, beforeEndMs].filter(
      (ms): ms is number => ms !== undefined,
    );
    if (inRange.length > 0 || expectation)
      result.push({
        id: chain.id,
        entries: inRange,
        ...(expectation ? { expectation } : {}),
        ...(floors.length > 0 ? { floorMs: Math.max(...floors) } : {}),
      });
  }
  return result;
}
