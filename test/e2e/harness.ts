/**
 * Drives the embedded runtime as a user does: `opentrail local` in a child process, the CLI
 * in others, and the emulators' endpoints from endpoints.json to look at the results.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoints } from '../../local/runtime';
import { CLOUDTRAIL_DATA } from '../fixtures/cloudtrail-data';

// The emulator readers moved to test/support (bench uses them too); e2e suites import them here.
export {
  clientsFor,
  destroyClients,
  getObject,
  listKeys,
  manifestRows,
  waitFor,
} from '../support/emulator-clients';

export const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'opentrail.js');

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'opentrail-e2e-'));
}

export interface RuntimeProcess {
  readonly child: ChildProcess;
  readonly endpoints: Endpoints;
  readonly output: () => string;
  /** Sends the signal and resolves with the exit code (or signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Starts `opentrail local --port 0` and waits for its ready line. */
export async function startRuntimeProcess(
  dataDir: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<RuntimeProcess> {
  const child = spawn(
    process.execPath,
    [CLI, 'local', '--port', '0', '--data-dir', dataDir, ...args],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  let timer: NodeJS.Timeout | undefined;
  const ready = await Promise.race([
    new Promise<boolean>((resolve) => {
      const check = (): void => {
        if (/opentrail listening on http:\/\/127\.0\.0\.1:\d+/.test(output)) resolve(true);
        else setTimeout(check, 50);
      };
      check();
    }),
    exited.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 60_000))),
  ]);
  clearTimeout(timer);
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`runtime did not start:\n${output}`);
  }
  const endpoints = JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')) as Endpoints;
  return {
    child,
    endpoints,
    output: () => output,
    stop: (signal = 'SIGTERM') => {
      child.kill(signal);
      return exited;
    },
  };
}

/** Runs the CLI to completion. */
export function runCli(
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      // The test's own environment (jest's process.env is not the one spawn would pass on).
      env: process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end(input ?? '');
    child.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * Runs the CLI with its stdout piped into a reader that, like `| head -1`, takes the first
 * line and closes the pipe: the CLI's later writes meet a closed pipe (EPIPE).
 */
export function runCliIntoHead(
  args: string[],
): Promise<{ code: number | string; head: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let head = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (head.includes('\n')) return;
      head += chunk.toString();
      if (head.includes('\n')) {
        head = head.slice(0, head.indexOf('\n') + 1);
        child.stdout.destroy();
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code, signal) => resolve({ code: code ?? signal ?? -1, head, stderr }));
  });
}

/** How many shards of a stream consumer have a batch in flight (from its checkpoint file). */
export function inFlightBatches(dataDir: string, consumer: string): number {
  const file = join(dataDir, 'checkpoints', `${consumer}.json`);
  if (!existsSync(file)) return 0;
  const checkpoints = JSON.parse(readFileSync(file, 'utf8')) as {
    shards: Record<string, { inFlight?: unknown }>;
  };
  return Object.values(checkpoints.shards).filter((shard) => shard.inFlight).length;
}

/**
 * A runtime for the tests of the enclosing `describe`: started (in a fresh data dir) before
 * them, stopped and removed after. Read `runtime` and `dataDir` inside tests and hooks.
 */
export function runtimeForSuite(args: string[] = []): { runtime: RuntimeProcess; dataDir: string } {
  const suite = {} as { runtime: RuntimeProcess; dataDir: string };
  beforeAll(async () => {
    suite.dataDir = tempDataDir();
    suite.runtime = await startRuntimeProcess(suite.dataDir, args);
  });
  afterAll(async () => {
    await suite.runtime?.stop('SIGTERM');
    if (suite.dataDir) rmSync(suite.dataDir, { recursive: true, force: true });
  });
  return suite;
}

/** `opentrail put-events` of test/fixtures/cloudtrail-data (plus `extraArgs`), JSON output. */
export function replayFixtures(
  api: string,
  extraArgs: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli([
    'put-events',
    '--endpoint',
    api,
    '--output',
    'json',
    ...extraArgs,
    CLOUDTRAIL_DATA,
  ]);
}
