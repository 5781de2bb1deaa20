/**
 * The layout rules as a checker over the import graph: each `.ts` file
 * under the source roots is parsed with the TypeScript compiler (syntax only, no type check)
 * and every module it names is collected — `import` and `import type`, `export … from`,
 * `import x = require()`, `require()`, `import()` calls and `import('…')` types — so a
 * type-only import counts for cycles like any other. test/unit/layering.test.ts runs it on the
 * repository and on planted trees.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import ts from 'typescript';

/** The rules, by ID; every violation names one. */
export const LAYERING_RULES = {
  'no-cycle': 'no import cycles, type-only imports included',
  'core-pure':
    'lambda/core imports no SDK and no I/O (node:fs, node:net, node:http*, node:child_process), ' +
    'reads no process.env and imports nothing outside lambda/core',
  'adapter-no-composition':
    'lambda/adapters implement ports: no process.env, no handlers/local/cli/lib, and from ' +
    'lambda/core only types and the vocabulary modules (compose use cases in lambda/handlers)',
  'cli-command-isolation':
    'no CLI command (cli/*.ts) is imported by another CLI module except cli/program.ts',
  'lib-no-runtime': 'lib/ never imports local/, cli/, bin/, lambda/handlers or lambda/adapters',
  'bench-uses-support':
    'bench/ takes test helpers from test/support/ (and data from test/fixtures/), not suites',
} as const;

export type LayeringRule = keyof typeof LAYERING_RULES;

export interface Violation {
  readonly rule: LayeringRule;
  /** Repository-relative path, `/`-separated. */
  readonly file: string;
  readonly message: string;
}

/** One module a file names. */
export interface ImportEdge {
  readonly specifier: string;
  /** Repository-relative target for a relative specifier that resolves to a `.ts` file. */
  readonly target?: string;
  /** `import type`, `export type`, or every named binding marked `type`. */
  readonly typeOnly: boolean;
  readonly line: number;
}

export interface SourceFacts {
  readonly imports: readonly ImportEdge[];
  /** Lines that read `process.env` (`process.env.X`, `process.env[X]`, `process['env']`). */
  readonly processEnvLines: readonly number[];
}

/** The directories checked, relative to the root. */
export const SOURCE_ROOTS = ['bin', 'lib', 'lambda', 'local', 'cli', 'bench', 'test'] as const;

const SKIP_DIRS = new Set(['node_modules', 'cdk.out', '.opentrail', 'coverage', '__snapshots__']);

/** lambda/core modules an adapter may take values from: port shapes and wire vocabulary. */
export const ADAPTER_VOCABULARY = new Set([
  'lambda/core/ports.ts',
  'lambda/core/tables.ts',
  'lambda/core/config.ts',
  'lambda/core/notices.ts',
  'lambda/core/concurrency.ts',
  'lambda/core/retry.ts',
  'lambda/core/layout.ts',
  'lambda/core/api-error.ts',
  // The EMF namespace and dimension names, shared with lib's alarms.
  'lambda/core/metrics.ts',
]);

const SDK_PACKAGES = /^(@aws-sdk\/|@smithy\/|@aws-lambda-powertools\/|aws-sdk$|aws-sdk\/)/;
const IO_MODULES =
  /^(node:)?(fs|fs\/promises|net|http|https|http2|child_process|dgram|tls|cluster|worker_threads)$/;

const toPosix = (p: string): string => p.split(sep).join('/');

/** Every `.ts` file under the source roots of `root`, repository-relative, sorted. */
export function sourceFiles(root: string): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (SKIP_DIRS.has(entry.name)) continue;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(full);
    }
  };
  for (const top of SOURCE_ROOTS) {
    const dir = join(root, top);
    if (existsSync(dir) && statSync(dir).isDirectory()) walk(dir);
  }
  return files.map((f) => toPosix(relative(root, f))).sort();
}

