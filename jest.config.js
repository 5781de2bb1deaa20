/** @type {import('jest').Config} */
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] };
const common = {
  testEnvironment: 'node',
  transform,
  setupFilesAfterEnv: ['<rootDir>/test/setup/jest.setup.ts'],
  // The build output (compiled copies of the sources) is what the package test packs.
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
};
// The construct and package tests deploy the prebuilt handler bundles and pack dist/: rebuilt
// first when a source is newer than the last `npm run build`.
const built = { globalSetup: '<rootDir>/test/setup/ensure-build.ts' };

module.exports = {
  // Type checking runs once in `npm run typecheck` (part of `npm test`); jest only transpiles.
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      ...built,
      displayName: 'constructs',
      testMatch: ['<rootDir>/test/constructs/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
    // Reduced size here; `npm run test:reliability` runs the full size (test/reliability).
    {
      ...common,
      displayName: 'reliability',
      testMatch: ['<rootDir>/test/reliability/**/*.test.ts'],
    },
    {
      ...common,
      ...built,
      displayName: 'package',
      testMatch: ['<rootDir>/test/package/**/*.test.ts'],
    },
  ],
};
