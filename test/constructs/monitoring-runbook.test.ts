/**
 * docs/operations.md mirrors the code: a runbook entry per alarm of the synthesized stacks (and
 * no entry for an alarm that does not exist), and a row per AuditTrail prop and Monitoring
 * option, each with a default (the props are read from the TypeScript source).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import * as ts from 'typescript';
import { OpentrailStack, type OpentrailStackProps } from '../../lib';
import { headings } from '../support/markdown';
import { testApp } from './support/app';
import { alarmsOf } from './support/monitoring';

const ROOT = join(__dirname, '..', '..');
const OPERATIONS = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');

/** The `### ` headings under `## <title>`. */
function subheadings(title: string): string[] {
  const all = headings(OPERATIONS);
  const start = all.findIndex((h) => h.level === 2 && h.text === title);
  if (start < 0) throw new Error(`docs/operations.md has no "## ${title}"`);
  const rest = all.slice(start + 1);
  const end = rest.findIndex((h) => h.level <= 2);
  return (end < 0 ? rest : rest.slice(0, end)).filter((h) => h.level === 3).map((h) => h.text);
}

/** Table rows (`| \`name\` | default |`) under the `### <title>` heading. */
function tableRows(title: string): Map<string, string> {
  const lines = OPERATIONS.split('\n');
  const start = lines.findIndex((l) => l.trim() === `### ${title}`);
  if (start < 0) throw new Error(`docs/operations.md has no "### ${title}"`);
  const rows = new Map<string, string>();
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,3}\s/.test(line)) break;
    const match = /^\|\s*`([A-Za-z]+)`\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (match) rows.set(match[1]!, match[2]!);
  }
  return rows;
}

/** The members of `interface name` in `file`, each with whether its TSDoc has `@default`. */
function interfaceMembers(file: string, name: string): Map<string, boolean> {
  const source = ts.createSourceFile(
    file,
    readFileSync(join(ROOT, file), 'utf8'),
    ts.ScriptTarget.Latest,
    true,
  );
  const members = new Map<string, boolean>();
  source.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node) || node.name.text !== name) return;
    for (const member of node.members) {
      if (!ts.isPropertySignature(member)) continue;
      const tags = ts.getJSDocTags(member).map((t) => t.tagName.text);
      members.set(member.name.getText(source), tags.includes('default'));
    }
  });
  if (members.size === 0) throw new Error(`no interface ${name} in ${file}`);
  return members;
}

describe('docs/operations.md runbook', () => {
  const configurations: OpentrailStackProps[] = [
    {},
    { packager: { trails: [{ name: 'plain', logFileValidation: false }] } },
  ];
  const alarmNames = new Set(
    configurations.flatMap((props) => [
      ...alarmsOf(
        Template.fromStack(new OpentrailStack(testApp(), 'Opentrail', props)),
        'Opentrail',
      ).keys(),
    ]),
  );
  const entries = subheadings('Runbook');

  it.each([...alarmNames].sort().map((name) => [name]))('has an entry for alarm %s', (name) => {
    expect(entries).toContain(name);
  });

  it('has no entry for an alarm the stacks do not have', () => {
    expect(entries.filter((e) => !alarmNames.has(e))).toEqual([]);
    expect(entries.length).toBe(alarmNames.size);
  });

  it.each(entries.map((e) => [e]))(
    'entry %s says what it means, how to confirm, what to do and what is lost',
    (entry) => {
      const start = OPERATIONS.indexOf(`### ${entry}\n`);
      const next = OPERATIONS.indexOf('\n##', start + 4);
      const text = OPERATIONS.slice(start, next < 0 ? undefined : next);
      for (const label of ['**Means**', '**Confirm**', '**Do**', '**Lost if nobody acts**']) {
        expect({ entry, has: text.includes(label) }).toEqual({ entry, has: true });
      }
    },
  );

  it('tells the operator to redrive for every failed-batches alarm', () => {
    for (const entry of entries.filter((e) => e.endsWith('-FailedBatches'))) {
      const start = OPERATIONS.indexOf(`### ${entry}\n`);
      const text = OPERATIONS.slice(start, OPERATIONS.indexOf('\n### ', start + 4));
      expect({ entry, redrive: /opentrail redrive|\[redrive\]/.test(text) }).toEqual({
        entry,
        redrive: true,
      });
    }
  });
});

describe('docs/operations.md props', () => {
  it.each<[string, string, string]>([
    ['AuditTrail props', 'lib/audit-trail.ts', 'AuditTrailProps'],
    ['Monitoring options', 'lib/monitoring.ts', 'MonitoringOptions'],
  ])('"%s" lists every prop of %s with its default, and no other', (title, file, name) => {
    const members = interfaceMembers(file, name);
    const rows = tableRows(title);
    expect([...rows.keys()].sort()).toEqual([...members.keys()].sort());
    for (const [prop, documented] of members) {
      expect({ prop, documented }).toEqual({ prop, documented: true });
      expect({ prop, default: rows.get(prop)!.length > 0 }).toEqual({ prop, default: true });
    }
  });
});
