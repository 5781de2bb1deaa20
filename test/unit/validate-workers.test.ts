/**
 * validate-logs on worker threads (cli/shared/validate-workers.ts): the same report whatever
 * the number of workers, tampered files still found, a dead worker reported on its file.
 * A downloaded copy on disk is the bucket (LocalDirReader), as with --local-dir.
 */
import { createPublicKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { LocalDirReader } from '../../cli/shared/local-dir-reader';
import {
  LogFileWorkerPool,
  VALIDATE_WORKER,
  type WorkerScript,
} from '../../cli/shared/validate-workers';
import { runValidateLogs } from '../../cli/shared/validate-run';
import { resolveValidateSettings } from '../../cli/shared/validate-settings';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import {
  formatResult,
  validateLogs,
  type ValidationSummary,
} from '../../lambda/core/digest-validate';
import { CRASH_MARKER } from '../fixtures/crashing-validate-worker';
import {
  buildChain,
  CHAIN_KEY,
  CHAIN_PUBLIC_PEM,
  dirSink,
  writeAll,
  type BuiltChain,
  type StoredObject,
} from '../fixtures/validate-chain';

const BUCKET = 'audit';
const T0 = Date.UTC(2024, 2, 5, 0, 0, 0);
const HOUR = 3_600_000;
const PERIODS = 4;
const DER = createPublicKey(CHAIN_KEY).export({ type: 'pkcs1', format: 'der' });
const KEYS = new Map([[fingerprintOfPublicKey(DER), DER]]);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opentrail-validate-workers-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A chain of 4 periods with 5 log files each; `texts` picks a file's records. */
function chainOf(texts?: (period: number, file: number) => string[]): BuiltChain {
  return buildChain({
    bucket: BUCKET,
    startMs: T0,
    periods: PERIODS,
    logsPerPeriod: 5,
    recordsPerLog: 20,
    recordPadding: 200,
    ...(texts ? { recordTexts: texts } : {}),
  });
}

/** The chain with three log files tampered with: other content, junk after it, not gzip. */
function tampered(chain: BuiltChain): { objects: StoredObject[]; keys: string[] } {
  const keys = [chain.logKeys[2]!, chain.logKeys[7]!, chain.logKeys[13]!];
  const objects = chain.objects.map((object) => {
    if (object.key === keys[0])
      return { ...object, body: gzipSync('{"Records":[{"eventID":"forged"}]}') };
    if (object.key === keys[1])
      return { ...object, body: Buffer.concat([object.body, Buffer.from('junk')]) };
    if (object.key === keys[2]) return { ...object, body: Buffer.from('{"Records":[]}') };
    return object;
  });
  return { objects, keys };
}

async function validate(
  checkLogBytes?: LogFileWorkerPool['check'],
): Promise<{ lines: string[]; summary: ValidationSummary }> {
  const lines: string[] = [];
  const summary = await validateLogs({
    reader: new LocalDirReader(dir),
    bucket: BUCKET,
    startMs: T0,
    endMs: T0 + PERIODS * HOUR,
    nowMs: Date.UTC(2030, 0, 1),
    publicKeys: KEYS,
    concurrency: 8,
    ...(checkLogBytes ? { checkLogBytes } : {}),
    onResult: (result) => lines.push(formatResult(result)),
  });
  return { lines, summary };
}

async function withPool<T>(
  workers: number,
  use: (pool: LogFileWorkerPool) => Promise<T>,
  script: WorkerScript = VALIDATE_WORKER,
): Promise<T> {
  const pool = new LogFileWorkerPool(workers, script);
  try {
    return await use(pool);
  } finally {
    await pool.close();
  }
}

describe('validate-logs on worker threads', () => {
  it('reports the same lines with 1 and 4 workers as in one thread, tampered files included', async () => {
    // Arrange
    const chain = chainOf();
    const { objects, keys } = tampered(chain);
    await writeAll(dirSink(dir), objects);

    // Act
    const inThread = await validate();
    const one = await withPool(1, (pool) => validate(pool.check));
    const four = await withPool(4, (pool) => validate(pool.check));

    // Assert
    expect(one.lines).toEqual(inThread.lines);
    expect(four.lines).toEqual(inThread.lines);
    expect(four.summary).toEqual(inThread.summary);
    expect(four.summary.logs).toEqual({ valid: chain.logKeys.length - 3, invalid: 3 });
    const invalid = four.lines.filter((line) => line.includes('\tINVALID: '));
    expect(invalid).toEqual([
      `Log file\ts3://${BUCKET}/${keys[2]}\tINVALID: invalid format`,
      `Log file\ts3://${BUCKET}/${keys[1]}\tINVALID: unexpected data after end of compressed stream`,
      `Log file\ts3://${BUCKET}/${keys[0]}\tINVALID: hash value doesn't match`,
    ]);
  });

  it('reports the file a worker died on as not read, naming it, and checks the rest', async () => {
    // Arrange: one log file makes the (test) worker exit.
    const chain = chainOf((period, file) =>
      period === 1 && file === 3
        ? [JSON.stringify({ eventID: CRASH_MARKER })]
        : [JSON.stringify({ eventID: `e-${period}-${file}` })],
    );
    await writeAll(dirSink(dir), chain.objects);
    const victim = chain.logKeys[1 * 5 + 3]!;
    const crashing: WorkerScript = {
      file: join(__dirname, '..', 'fixtures', 'crashing-validate-worker.ts'),
      execArgv: VALIDATE_WORKER.execArgv,
    };

    // Act
    const { lines, summary } = await withPool(2, (pool) => validate(pool.check), crashing);

    // Assert
    expect(lines.filter((line) => line.includes('\tINVALID: '))).toEqual([
      `Log file\ts3://${BUCKET}/${victim}\tINVALID: could not be read: the worker thread checking s3://${BUCKET}/${victim} exited with code 3; the file was not checked`,
    ]);
    expect(summary.logs).toEqual({ valid: chain.logKeys.length - 1, invalid: 1 });
    expect(summary.digests).toEqual({ valid: PERIODS, invalid: 0 });
  });

  it('refuses a pool of no workers, naming the rule', () => {
    expect(() => new LogFileWorkerPool(0)).toThrow(
      'workers must be a whole number of at least 1; got 0',
    );
  });

  it('opentrail validate-logs prints the same report with --workers 1 and --workers 3', async () => {
    // Arrange
    const chain = chainOf();
    await writeAll(dirSink(dir), tampered(chain).objects);
    const keyFile = join(dir, 'key.pem');
    await writeFile(keyFile, CHAIN_PUBLIC_PEM);
    const settings = resolveValidateSettings(
      {
        trailArn: 'arn:aws:cloudtrail:us-east-1:111111111111:trail/opentrail',
        startTime: new Date(T0).toISOString(),
        endTime: new Date(T0 + PERIODS * HOUR).toISOString(),
        s3Bucket: BUCKET,
        localDir: dir,
        publicKey: [keyFile],
      },
      {},
      Date.UTC(2030, 0, 1),
    );
    if (typeof settings === 'string') throw new Error(settings);
    const cli = async (workers: number): Promise<{ code: number; out: string; err: string }> => {
      let out = '';
      let err = '';
      const code = await runValidateLogs(
        settings,
        {
          verbose: true,
          output: 'text',
          concurrency: 8,
          workers,
          sign: 'never',
          nowMs: Date.UTC(2030, 0, 1),
        },
        {
          stdout: { write: (s: string) => (out += s) },
          stderr: { write: (s: string) => (err += s) },
        },
      );
      return { code, out, err };
    };

    // Act
    const one = await cli(1);
    const three = await cli(3);

    // Assert
    expect(three).toEqual(one);
    expect(one.code).toBe(1);
    expect(one.err.match(/\tINVALID: /g)).toHaveLength(3);
    expect(one.out).toContain(`Results found for ${new Date(T0).toISOString().slice(0, 19)}Z`);
  });
});
