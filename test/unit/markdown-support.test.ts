import {
  fencedBlocks,
  githubAnchors,
  githubSlug,
  mdReferences,
  sameFileAnchors,
  section,
} from '../support/markdown';

// The docs tests are only as good as these readers: GitHub's anchors and the mentions they find.
describe('GitHub heading anchors', () => {
  it.each([
    ['`opentrail local`', 'opentrail-local'],
    ['`--local-dir`: validating a downloaded copy', '--local-dir-validating-a-downloaded-copy'],
    ["From code: the AWS SDK's CloudTrailClient", 'from-code-the-aws-sdks-cloudtrailclient'],
    ["The embedded runtime's files", 'the-embedded-runtimes-files'],
    ['See [formats](formats.md) now', 'see-formats-now'],
    ['Exactly once', 'exactly-once'],
    ['Fan-out and history', 'fan-out-and-history'],
  ])('%s → #%s', (heading, slug) => {
    expect(githubSlug(heading)).toBe(slug);
  });

  it('numbers repeated headings and ignores "#" lines inside code blocks', () => {
    const anchors = githubAnchors(
      ['# Output', '## Output', '```sh', '# not a heading', '```', '### Output #'].join('\n'),
    );
    expect([...anchors]).toEqual(['output', 'output-1', 'output-2']);
  });
});

describe('mentions of Markdown documents', () => {
  it('finds paths with their anchors and lines, and skips URLs', () => {
    const text = [
      '// see docs/formats.md#digest-files and ../../README.md',
      'https://github.com/o/r/blob/main/NOTES.md is elsewhere; SOURCE.md is here',
      'not a mention: README.mdx',
    ].join('\n');
    expect(mdReferences(text)).toEqual([
      { target: 'docs/formats.md', anchor: 'digest-files', line: 1 },
      { target: '../../README.md', line: 1 },
      { target: 'SOURCE.md', line: 2 },
    ]);
  });

  it('finds same-document links outside code blocks', () => {
    expect(sameFileAnchors('[a](#one)\n```\n[b](#two)\n```\n[c](#three)')).toEqual([
      { anchor: 'one', line: 1 },
      { anchor: 'three', line: 5 },
    ]);
  });
});

describe('fenced blocks and sections', () => {
  const markdown = [
    '## Tour',
    '```sh',
    'npm start',
    '## not a heading',
    '```',
    '```text',
    'output',
    '```',
    '## Next',
    '```sh',
    'later',
    '```',
  ].join('\n');

  it('reads a section up to the next "## " heading outside code blocks', () => {
    expect(fencedBlocks(section(markdown, 'Tour'))).toEqual([
      { info: 'sh', body: 'npm start\n## not a heading', line: 1 },
      { info: 'text', body: 'output', line: 5 },
    ]);
  });

  it('names the missing section', () => {
    expect(() => section(markdown, 'Nowhere')).toThrow('no "## Nowhere" heading');
  });
});
