/**
 * Jest for `npm run test:mutation` (StrykerJS, see docs/mutation-testing.md): only the unit
 * tests that exercise the mutated core modules, transpiled without type checking (Stryker
 * marks instrumented files `@ts-nocheck`; `npm run build` type-checks the real sources).
 * @type {import('jest').Config}
 */
module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      { tsconfig: 'tsconfig.json', isolatedModules: true, diagnostics: false },
    ],
  },
  setupFilesAfterEnv: ['<rootDir>/test/setup/jest.setup.ts'],
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
  testMatch: [
    '<rootDir>/test/unit/core-dedup-packager.test.ts',
    '<rootDir>/test/unit/core-dedup-decide.test.ts',
    '<rootDir>/test/unit/core-packager-refusals.test.ts',
    '<rootDir>/test/unit/core-packager-details.test.ts',
    '<rootDir>/test/unit/digest-chain-core.test.ts',
    '<rootDir>/test/unit/digest-signer-chain.test.ts',
    '<rootDir>/test/unit/digest-signer-signing.test.ts',
    '<rootDir>/test/unit/digest-validate.test.ts',
    '<rootDir>/test/unit/digest-validate-logfile.test.ts',
  ],
};