function resolveRelative(root: string, fromFile: string, specifier: string): string | undefined {
  const base = resolve(root, dirname(fromFile), specifier);
  const stem = base.replace(/\.(js|ts)$/, '');
  for (const candidate of [`${stem}.ts`, join(stem, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile())
      return toPosix(relative(root, candidate));
  }
  return undefined;
}

function isTypeOnlyImport(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) return false; // `import 'x'` runs the module
  if (clause.isTypeOnly) return true;
  if (clause.name) return false;
  const bindings = clause.namedBindings;
  return (
    bindings !== undefined &&
    ts.isNamedImports(bindings) &&
    bindings.elements.length > 0 &&
    bindings.elements.every((element) => element.isTypeOnly)
  );
}

function isTypeOnlyExport(node: ts.ExportDeclaration): boolean {
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return (
    clause !== undefined &&
    ts.isNamedExports(clause) &&
    clause.elements.length > 0 &&
    clause.elements.every((element) => element.isTypeOnly)
  );
}

/** The imports and `process.env` reads of one file. */
export function sourceFacts(root: string, file: string): SourceFacts {
  const text = readFileSync(join(root, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const imports: ImportEdge[] = [];
  const processEnvLines: number[] = [];
  const lineOf = (node: ts.Node): number =>
    source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const add = (literal: ts.Node | undefined, typeOnly: boolean, at: ts.Node): void => {
    if (!literal || !ts.isStringLiteralLike(literal)) return;
    const specifier = literal.text;
    const target = specifier.startsWith('.') ? resolveRelative(root, file, specifier) : undefined;
    imports.push({ specifier, typeOnly, line: lineOf(at), ...(target ? { target } : {}) });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, isTypeOnlyImport(node), node);
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, isTypeOnlyExport(node), node);
    else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference)
    )
      add(node.moduleReference.expression, node.isTypeOnly, node);
    else if (ts.isImportTypeNode(node)) {
      const argument = node.argument;
      if (ts.isLiteralTypeNode(argument)) add(argument.literal, true, node);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require';
      if ((isImport || isRequire) && node.arguments.length > 0) add(node.arguments[0], false, node);
    } else if (
      (ts.isPropertyAccessExpression(node) && node.name.text === 'env') ||
      (ts.isElementAccessExpression(node) &&
        ts.isStringLiteralLike(node.argumentExpression) &&
        node.argumentExpression.text === 'env')
    ) {
      if (ts.isIdentifier(node.expression) && node.expression.text === 'process')
        processEnvLines.push(lineOf(node));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { imports, processEnvLines };
}

/** Every cycle of the graph (one per strongly connected component), as a closed path. */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm, iterative enough for a few hundred files (recursion depth = chain length).
  let index = 0;
  const indices = new Map<string, number>();
  const lowlinks = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const strongConnect = (node: string): void => {
    indices.set(node, index);
    lowlinks.set(node, index);
    index += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!indices.has(next)) {
        strongConnect(next);
        lowlinks.set(node, Math.min(lowlinks.get(node)!, lowlinks.get(next)!));
      } else if (onStack.has(next)) {
        lowlinks.set(node, Math.min(lowlinks.get(node)!, indices.get(next)!));
      }
    }
    if (lowlinks.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      const selfLoop = (graph.get(node) ?? []).includes(node);
      if (component.length > 1 || selfLoop) components.push(component);
    }
  };
  for (const node of [...graph.keys()].sort()) if (!indices.has(node)) strongConnect(node);
  // Show each component as one concrete cycle: the shortest path back to its first file.
  return components.map((component) => {
    const members = new Set(component);
    const start = [...component].sort()[0]!;
    const previous = new Map<string, string>();
    const queue = [start];
    const seen = new Set([start]);
    while (queue.length > 0) {
      const node = queue.shift()!;
      for (const next of graph.get(node) ?? []) {
        if (!members.has(next)) continue;
        if (next === start) {
          const path = [node];
          while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
          return [...path, start];
        }
        if (!seen.has(next)) {
          seen.add(next);
          previous.set(next, node);
          queue.push(next);
        }
      }
    }
    return [start, start];
  });
}

