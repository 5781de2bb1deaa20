/**
 * `opentrail validate-logs`' run: gathers the public keys (files, ListPublicKeys) and what is
 * known of each chain (GetTrailStatus, --expect), opens the reader (S3 or --local-dir), and runs
 * validateLogs (lambda/core/digest-validate.ts) with its log files checked on worker threads,
 * printing through validate-output.ts.
 */
import { readFile } from 'node:fs/promises';
import { createClients, destroyClients } from '../../lambda/adapters/clients';
import { S3ObjectReader } from '../../lambda/adapters/s3-object-reader';
import { DEFAULT_DIGEST_PERIOD_SECONDS } from '../../lambda/core/config';
import { fingerprintOfPublicKey, formatDigestTime } from '../../lambda/core/digest-format';
import {
  DEFAULT_DIGEST_GRACE_MS,
  validateLogs,
  type ChainExpectation,
  type WindowedPublicKey,
} from '../../lambda/core/digest-validate';
import type { ObjectReader } from '../../lambda/core/ports';
import { cloudTrailApiClient } from './cloudtrail-api';
import { LocalDirReader } from './local-dir-reader';
import type { OutputFormat } from './options';
import { PROCESS_STREAMS, type OutputStreams } from './output';
import { createProgress } from './progress';
import { fetchChainStatus, listPublicKeys } from './validate-api';
import { createReporter } from './validate-output';
import { readPublicKey, type ValidateLogsSettings } from './validate-settings';
import { defaultWorkers, LogFileWorkerPool } from './validate-workers';

