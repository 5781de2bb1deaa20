/**
 * A validate-logs worker thread (cli/shared/validate-workers.ts): checks the log files' bytes it
 * is sent with digestGzipMember and answers each message with its result or its error's name
 * and message.
 */
import { parentPort } from 'node:worker_threads';
import { digestGzipMember } from '../../lambda/core/digest-validate-logfile';
import type { WorkerAnswer, WorkerTask } from './validate-workers';

const port = parentPort;
if (!port) throw new Error('validate-worker.ts runs as a worker thread only');
port.on('message', (task: WorkerTask) => {
  let answer: WorkerAnswer;
  try {
    answer = { id: task.id, digest: digestGzipMember(task.bytes) };
  } catch (error) {
    const { name, message } = error instanceof Error ? error : new Error(String(error));
    answer = { id: task.id, error: { name, message } };
  }
  port.postMessage(answer);
});
