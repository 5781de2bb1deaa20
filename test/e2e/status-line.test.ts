/**
 * `opentrail local` prints its status line on a timer (every minute by default; every second
 * here), and `opentrail status --endpoints` prints the same figures from another process.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, startRuntimeProcess, tempDataDir, type RuntimeProcess } from './harness';

let dataDir: string;
let runtime: RuntimeProcess | undefined;
beforeEach(() => (dataDir = tempDataDir()));
afterEach(async () => {
  await runtime?.stop();
  runtime = undefined;
  rmSync(dataDir, { recursive: true, force: true });
});

const STATUS = /status: events in (\d+), log files (\d+), digests (\d+), lag (?:-|\d+ s)\n/g;

it('prints a status line every --status-every seconds, and opentrail status agrees', async () => {
  runtime = await startRuntimeProcess(dataDir, ['--status-every', '1', '--flush-seconds', '1']);
  const response = await fetch(`${runtime.endpoints.api}/PutAuditEvents`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      auditEvents: [1, 2].map((i) => ({
        id: `e${i}`,
        eventData: JSON.stringify({
          eventVersion: '1.11',
          userIdentity: { type: 'IAMUser', accountId: '111111111111' },
          eventTime: new Date().toISOString().slice(0, 19) + 'Z',
          eventSource: 'iam.amazonaws.com',
          eventName: 'ListUsers',
          awsRegion: 'us-east-1',
          eventID: `00000000-0000-4000-8000-00000000000${i}`,
          eventType: 'AwsApiCall',
          recipientAccountId: '111111111111',
        }),
      })),
    }),
  });
  expect(response.status).toBe(200);

  // Lines keep coming, and one of them has seen both events.
  const deadline = Date.now() + 30_000;
  let lines: RegExpMatchArray[] = [];
  while (Date.now() < deadline) {
    lines = [...runtime.output().matchAll(STATUS)];
    if (lines.some((m) => m[1] === '2' && Number(m[2]) > 0)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(lines.length).toBeGreaterThanOrEqual(2);
  const last = lines.at(-1)!;
  expect(last[1]).toBe('2');
  expect(Number(last[2])).toBeGreaterThan(0);

  const cli = await runCli(['status', '--endpoints', join(dataDir, 'endpoints.json')]);
  expect(cli.code).toBe(0);
  const figures = /^events in (\d+), log files (\d+), digests \d+, lag (?:-|\d+ s)\n$/.exec(
    cli.stdout,
  );
  expect(figures?.[1]).toBe('2');
  expect(Number(figures?.[2])).toBeGreaterThanOrEqual(Number(last[2]));
});
