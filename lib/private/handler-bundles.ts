import * as fs from 'node:fs';
import * as path from 'node:path';

/** The Lambda handlers opentrail deploys, as files under `lambda/handlers/`. */
export const OPENTRAIL_HANDLER_NAMES = [
  'ingest',
  'packager',
  'digest-signer',
  'publisher',
  'indexer',
  'query',
  'insights',
] as const;

/** One of {@link OPENTRAIL_HANDLER_NAMES}. */
export type OpentrailHandlerName = (typeof OPENTRAIL_HANDLER_NAMES)[number];

/**
 * Root of the opentrail package: the directory of its package.json. The same walk up works
 * from the sources (`lib/private/`), from the compiled `dist/lib/private/` and from a
 * consumer's `node_modules/opentrail/dist/lib/private/`.
 */
export function packageRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) {
      throw new Error(`opentrail: no package.json above ${from}; is the package installed whole?`);
    }
  }
}

/** Directory of the prebuilt handler bundles, written by `npm run build`. */
export function handlerBundlesDir(root: string = packageRoot()): string {
  return path.join(root, 'dist', 'handlers');
}

/**
 * Directory of one handler's prebuilt bundle: `index.js` (exports `handler`) and
 * `index.js.map`. `lib/` deploys this directory as the function's code; it never imports
 * handler code.
 */
export function handlerBundleDir(name: OpentrailHandlerName, root?: string): string {
  return path.join(handlerBundlesDir(root), name);
}
