/** validate-logs' summary, worded as the AWS CLI's `cloudtrail validate-logs` prints it. */
import { formatDigestTime } from '../../lambda/core/digest-format';
import type { ValidationSummary } from '../../lambda/core/digest-validate';

/** The AWS CLI's summary lines. */
export function formatSummary(summary: ValidationSummary): string[] {
  const lines = [
    `Results requested for ${formatDigestTime(summary.startMs)} to ${formatDigestTime(summary.endMs)}`,
  ];
  const digestTotal = summary.digests.valid + summary.digests.invalid;
  if (digestTotal === 0) return [...lines, 'No digests found'];
  lines.push(
    summary.foundStartMs !== undefined && summary.foundEndMs !== undefined
      ? `Results found for ${formatDigestTime(summary.foundStartMs)} to ${formatDigestTime(summary.foundEndMs)}:`
      : 'No valid digests found in range',
  );
  lines.push('');
  const ratio = (counts: { valid: number; invalid: number }, name: string): string => {
    const total = counts.valid + counts.invalid;
    return `${counts.valid}/${total} ${name} files valid${counts.invalid > 0 ? `, ${counts.invalid}/${total} ${name} files INVALID` : ''}`;
  };
  lines.push(ratio(summary.digests, 'digest'));
  if (summary.logs.valid + summary.logs.invalid > 0) lines.push(ratio(summary.logs, 'log'));
  return lines;
}
