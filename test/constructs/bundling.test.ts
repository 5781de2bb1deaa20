import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OpentrailConfigError, OpentrailStack } from '../../lib';
import {
  handlerBundleDir,
  OPENTRAIL_HANDLER_NAMES,
  type OpentrailHandlerName,
} from '../../lib/private/handler-bundles';
import { OpentrailFunction } from '../../lib/private/opentrail-function';
import { testApp, testStack } from './support/app';

/**
 * The one construct test that stages the function code for real: each function deploys its
 * handler's bundle as prebuilt by `npm run build` (scripts/bundle-handlers.ts), not code
 * bundled at synth.
 */
describe('bundling', () => {
  let outdir: string;
  afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

  it('every function deploys its prebuilt bundle: minified, with a source map, AWS SDK left to the runtime', () => {
    outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'opentrail-bundle-'));
    const app = testApp({ bundle: true, outdir });
    new OpentrailStack(app, 'Opentrail', { insights: {} });
    const assembly = app.synth();

    const manifest = JSON.parse(
      fs.readFileSync(path.join(assembly.directory, 'Opentrail.assets.json'), 'utf8'),
    ) as {
      files: Record<string, { source: { path: string; packaging?: string } }>;
    };
    const codeDirs = Object.values(manifest.files)
      .filter((f) => f.source.packaging === 'zip')
      .map((f) => path.join(assembly.directory, f.source.path));
    // ingest, packager, query, indexer, digest signer, publisher, Insights detector
    expect(codeDirs).toHaveLength(7);
    const contentsOf = (dir: string) =>
      fs
        .readdirSync(dir)
        .sort()
        .map((file) => [file, fs.readFileSync(path.join(dir, file), 'utf8')]);
    expect(codeDirs.map(contentsOf)).toEqual(
      expect.arrayContaining(
        OPENTRAIL_HANDLER_NAMES.map((name) => contentsOf(handlerBundleDir(name))),
      ),
    );
    for (const dir of codeDirs) {
      const code = fs.readFileSync(path.join(dir, 'index.js'), 'utf8');
      expect(fs.existsSync(path.join(dir, 'index.js.map'))).toBe(true);
      expect(code).toMatch(/require\("@aws-sdk\/client-[a-z-]+"\)/);
      expect(code).toMatch(/exports.*handler|handler.*exports/s);
      expect(code.split('\n').length).toBeLessThan(50);
      expect(Buffer.byteLength(code)).toBeLessThan(1024 * 1024);
    }
  });

  it('a missing bundle fails at construction, naming the handler, the path and `npm run build`', () => {
    const build = () =>
      new OpentrailFunction(testStack(), 'Fn', {
        handlerName: 'not-built' as OpentrailHandlerName,
        description: 'a handler with no bundle',
      });
    expect(build).toThrow(OpentrailConfigError);
    expect(build).toThrow(
      `the prebuilt bundle of the not-built handler is missing (${path.join(handlerBundleDir('not-built' as OpentrailHandlerName), 'index.js')}). In a checkout of opentrail, run \`npm run build\``,
    );
  });
});
