/**
 * Small Markdown readers for the tests that keep docs honest: GitHub's heading anchors, the
 * Markdown documents a text mentions, and fenced code blocks.
 */

/** A fenced code block: its info string (`sh`, `text`, …), its body and the heading above it. */
export interface FencedBlock {
  readonly info: string;
  readonly body: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
}

const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;

/** Splits Markdown into lines, each marked as inside a fenced code block or not. */
function fencedLines(markdown: string): { text: string; fenced: boolean }[] {
  let open: string | undefined;
  return markdown.split('\n').map((text) => {
    const fence = FENCE.exec(text);
    if (fence) {
      const marker = fence[2]!;
      if (open === undefined) {
        open = marker;
        return { text, fenced: true };
      }
      if (marker[0] === open[0] && marker.length >= open.length && fence[3]!.trim() === '') {
        open = undefined;
        return { text, fenced: true };
      }
    }
    return { text, fenced: open !== undefined };
  });
}

/** The fenced code blocks of a Markdown text, in order. */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  let current: { info: string; lines: string[]; line: number; marker: string } | undefined;
  markdown.split('\n').forEach((text, i) => {
    const fence = FENCE.exec(text);
    if (current === undefined) {
      if (fence) current = { info: fence[3]!.trim(), lines: [], line: i + 1, marker: fence[2]! };
      return;
    }
    if (
      fence &&
      fence[2]![0] === current.marker[0] &&
      fence[2]!.length >= current.marker.length &&
      fence[3]!.trim() === ''
    ) {
      blocks.push({ info: current.info, body: current.lines.join('\n'), line: current.line });
      current = undefined;
      return;
    }
    current.lines.push(text);
  });
  return blocks;
}

/** The part of a Markdown text under the `## ` heading named `title`, up to the next `## `. */
export function section(markdown: string, title: string): string {
  const lines = fencedLines(markdown);
  const start = lines.findIndex((l) => !l.fenced && l.text.trim() === `## ${title}`);
  if (start < 0) throw new Error(`no "## ${title}" heading`);
  const end = lines.findIndex((l, i) => i > start && !l.fenced && /^##\s/.test(l.text));
  return lines
    .slice(start + 1, end < 0 ? undefined : end)
    .map((l) => l.text)
    .join('\n');
}

/** The ATX headings of a Markdown text, outside code blocks: level, text and 1-based line. */
export function headings(markdown: string): { level: number; text: string; line: number }[] {
  return fencedLines(markdown).flatMap(({ text, fenced }, i) => {
    const match = fenced ? null : /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(text);
    return match ? [{ level: match[1]!.length, text: match[2]!, line: i + 1 }] : [];
  });
}

/**
 * GitHub's anchor of a heading: the rendered text (links become their text, code and emphasis
 * markers go), lower-cased, with every character that is not a letter, digit, mark, connector,
 * space or hyphen removed, then each space replaced by a hyphen.
 */
export function githubSlug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a Markdown document has: repeated headings get `-1`, `-2`, … as on GitHub. */
export function githubAnchors(markdown: string): ReadonlySet<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text } of headings(markdown)) {
    const slug = githubSlug(text);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** A mention of a Markdown document: the path as written, its `#anchor`, 1-based line. */
export interface MdReference {
  readonly target: string;
  readonly anchor?: string;
  readonly line: number;
}

/**
 * Every mention of a `.md` path in a text (code, comments or Markdown): `docs/formats.md`,
 * `../../README.md` (from test/support/), `formats.md#records`. URLs are not mentions of this
 * repository's files: a path that continues a longer token (`…/blob/main/README.md`) is skipped.
 */
export function mdReferences(text: string): MdReference[] {
  const pattern = /(?<![\w./+-])((?:\.{1,2}\/)*[\w][\w./+-]*\.md)(?![\w])(?:#([\w-]+))?/g;
  return text.split('\n').flatMap((lineText, i) =>
    [...lineText.matchAll(pattern)].map((m) => ({
      target: m[1]!,
      ...(m[2] === undefined ? {} : { anchor: m[2] }),
      line: i + 1,
    })),
  );
}

/** Links to a heading of the same document, `[text](#anchor)`, outside code blocks. */
export function sameFileAnchors(markdown: string): { anchor: string; line: number }[] {
  return fencedLines(markdown).flatMap(({ text, fenced }, i) =>
    fenced
      ? []
      : [...text.matchAll(/\]\(#([^)\s]+)\)/g)].map((m) => ({ anchor: m[1]!, line: i + 1 })),
  );
}
