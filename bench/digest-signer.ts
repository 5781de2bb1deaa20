/**
 * Digest signing at scale: one signer run over one period of 1,000 and of 50,000 log files
 * against the embedded emulators (chain table on dynalite, digest on s3rver), timed, with what
 * it costs on AWS counted: DynamoDB write and read units (on-demand billing: a write unit per
 * KB per item written, a read unit per 4 KB per request, half for eventually consistent
 * reads), S3 and KMS requests. See test/fixtures/digest-scale.ts.
 *
 * The 50,000-file run keeps the manifest rows in memory, their claims counted and priced as
 * the UpdateItem calls they stand for but not timed (dynalite serves a few hundred a second,
 * so its time would be dynalite's); the 1,000-file run is given both ways, so the two columns
 * compare like with like.
 *
 * Alone: `npx tsx bench/digest-signer.ts [--quick]` (--quick: 10,000 files instead of 50,000).
 */
import './quiet'; // before anything that loads a Lambda handler module
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRsaSigner } from '../lambda/adapters/local-signer';
import { DIGEST_CHAIN_TABLE, ensureChainTable } from '../local/components/digest';
import { startRuntime } from '../local/runtime';
import { clientsFor, destroyClients } from '../test/support/emulator-clients';
import { signLargePeriod, type ScaleRun } from '../test/fixtures/digest-scale';
import type { BenchFigure } from './lib';

const SMALL = 1_000;

export async function runDigestSignerBench(options: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<BenchFigure[]> {
  const large = options.quick ? 10_000 : 50_000;
  const dataDir = mkdtempSync(join(tmpdir(), 'opentrail-bench-digest-'));
  const runtime = await startRuntime({ dataDir, port: 0, flushSeconds: 1, components: [] });
  const clients = clientsFor(runtime.endpoints);
  try {
    await ensureChainTable(clients.dynamodb);
    const signer = await LocalRsaSigner.open(join(dataDir, 'keys'));
    const endpoints = {
      region: runtime.endpoints.region,
      s3: runtime.endpoints.s3,
      dynamodb: runtime.endpoints.dynamodb,
      bucket: runtime.endpoints.bucket,
      manifestTable: runtime.endpoints.manifestTable,
      accessKeyId: runtime.endpoints.accessKeyId,
      secretAccessKey: runtime.endpoints.secretAccessKey,
      chainTable: DIGEST_CHAIN_TABLE,
    };
    const figures: BenchFigure[] = [];
    for (const [files, manifest] of [
      [SMALL, 'dynamodb'],
      [SMALL, 'memory'],
      [large, 'memory'],
    ] as const) {
      const where = manifest === 'dynamodb' ? 'manifest on dynalite' : 'manifest in memory';
      options.log(`digest signing: ${files} log files, ${where}`);
      const run = await signLargePeriod({
        endpoints,
        files,
        trail: `bench-${files}-${manifest}`,
        signer,
        manifest,
      });
      if (run.digest.logFiles.length !== files) {
        throw new Error(
          `digest bench: the digest lists ${run.digest.logFiles.length}, not ${files}`,
        );
      }
      figures.push({
        name: `digest signing: one period of ${files.toLocaleString('en-US')} log files (${where})`,
        value: run.seconds,
        unit: 's',
        notes: costNotes(run),
      });
    }
    return figures;
  } finally {
    destroyClients(clients);
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function costNotes(run: ScaleRun): string {
  const n = (v: number) => v.toLocaleString('en-US', { maximumFractionDigits: 1 });
  const requests = (counts: Readonly<Record<string, number>>) =>
    Object.entries(counts)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([op, count]) => `${op} ${n(count)}`)
      .join(', ');
  return [
    `DynamoDB ${n(run.cost.writeUnits)} write units, ${n(run.cost.readUnits)} read units (${requests(run.cost.dynamodbRequests)})`,
    `S3 ${requests(run.cost.s3Requests)}`,
    `KMS Sign ${n(run.cost.kmsSignRequests)}`,
    `digest ${n(run.digestGzipBytes / 1024)} KB gzip`,
    `largest chain item ${n(run.cost.largestChainItemBytes / 1024)} KB`,
  ].join('; ');
}

if (require.main === module) {
  void runDigestSignerBench({
    quick: process.argv.includes('--quick'),
    log: (line) => process.stderr.write(`${line}\n`),
  }).then((figures) => {
    for (const f of figures) {
      process.stdout.write(`${f.name}: ${f.value.toFixed(2)} ${f.unit}\n  ${f.notes ?? ''}\n`);
    }
  });
}
