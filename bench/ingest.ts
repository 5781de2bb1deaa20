/** Bench area 2, ingest (see bench/run.ts for what each figure measures). */
import './quiet'; // before anything that loads a Lambda handler module
import { randomUUID } from 'node:crypto';

import { putAuditEvents, type Caller } from '../lambda/core/ingest';

import { ingestComponent } from '../local/components/ingest';
import { LOCAL_DEFAULTS } from '../local/runtime';

import { MemoryRecordStream } from '../test/fixtures/memory-ports';

import {
  checkAccepted,
  postAuditEvents,
  alternate,
  figure,
  freshRuntime,
  inParallel,
  medianRate,
  progress,
  realRecords,
  requestBodies,
  sleep,
  syntheticRecordTexts,
  timed,
  type Figure,
} from './lib';
import { HTTP_CONCURRENCY, REQUEST_ENTRIES, sink, type Settings } from './settings';

/** The caller the in-memory pass stamps, as the embedded runtime's local principal. */
export const BENCH_CALLER: Caller = {
  principalArn: `arn:aws:iam::${LOCAL_DEFAULTS.accountId}:user/opentrail-local`,
  accountId: LOCAL_DEFAULTS.accountId,
  sourceIp: '127.0.0.1',
  requestId: 'bench',
  receivedAtMs: 0,
};

export async function ingestFigures(
  settings: Settings,
  texts: readonly string[],
): Promise<Figure[]> {
  const bodies = requestBodies(texts, REQUEST_ENTRIES);
  const n = texts.length;
  const subject = async (): Promise<void> => {
    const deps = {
      stream: new MemoryRecordStream(),
      accountId: LOCAL_DEFAULTS.accountId,
      checkRecipients: false,
      now: Date.now,
      newEventId: randomUUID,
      sleep,
    };
    for (const body of bodies) {
      const result = await putAuditEvents(body, BENCH_CALLER, deps);
      if (result.failed.length > 0) checkAccepted(result, body);
    }
  };
  const baseline = (): void => {
    for (const body of bodies) {
      const request = JSON.parse(body) as { auditEvents: { eventData: string }[] };
      for (const entry of request.auditEvents)
        sink.value += Object.keys(JSON.parse(entry.eventData) as object).length;
    }
  };

  progress(
    `2a ingest, in-memory stream: warm-up, then ${settings.passes} passes of ${bodies.length} requests`,
  );
  await subject();
  baseline();
  const memory = await alternate(settings.passes, subject, baseline);
  const baselineRate = medianRate(n, memory.baseline);
  const baselineWhat = 'JSON.parse of bodies + each eventData';
  const figures = [
    figure({
      id: 'ingest.memory',
      title: '2a ingest, in-memory stream',
      unit: 'records/s',
      value: medianRate(n, memory.subject),
      baseline: { what: baselineWhat, value: baselineRate },
      detail: {
        records: n,
        requests: bodies.length,
        samples: memory.subject,
        baselineSamples: memory.baseline,
      },
    }),
  ];

  progress('2b ingest over HTTP into kinesalite: starting the embedded runtime');
  // The ingest component alone: nothing consumes the stream meanwhile, so the figure is the
  // API's and kinesalite's, not shared with the packager and the other consumers.
  const runtime = await freshRuntime({ flushSeconds: 60, components: [ingestComponent] });
  try {
    const url = `${runtime.endpoints.api}/PutAuditEvents`;
    const post = async (body: string): Promise<void> => {
      await postAuditEvents(url, body);
    };
    const warmupTexts = syntheticRecordTexts(realRecords(), 5 * REQUEST_ENTRIES, 'warm-up');
    await inParallel(requestBodies(warmupTexts, REQUEST_ENTRIES), HTTP_CONCURRENCY, post);
    progress(
      `2b ingest over HTTP into kinesalite: ${bodies.length} requests, ${HTTP_CONCURRENCY} in flight`,
    );
    const sample = await timed(() => inParallel(bodies, HTTP_CONCURRENCY, post));
    figures.push(
      figure({
        id: 'ingest.http',
        title: '2b ingest, HTTP API -> kinesalite',
        unit: 'records/s',
        value: n / sample.seconds,
        baseline: { what: baselineWhat, value: baselineRate },
        detail: {
          records: n,
          requests: bodies.length,
          concurrency: HTTP_CONCURRENCY,
          samples: [sample],
          cpuPerWallSecond: sample.cpuSeconds / sample.seconds,
          components: ['ingest'],
          note: 'baseline as in 2a; kinesalite runs in a child process',
        },
      }),
    );
  } finally {
    await runtime.close();
  }
  return figures;
}
