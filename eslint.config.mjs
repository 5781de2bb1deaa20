// Type-aware linting, with the layout rules of docs/design.md#layout made executable as import bans.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'cdk.out/**',
      '.opentrail/**',
      'coverage/**',
      'dist/**',
      '**/*.js',
      '**/*.mjs',
    ],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['lambda/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@aws-sdk/*', '@smithy/*', '@aws-lambda-powertools/*'],
              message: 'lambda/core is pure: no AWS SDK (declare a port in core/ports.ts).',
            },
            {
              group: [
                '../adapters/*',
                '../handlers/*',
                '../../local/*',
                '../../cli/*',
                '../../lib/*',
              ],
              message: 'lambda/core imports nothing from adapters, handlers, local, cli or lib.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['lib/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/lambda/handlers/*', '**/lambda/adapters/*'],
              message: 'lib/ holds infrastructure only: never import handlers or adapters.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      // In-memory ports implement async interfaces without awaiting anything.
      '@typescript-eslint/require-await': 'off',
    },
  },
);