const under = (file: string, dir: string): boolean => file.startsWith(`${dir}/`);
const isCliCommand = (file: string): boolean => /^cli\/[^/]+\.ts$/.test(file);

function checkFile(file: string, facts: SourceFacts): Violation[] {
  const found: Violation[] = [];
  const report = (rule: LayeringRule, line: number, what: string): void => {
    found.push({ rule, file, message: `${file}:${line} ${what} (${LAYERING_RULES[rule]})` });
  };

  if (under(file, 'lambda/core')) {
    for (const edge of facts.imports) {
      if (SDK_PACKAGES.test(edge.specifier))
        report('core-pure', edge.line, `imports the SDK "${edge.specifier}": declare a port`);
      else if (IO_MODULES.test(edge.specifier))
        report('core-pure', edge.line, `imports I/O "${edge.specifier}": take it through a port`);
      else if (edge.target && !under(edge.target, 'lambda/core'))
        report('core-pure', edge.line, `imports ${edge.target} from outside lambda/core`);
    }
    for (const line of facts.processEnvLines)
      report('core-pure', line, 'reads process.env: take configuration as an argument');
  }

  if (under(file, 'lambda/adapters')) {
    for (const edge of facts.imports) {
      const target = edge.target;
      if (!target) continue;
      if (['lambda/handlers', 'local', 'cli', 'lib', 'bin'].some((dir) => under(target, dir)))
        report('adapter-no-composition', edge.line, `imports ${target}`);
      else if (under(target, 'lambda/core') && !edge.typeOnly && !ADAPTER_VOCABULARY.has(target))
        report(
          'adapter-no-composition',
          edge.line,
          `takes values from ${target}, a use case: compose it in lambda/handlers (or import ` +
            `types only)`,
        );
    }
    for (const line of facts.processEnvLines)
      report(
        'adapter-no-composition',
        line,
        'reads process.env: the handler reads its environment and passes values in',
      );
  }

  if (under(file, 'cli') && file !== 'cli/program.ts') {
    for (const edge of facts.imports) {
      if (edge.target && isCliCommand(edge.target) && edge.target !== file)
        report(
          'cli-command-isolation',
          edge.line,
          `imports the command ${edge.target}: move what both need into cli/shared/`,
        );
    }
  }

  if (under(file, 'lib')) {
    for (const edge of facts.imports) {
      const target = edge.target;
      if (!target) continue;
      if (
        ['local', 'cli', 'bin', 'lambda/handlers', 'lambda/adapters'].some((dir) =>
          under(target, dir),
        )
      )
        report('lib-no-runtime', edge.line, `imports ${target}`);
    }
  }

  if (under(file, 'bench')) {
    for (const edge of facts.imports) {
      const target = edge.target;
      if (
        target &&
        under(target, 'test') &&
        !['test/support', 'test/fixtures'].some((d) => under(target, d))
      )
        report(
          'bench-uses-support',
          edge.line,
          `imports ${target}: move the helper into test/support/`,
        );
    }
  }
  return found;
}

/** Every violation of the layout rules in the tree at `root`, cycles first. */
export function checkLayering(root: string): Violation[] {
  const files = sourceFiles(root);
  const facts = new Map(files.map((file) => [file, sourceFacts(root, file)]));
  const graph = new Map(
    [...facts].map(([file, { imports }]) => [
      file,
      [...new Set(imports.flatMap((edge) => (edge.target ? [edge.target] : [])))],
    ]),
  );
  const cycles: Violation[] = findCycles(graph).map((cycle) => ({
    rule: 'no-cycle',
    file: cycle[0]!,
    message: `import cycle: ${cycle.join(' → ')} (${LAYERING_RULES['no-cycle']})`,
  }));
  return [...cycles, ...[...facts].flatMap(([file, fileFacts]) => checkFile(file, fileFacts))];
}