/** Runs the validation as the command does; resolves with the exit code. */
export async function runValidateLogs(
  settings: ValidateLogsSettings,
  options: {
    readonly verbose: boolean;
    readonly output: OutputFormat;
    readonly concurrency: number;
    /** Worker threads that check log files. @default defaultWorkers() */
    readonly workers?: number;
    readonly sign: 'auto' | 'always' | 'never';
    readonly nowMs: number;
    readonly reader?: ObjectReader;
    /** MD5 fingerprints (hex) of the only keys to trust; absent: every key found. */
    readonly pinnedFingerprints?: readonly string[];
  },
  out: OutputStreams = PROCESS_STREAMS,
): Promise<number> {
  // A key file has no window: any digest time is accepted under it.
  const publicKeys = new Map<string, Buffer | WindowedPublicKey>();
  for (const file of settings.publicKeyFiles) {
    const der = readPublicKey(await readFile(file), file);
    publicKeys.set(fingerprintOfPublicKey(der), der);
  }
  const expectations = new Map<string, ChainExpectation>();
  const keyOf = (e: ChainExpectation): string => JSON.stringify([e.trailName, e.account, e.region]);
  let periodSeconds = settings.periodSeconds;
  let graceSeconds = settings.graceSeconds;
  let unknownTrails: string[] = [];
  if (settings.endpoint !== undefined) {
    const client = cloudTrailApiClient(settings.endpoint, options.sign, settings.homeRegion);
    if (typeof client === 'string') throw new Error(client);
    try {
      const status = await fetchChainStatus(client, settings.endpoint, settings);
      for (const expectation of status.expectations)
        expectations.set(keyOf(expectation), expectation);
      unknownTrails = status.unknown;
      periodSeconds ??= status.periodSeconds;
      graceSeconds ??= status.graceSeconds;
      for (const [fingerprint, der] of await listPublicKeys(
        client,
        settings.endpoint,
        settings.startMs,
        Math.min(settings.endMs, options.nowMs) + 3_600_000,
      ))
        if (!publicKeys.has(fingerprint)) publicKeys.set(fingerprint, der);
    } finally {
      client.destroy();
    }
  }
  if (options.pinnedFingerprints !== undefined)
    pinKeys(publicKeys, options.pinnedFingerprints, out);
  // --expect wins over what the API says of the same chain.
  for (const expectation of settings.expectations)
    expectations.set(keyOf(expectation), expectation);
  if (publicKeys.size === 0) {
    throw new Error(
      `No public keys found between ${formatDigestTime(settings.startMs)} and ${formatDigestTime(settings.endMs)}`,
    );
  }

  let clients: ReturnType<typeof createClients> | undefined;
  let reader = options.reader;
  if (!reader && settings.localDir !== undefined) reader = new LocalDirReader(settings.localDir);
  if (!reader) {
    clients = createClients({
      region:
        settings.homeRegion ??
        process.env.AWS_REGION ??
        process.env.AWS_DEFAULT_REGION ??
        'us-east-1',
      ...(settings.s3Endpoint !== undefined ? { s3Endpoint: settings.s3Endpoint } : {}),
      // A connection for every read in flight (the SDK's default is 50).
      s3MaxSockets: options.concurrency,
      // The runtime's key only for the S3 that --endpoints names; else the standard chain.
      ...(settings.s3Credentials !== undefined ? { credentials: settings.s3Credentials } : {}),
    });
    reader = new S3ObjectReader(clients.s3);
  }

  const reporter = createReporter(out, options);
  reporter.start({
    trailLabel: settings.trailLabel,
    startMs: settings.startMs,
    endMs: settings.endMs,
    ...(expectations.size === 0 || unknownTrails.length > 0
      ? { unknownChains: unknownTrails }
      : {}),
  });
  const progress = createProgress(
    'validate-logs [{bar}] {value}/{total} files | {mb} MB uncompressed',
  );
  let started = false;
  let shown = 0;
  const pool = new LogFileWorkerPool(options.workers ?? defaultWorkers());
  try {
    const summary = await validateLogs({
      reader,
      bucket: settings.bucket,
      ...(settings.prefix !== undefined ? { prefix: settings.prefix } : {}),
      ...(settings.organizationId !== undefined ? { organizationId: settings.organizationId } : {}),
      ...(settings.account !== undefined ? { accounts: [settings.account] } : {}),
      ...(settings.region !== undefined ? { regions: [settings.region] } : {}),
      ...(settings.trailName !== undefined ? { trailName: settings.trailName } : {}),
      ...(settings.homeRegion !== undefined ? { homeRegion: settings.homeRegion } : {}),
      startMs: settings.startMs,
      endMs: settings.endMs,
      nowMs: options.nowMs,
      publicKeys,
      expectations: [...expectations.values()],
      periodMs: (periodSeconds ?? DEFAULT_DIGEST_PERIOD_SECONDS) * 1000,
      graceMs: graceSeconds !== undefined ? graceSeconds * 1000 : DEFAULT_DIGEST_GRACE_MS,
      concurrency: options.concurrency,
      checkLogBytes: pool.check,
      onProgress: (p) => {
        const payload = { mb: (p.uncompressedBytes / 1e6).toFixed(1) };
        if (!started) {
          progress.start(p.total, payload);
          started = true;
        }
        progress.setTotal(p.total);
        progress.increment(p.done - shown, payload);
        shown = p.done;
      },
      onResult: (result) => reporter.result(result),
    });
    progress.stop();
    reporter.finish(summary, expectations.size);
    return summary.digests.invalid > 0 || summary.logs.invalid > 0 ? 1 : 0;
  } finally {
    progress.stop();
    await pool.close();
    if (clients) destroyClients(clients);
  }
}

/**
 * --public-key-fingerprints: keeps only the pinned keys, so a key the API (or a changed key
 * policy) serves that the user never approved cannot vouch for a digest. Digests signed with
 * a dropped key then fail as signed by an unknown key.
 */
function pinKeys(
  publicKeys: Map<string, unknown>,
  pinned: readonly string[],
  out: OutputStreams,
): void {
  const found = [...publicKeys.keys()];
  if (found.length > 0 && !found.some((fingerprint) => pinned.includes(fingerprint))) {
    throw new Error(
      `none of the public keys found (${found.join(', ')}) is in --public-key-fingerprints (${pinned.join(', ')})`,
    );
  }
  for (const fingerprint of found) {
    if (pinned.includes(fingerprint)) continue;
    publicKeys.delete(fingerprint);
    out.stderr.write(
      `opentrail validate-logs: ignoring public key ${fingerprint}: not in --public-key-fingerprints\n`,
    );
  }
}
