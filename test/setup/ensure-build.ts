import { buildIsStale, buildPackage } from '../../scripts/build';

/**
 * Global setup of the construct and package tests: they deploy the prebuilt handler bundles
 * and pack `dist/`, so `dist/` is rebuilt first when a source is newer than the last build
 * (`npm test` builds first; this covers running one test file).
 */
export default async function ensureBuild(): Promise<void> {
  if (buildIsStale()) await buildPackage();
}
