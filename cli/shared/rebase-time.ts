/**
 * `put-events --rebase-time`: shifts a replay so that its newest event is now, keeping the
 * gaps between events (old fixtures would otherwise fall outside the 90-day event history).
 * Needs the newest eventTime first, so the inputs are read twice: a pre-pass that only looks
 * at eventTime, then the real send.
 */
import { Readable } from 'node:stream';
import { formatIsoSeconds } from '../../lambda/core/contracts';
import { memberValueSpan } from './json-text';
import { planInputs, readPlannedInputs, STDIN, type RecordTransform } from './record-reader';

const EVENT_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

function epochSeconds(value: unknown): number | undefined {
  if (typeof value !== 'string' || !EVENT_TIME.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms / 1000;
}

/** The newest eventTime (epoch seconds) among the inputs' records, or undefined when none has one. */
export async function newestEventSeconds(
  inputs: readonly string[],
  stdin?: NodeJS.ReadableStream,
): Promise<number | undefined> {
  let newest: number | undefined;
  const plan = await planInputs(inputs);
  for await (const event of readPlannedInputs(plan, stdin ? { stdin } : {})) {
    if (event.kind !== 'record') continue;
    const seconds = epochSeconds(event.record.value.eventTime);
    if (seconds !== undefined && (newest === undefined || seconds > newest)) newest = seconds;
  }
  return newest;
}

/** A transform adding `shiftSeconds` to every record's eventTime, in its text and its value. */
export function rebaseTransform(shiftSeconds: number): RecordTransform {
  return (record) => {
    const seconds = epochSeconds(record.value.eventTime);
    const span = memberValueSpan(record.text, 0, 'eventTime');
    if (seconds === undefined || !span) return record;
    const shifted = formatIsoSeconds((seconds + shiftSeconds) * 1000);
    return {
      ...record,
      value: { ...record.value, eventTime: shifted },
      text: `${record.text.slice(0, span[0])}${JSON.stringify(shifted)}${record.text.slice(span[1])}`,
    };
  };
}

/**
 * Plans a rebased replay: the transform, and the stdin to read from (stdin is buffered so it
 * can be read twice). `nowMs` is "now"; the newest event lands on its whole second.
 */
export async function planRebase(
  inputs: readonly string[],
  nowMs: number,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<{ transform: RecordTransform; stdin?: NodeJS.ReadableStream; shiftSeconds: number }> {
  let buffered: Buffer | undefined;
  if (inputs.includes(STDIN)) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer));
    buffered = Buffer.concat(chunks);
  }
  const again = (): NodeJS.ReadableStream | undefined =>
    buffered ? Readable.from([buffered]) : undefined;
  const newest = await newestEventSeconds(inputs, again());
  const shiftSeconds = newest === undefined ? 0 : Math.floor(nowMs / 1000) - newest;
  const replayStdin = again();
  return {
    transform: rebaseTransform(shiftSeconds),
    ...(replayStdin ? { stdin: replayStdin } : {}),
    shiftSeconds,
  };
}
