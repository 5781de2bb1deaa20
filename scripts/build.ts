/**
 * `npm run build`: the package as published, under `dist/`.
 *
 * - `dist/{bin,lib,lambda,local,cli}/`: compiled JavaScript, `.d.ts` and source maps of the
 *   shipped sources (tsconfig.build.json); `dist/lib/index.js` is the package's main entry;
 * - `dist/handlers/<name>/`: the prebuilt Lambda bundles the constructs deploy
 *   (scripts/bundle-handlers.ts);
 * - `dist/local/s3rver/`: the vendored s3rver, beside the compiled `local/emulator-process.js`
 *   (each emulator's child process);
 * - `dist/.build-stamp`, written last: the test setup rebuilds when a source is newer.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../lib/private/handler-bundles';
import { bundleHandlers } from './bundle-handlers';

const ROOT = packageRoot(__dirname);
const DIST = path.join(ROOT, 'dist');

/** Directories and files whose changes call for a new build. */
export const BUILD_INPUTS = [
  'bin',
  'lib',
  'lambda',
  'local',
  'cli',
  'scripts',
  'package.json',
  'tsconfig.json',
  'tsconfig.build.json',
];

/** Where the build records that it finished. */
export const BUILD_STAMP = path.join(DIST, '.build-stamp');

/** Builds everything into a fresh `dist/`. */
export async function buildPackage(): Promise<void> {
  fs.rmSync(DIST, { recursive: true, force: true });
  const tsc = spawnSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')],
    { cwd: ROOT, stdio: 'inherit' },
  );
  if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${tsc.status})`);
  await bundleHandlers();
  fs.cpSync(path.join(ROOT, 'local', 's3rver'), path.join(DIST, 'local', 's3rver'), {
    recursive: true,
  });
  fs.writeFileSync(BUILD_STAMP, `${new Date().toISOString()}\n`);
}

/** Newest modification time (ms) of the build inputs, walking directories. */
export function newestInputMtimeMs(): number {
  let newest = 0;
  const visit = (file: string): void => {
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    if (!stat) return;
    if (stat.isDirectory()) {
      for (const entry of fs.readdirSync(file)) visit(path.join(file, entry));
    } else {
      newest = Math.max(newest, stat.mtimeMs);
    }
  };
  for (const input of BUILD_INPUTS) visit(path.join(ROOT, input));
  return newest;
}

/** True when `dist/` is missing or older than a build input. */
export function buildIsStale(): boolean {
  const stamp = fs.statSync(BUILD_STAMP, { throwIfNoEntry: false });
  return !stamp || stamp.mtimeMs < newestInputMtimeMs();
}

if (require.main === module) {
  buildPackage().then(
    () => process.stdout.write('built dist/ (compiled sources, handler bundles, s3rver)\n'),
    (error: unknown) => {
      process.stderr.write(`build: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
