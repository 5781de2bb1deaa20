/** Output helpers: stdout for results, stderr for notes, one JSON document for `--output json`. */

export interface OutputStreams {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
}

export const PROCESS_STREAMS: OutputStreams = { stdout: process.stdout, stderr: process.stderr };

/** Writes one JSON document and a newline. */
export function writeJson(out: OutputStreams, value: unknown): void {
  out.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes lines of text, each ended by a newline. */
export function writeLines(out: OutputStreams, lines: readonly string[]): void {
  if (lines.length > 0) out.stdout.write(`${lines.join('\n')}\n`);
}

/** `reason: n, reason: n` in key order, or "" when empty. */
export function formatCounts(counts: Readonly<Record<string, number>>): string {
  return Object.keys(counts)
    .sort()
    .map((key) => `${key}: ${counts[key]}`)
    .join(', ');
}

/** The message of anything thrown, never the stack. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code)
      ? `${error.message} (${code})`
      : error.message;
  }
  return String(error);
}

/**
 * Rows as aligned columns: each cell padded to its column's widest, two spaces between columns,
 * trailing blanks trimmed; with `rule`, a line of dashes under the header. This is the plain
 * format docs/cli.md promises for `--output table` (grep- and `cut`-friendly, no borders). A table
 * library (cli-table3) draws box borders and pads the last column, so it would change that
 * format; the few lines here are the one copy both tables (lookup-events, insights backtest) use.
 */
export function alignedTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  options: { readonly rule?: boolean } = {},
): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (row: readonly string[]): string =>
    widths
      .map((width, c) => (row[c] ?? '').padEnd(width))
      .join('  ')
      .trimEnd();
  return [
    line(header),
    ...(options.rule ? [widths.map((w) => '-'.repeat(w)).join('  ')] : []),
    ...rows.map(line),
  ];
}
