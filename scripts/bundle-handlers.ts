/**
 * Pre-bundles every Lambda handler with esbuild into `dist/handlers/<name>/` (index.js and
 * index.js.map), the directories the constructs deploy, so a consumer's synth needs neither
 * esbuild nor Docker. Every bundling default lives here: Node.js 22 target, CommonJS,
 * minified, source maps without sources content (the functions run with
 * `--enable-source-maps`), UTF-8 output, `@aws-sdk/*` left to the Lambda runtime.
 *
 * Run by `npm run build` (and so before `npm test` and `npm pack`), and by the jest global
 * setup of the construct and package tests, so a single test file never synthesizes stale code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import {
  handlerBundleDir,
  OPENTRAIL_HANDLER_NAMES,
  packageRoot,
} from '../lib/private/handler-bundles';

const ROOT = packageRoot(__dirname);

/** Bundles every handler; resolves with the directories written. */
export async function bundleHandlers(): Promise<string[]> {
  return Promise.all(
    OPENTRAIL_HANDLER_NAMES.map(async (name) => {
      const outdir = handlerBundleDir(name, ROOT);
      fs.rmSync(outdir, { recursive: true, force: true });
      await build({
        entryPoints: [path.join(ROOT, 'lambda', 'handlers', `${name}.ts`)],
        outfile: path.join(outdir, 'index.js'),
        bundle: true,
        platform: 'node',
        target: 'node22',
        format: 'cjs',
        minify: true,
        sourcemap: true,
        sourcesContent: false,
        charset: 'utf8',
        external: ['@aws-sdk/*'],
        tsconfig: path.join(ROOT, 'tsconfig.json'),
        logLevel: 'warning',
      });
      return outdir;
    }),
  );
}

if (require.main === module) {
  bundleHandlers().then(
    (dirs) => process.stdout.write(`bundled ${dirs.length} handlers into dist/handlers\n`),
    (error: unknown) => {
      process.stderr.write(`bundle-handlers: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
