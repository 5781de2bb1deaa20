import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { checkLayering, type LayeringRule, type Violation } from '../support/layering';

const ROOT = join(__dirname, '..', '..');

/** Writes `files` (path → text) into a fresh directory and checks it. */
function checkTree(files: Record<string, string>): Violation[] {
  const root = mkdtempSync(join(tmpdir(), 'opentrail-layering-'));
  try {
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, file)), { recursive: true });
      writeFileSync(join(root, file), text);
    }
    return checkLayering(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const found = (violations: Violation[]): string[] =>
  violations.map((v) => `${v.rule} ${v.file}`).sort();

describe('the repository', () => {
  it('keeps every layering rule: no cycles, pure core, thin adapters, separate commands, lib and bench apart', () => {
    expect(checkLayering(ROOT).map((v) => v.message)).toEqual([]);
  });
});

describe('each rule fires on a planted violation', () => {
  it.each<[string, Record<string, string>, LayeringRule, string]>([
    [
      'a cycle of type-only imports (cli/put-events ↔ cli/shared/rebase-time, as it was)',
      {
        'cli/put-events.ts':
          "import { plan } from './shared/rebase-time';\nexport type T = number;\nplan();\n",
        'cli/shared/rebase-time.ts':
          "import type { T } from '../put-events';\nexport const plan = (): T => 1;\n",
      },
      'no-cycle',
      'cli/put-events.ts',
    ],
    [
      'a cycle through an index (local/runtime ↔ local/components/*, as it was)',
      {
        'local/runtime.ts':
          "import { ALL } from './components';\nexport interface Part { name: string }\nexport const n = ALL.length;\n",
        'local/components/index.ts':
          "import type { Part } from '../runtime';\nimport { ingest } from './ingest';\nexport const ALL: Part[] = [ingest];\n",
        'local/components/ingest.ts':
          "import type { Part } from '../runtime';\nexport const ingest: Part = { name: 'ingest' };\n",
      },
      'no-cycle',
      'local/components/index.ts',
    ],
    [
      'lambda/core importing the AWS SDK',
      { 'lambda/core/a.ts': "import { S3Client } from '@aws-sdk/client-s3';\nnew S3Client({});\n" },
      'core-pure',
      'lambda/core/a.ts',
    ],
    [
      'lambda/core importing node:fs',
      { 'lambda/core/a.ts': "import { readFileSync } from 'node:fs';\nreadFileSync('x');\n" },
      'core-pure',
      'lambda/core/a.ts',
    ],
    [
      'lambda/core importing fs without the node: prefix',
      { 'lambda/core/a.ts': "import * as fs from 'fs/promises';\nexport const f = fs;\n" },
      'core-pure',
      'lambda/core/a.ts',
    ],
    [
      'lambda/core importing node:net',
      { 'lambda/core/a.ts': "import { connect } from 'node:net';\nexport const c = connect;\n" },
      'core-pure',
      'lambda/core/a.ts',
    ],
    [
      'lambda/core importing node:https',
      { 'lambda/core/a.ts': "import { request } from 'node:https';\nexport const r = request;\n" },
      'core-pure',
      'lambda/core/a.ts',
    ],
    [
      'lambda/core requiring node:child_process',
      { 'lambda/core/a.ts': "export const cp = require('node:child_process') as unknown;\n" },
      'core-pure',
      'lambda/core/a.ts',
    ],
    [
      'lambda/core reading process.env',
      { 'lambda/core/a.ts': "export const table = process.env['TABLE'];\n" },
      'core-pure',
      'lambda/core/a.ts',
    ],
    [
      'lambda/core importing an adapter',
      {
        'lambda/core/a.ts': "import { store } from '../adapters/s3';\nexport const s = store;\n",
        'lambda/adapters/s3.ts': 'export const store = 1;\n',
      },
      'core-pure',
      'lambda/core/a.ts',
    ],
    [
      'an adapter reading process.env (adapters/history.ts, as it was)',
      { 'lambda/adapters/history.ts': 'export const table = process.env.HISTORY_TABLE;\n' },
      'adapter-no-composition',
      'lambda/adapters/history.ts',
    ],
    [
      'an adapter calling a core use case (adapters/kms-signer.ts → core/public-keys, as it was)',
      {
        'lambda/adapters/kms-signer.ts':
          "import { createListPublicKeys } from '../core/public-keys';\nexport const l = createListPublicKeys;\n",
        'lambda/core/public-keys.ts': 'export const createListPublicKeys = (): number => 1;\n',
      },
      'adapter-no-composition',
      'lambda/adapters/kms-signer.ts',
    ],
    [
      'an adapter importing a handler',
      {
        'lambda/adapters/s3.ts':
          "import { handler } from '../handlers/query';\nexport const h = handler;\n",
        'lambda/handlers/query.ts': 'export const handler = 1;\n',
      },
      'adapter-no-composition',
      'lambda/adapters/s3.ts',
    ],
    [
      'a CLI command importing another command (lookup-events → put-events, as it was)',
      {
        'cli/lookup-events.ts':
          "import { chooseSigner } from './put-events';\nexport const s = chooseSigner;\n",
        'cli/put-events.ts': 'export const chooseSigner = 1;\n',
      },
      'cli-command-isolation',
      'cli/lookup-events.ts',
    ],
    [
      'lib/ importing local/',
      {
        'lib/audit-trail.ts':
          "import { LOCAL } from '../local/runtime';\nexport const l = LOCAL;\n",
        'local/runtime.ts': 'export const LOCAL = 1;\n',
      },
      'lib-no-runtime',
      'lib/audit-trail.ts',
    ],
    [
      'lib/ importing cli/ (type-only counts)',
      {
        'lib/audit-trail.ts':
          "import type { Opts } from '../cli/put-events';\nexport type O = Opts;\n",
        'cli/put-events.ts': 'export type Opts = number;\n',
      },
      'lib-no-runtime',
      'lib/audit-trail.ts',
    ],
    [
      'bench/ importing an e2e suite module (bench/run → test/e2e/harness, as it was)',
      {
        'bench/run.ts':
          "import { clientsFor } from '../test/e2e/harness';\nexport const c = clientsFor;\n",
        'test/e2e/harness.ts': 'export const clientsFor = 1;\n',
      },
      'bench-uses-support',
      'bench/run.ts',
    ],
  ])('%s', (_name, files, rule, file) => {
    expect(found(checkTree(files))).toContain(`${rule} ${file}`);
  });

  it('names the file, the line and the rule in the message', () => {
    const [violation] = checkTree({
      'lambda/core/a.ts':
        "// pure\nimport { S3Client } from '@aws-sdk/client-s3';\nnew S3Client({});\n",
    });
    expect(violation?.message).toBe(
      'lambda/core/a.ts:2 imports the SDK "@aws-sdk/client-s3": declare a port (lambda/core ' +
        'imports no SDK and no I/O (node:fs, node:net, node:http*, node:child_process), reads no ' +
        'process.env and imports nothing outside lambda/core)',
    );
  });

  it('shows a cycle as the path that closes it', () => {
    const violations = checkTree({
      'local/a.ts': "import type { B } from './b';\nexport type A = B;\n",
      'local/b.ts': "import type { C } from './c';\nexport type B = C;\n",
      'local/c.ts': "import type { A } from './a';\nexport type C = A | 1;\n",
    });
    expect(violations.map((v) => v.message)).toEqual([
      'import cycle: local/a.ts → local/b.ts → local/c.ts → local/a.ts ' +
        '(no import cycles, type-only imports included)',
    ]);
  });
});

describe('every way of naming a module is an edge', () => {
  it.each([
    ['import type', "import type { A } from './a';\nexport type B = A;\n"],
    ['a named import marked type', "import { type A } from './a';\nexport type B = A;\n"],
    ['export * from', "export * from './a';\n"],
    ['export type … from', "export type { A } from './a';\n"],
    ['import = require()', "import a = require('./a');\nexport const b = a;\n"],
    ['require()', "export const b = require('./a') as unknown;\n"],
    ['a dynamic import()', "export const b = import('./a');\n"],
    ['an import() type', "export type B = typeof import('./a');\n"],
    ['a side-effect import', "import './a';\n"],
  ])('%s', (_form, text) => {
    const violations = checkTree({
      'local/a.ts': "import type { B } from './b';\nexport type A = B | 1;\n",
      'local/b.ts': text,
    });
    expect(found(violations)).toEqual(['no-cycle local/a.ts']);
  });
});

describe('what the rules allow', () => {
  it('adapters import core types and vocabulary, cli/program.ts registers commands, bench uses test/support', () => {
    const violations = checkTree({
      'lambda/core/ports.ts': 'export interface Store { get(): number }\n',
      'lambda/core/history.ts': 'export const lookupEvents = (): number => 1;\n',
      'lambda/core/pure.ts':
        "import { createHash } from 'node:crypto';\nexport const h = createHash;\n",
      'lambda/adapters/history.ts':
        "import type { Store } from '../core/ports';\nimport type { lookupEvents } from '../core/history';\n" +
        'export type L = typeof lookupEvents;\nexport class S implements Store { get(): number { return 1; } }\n',
      'lambda/handlers/query.ts':
        "import { lookupEvents } from '../core/history';\nimport { S } from '../adapters/history';\n" +
        'export const table = process.env.TABLE;\nexport const run = (): number => lookupEvents() + new S().get();\n',
      'cli/put-events.ts': "import { x } from './shared/x';\nexport const register = x;\n",
      'cli/shared/x.ts': 'export const x = 1;\n',
      'cli/program.ts': "import { register } from './put-events';\nexport const p = register;\n",
      'bench/run.ts':
        "import { helper } from '../test/support/helper';\nimport { data } from '../test/fixtures/data';\n" +
        'export const b = helper + data;\n',
      'test/support/helper.ts': 'export const helper = 1;\n',
      'test/fixtures/data.ts': 'export const data = 1;\n',
    });
    expect(violations).toEqual([]);
  });
});
