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
