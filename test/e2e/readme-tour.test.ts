/**
 * The README's five-minute tour, run as written. Every command of the tour's `sh` blocks runs
 * in order against a runtime this test starts, with the flags of the tour's `npm start` line,
 * on a free port and a temporary data directory. The convention the README states: the
 * tour's `http://127.0.0.1:4510` becomes this runtime's API, `.opentrail/` its data directory,
 * and `npx opentrail` the package's CLI (the `bin` of package.json, as npx resolves it).
 * A command that fails, or does not print what the tour promises, fails the test; so does a
 * tour command that no check below knows, so the tour cannot grow untested.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fencedBlocks, section } from '../support/markdown';
import { ROOT, runtimeForSuite } from './harness';

const TOUR_TITLE = 'A five-minute tour';
const README_API = 'http://127.0.0.1:4510';
const README_DATA_DIR = '.opentrail/';

/** The tour's shell commands: continuation lines joined, comments dropped. */
function tourCommands(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return fencedBlocks(section(readme, TOUR_TITLE))
    .filter((block) => block.info === 'sh')
    .flatMap((block) => block.body.replace(/\\\n\s*/g, '').split('\n'))
    .map((line) => line.replace(/(^|\s)#\s.*$/, '').trim())
    .filter((line) => line !== '');
}

function cliPath(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    bin: string | Record<string, string>;
  };
  return join(ROOT, typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.opentrail!);
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function sh(command: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Check {
  readonly step: string;
  readonly command: RegExp;
  /** Asserts on stdout; absent: the command may print nothing (waiting only). */
  readonly expectOutput?: (stdout: string) => void;
}

/** What each tour command must print: the promises the tour's text makes. */
const CHECKS: readonly Check[] = [
  {
    step: 'send events',
    command: /^npx opentrail put-events /,
    expectOutput: (out) => {
      expect(out).toMatch(/^accepted: 310$/m);
      expect(out).toMatch(/^failed: 0$/m);
    },
  },
  { step: 'wait for the packager', command: /^sleep \d+$/ },
  {
    step: 'sign digests of the log files',
    command: /^npx opentrail digest /,
    expectOutput: (out) => {
      expect(out).toMatch(
        /^Digest file\ts3:\/\/\S+\/CloudTrail-Digest\/\S+\t.*\t[1-9]\d* log files$/m,
      );
    },
  },
  {
    step: 'see the log files and validate them',
    command: /^npx opentrail validate-logs /,
    expectOutput: (out) => {
      expect(out).toMatch(
        /^Log file\ts3:\/\/opentrail-logs\/AWSLogs\/\S+\/CloudTrail\/\S+\.json\.gz\tvalid$/m,
      );
      const logs = /^(\d+)\/(\d+) log files valid$/m.exec(out);
      expect(logs).not.toBeNull();
      expect(Number(logs![1])).toBeGreaterThan(0);
      expect(logs![1]).toBe(logs![2]);
      expect(out).toMatch(/^(\d+)\/\1 digest files valid$/m);
      expect(out).not.toMatch(/INVALID/);
    },
  },
  {
    step: 'look up history',
    command: /^npx opentrail lookup-events /,
    expectOutput: (out) => {
      const count = /^(\d+) events$/m.exec(out);
      expect(Number(count?.[1])).toBeGreaterThan(0);
      expect(out).toMatch(/bedrock\.amazonaws\.com/);
    },
  },
  {
    step: 'fan out: an EventBridge envelope',
    command: /^head -n 1 \.opentrail\/eventbridge\/events\.jsonl$/,
    expectOutput: (out) => {
      const envelope = JSON.parse(out) as Record<string, unknown>;
      expect(envelope['detail-type']).toMatch(/ via CloudTrail$/);
      expect(envelope.source).toMatch(/^opentrail\./);
      expect((envelope.detail as { eventID?: unknown }).eventID).toEqual(expect.any(String));
    },
  },
  {
    step: 'fan out: one envelope per event, a notice per log file',
    command: /^wc -l .*eventbridge\/events\.jsonl .*sns\/notifications\.jsonl$/,
    expectOutput: (out) => {
      expect(out).toMatch(/^\s*310 \S*eventbridge\/events\.jsonl$/m);
      const notices = /^\s*(\d+) \S*sns\/notifications\.jsonl$/m.exec(out);
      expect(Number(notices?.[1])).toBeGreaterThan(0);
    },
  },
];

const commands = tourCommands();
const [start, ...steps] = commands;
const START = /^npm start(?: -- (.*))?$/;
const startArgs = (START.exec(start ?? '')?.[1] ?? '').split(/\s+/).filter((a) => a !== '');

describe(`README: ${TOUR_TITLE}`, () => {
  it('starts with `npm start` and has a known check for every other command', () => {
    expect(start).toMatch(START);
    expect(startArgs.filter((a) => a === '--port' || a === '--data-dir')).toEqual([]);
    const unknown = steps.filter((c) => CHECKS.filter((k) => k.command.test(c)).length !== 1);
    expect(unknown).toEqual([]);
  });

  it('covers every step the README promises (send, log files, validate, look up, fan out)', () => {
    const missing = CHECKS.filter((k) => !steps.some((c) => k.command.test(c))).map((k) => k.step);
    expect(missing).toEqual([]);
  });

  describe('run as written', () => {
    const suite = runtimeForSuite(startArgs);
    const cli = cliPath();

    it.each(steps.map((command) => [command]))('$ %s', async (command) => {
      const check = CHECKS.find((k) => k.command.test(command));
      expect(check).toBeDefined();
      const runnable = command
        .replaceAll(README_API, suite.runtime.endpoints.api)
        .replaceAll(README_DATA_DIR, `${suite.dataDir}/`)
        .replace(/^npx opentrail /, `"${process.execPath}" "${cli}" `);

      const run = await sh(runnable);

      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: run.stderr });
      if (check!.expectOutput) {
        expect(run.stdout.trim()).not.toBe('');
        check!.expectOutput(run.stdout);
      }
    });
  });
});
