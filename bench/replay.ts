/** Bench area 3, replay latency (see bench/run.ts for what each figure measures). */
import './quiet'; // before anything that loads a Lambda handler module

import { performance } from 'node:perf_hooks';

import { putEvents } from '../cli/put-events';

import type { Progress } from '../cli/shared/progress';

import { DEFAULT_COMPONENTS } from '../local/components';

import { CLOUDTRAIL_DATA } from '../test/fixtures/cloudtrail-data';

import { clientsFor, destroyClients } from '../test/support/emulator-clients';
import { checkLogFiles } from '../test/support/log-check';
import { figure, freshRuntime, median, progress, waitForDelivered, type Figure } from './lib';
import { DELIVERY_GUARD_MS, REPLAY_FLUSH_SECONDS, type Settings } from './settings';

/**
 * One replay on a fresh runtime with every default component (what `npm start` runs): seconds
 * from the last accepted request until all records are in delivered log files.
 */
async function replayOnce(expected: number): Promise<{ seconds: number; files: number }> {
  const runtime = await freshRuntime({ flushSeconds: REPLAY_FLUSH_SECONDS });
  try {
    // putEvents reports its counts after every response: note when the last one was accepted.
    let accepted = 0;
    let lastAcceptedAt = 0;
    const tracker: Progress = {
      start: () => undefined,
      setTotal: () => undefined,
      increment: () => undefined,
      stop: () => undefined,
      update: (payload) => {
        const now = Number(payload.accepted);
        if (now > accepted) {
          accepted = now;
          lastAcceptedAt = performance.now();
        }
      },
    };
    const report = await putEvents({
      inputs: [CLOUDTRAIL_DATA],
      endpoint: runtime.endpoints.api,
      progress: tracker,
    });
    if (report.accepted !== expected || report.failed !== 0)
      throw new Error(`replay: ${report.accepted} accepted, ${report.failed} failed`);
    const doneAt = await waitForDelivered(runtime, expected, {
      intervalMs: 100,
      timeoutMs: DELIVERY_GUARD_MS,
    });
    if (doneAt === undefined) throw new Error('replay: not every record reached a log file');
    // Then check what was filed, as the e2e test does (outside the measured span).
    const clients = clientsFor(runtime.endpoints);
    try {
      const check = await checkLogFiles(clients, runtime.endpoints);
      const ids = new Set(check.records.map((r) => r.record.eventID));
      if (check.problems.length > 0 || check.records.length !== expected || ids.size !== expected)
        throw new Error(
          `replay: ${check.records.length} records filed (${ids.size} distinct): ${check.problems.join('; ')}`,
        );
      return { seconds: (doneAt - lastAcceptedAt) / 1000, files: check.keys.length };
    } finally {
      destroyClients(clients);
    }
  } finally {
    await runtime.close();
  }
}

export async function replayFigure(settings: Settings, expected: number): Promise<Figure> {
  const runs: { seconds: number; files: number }[] = [];
  for (let i = 1; i <= settings.replays; i++) {
    progress(
      `3  replay of ${expected} real records, flush-seconds ${REPLAY_FLUSH_SECONDS} (${i}/${settings.replays})`,
    );
    runs.push(await replayOnce(expected));
  }
  return figure({
    id: 'replay.latency',
    title: '3  replay: last accepted -> all in log files',
    unit: 's',
    value: median(runs.map((r) => r.seconds)),
    baseline: { what: 'flush-seconds', value: REPLAY_FLUSH_SECONDS },
    detail: {
      records: expected,
      runs,
      acceptanceBoundSeconds: REPLAY_FLUSH_SECONDS + 10,
      components: DEFAULT_COMPONENTS.map((c) => c.name),
      pollIntervalMs: 100,
    },
  });
}
