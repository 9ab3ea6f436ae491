/**
 * The SQLite writer on a worker thread (the writer-thread experiment): its own
 * connection, opened with the server's settings, so the automatic checkpoints
 * run here too. The main thread posts one message per event-loop turn, a batch
 * of plain-data send commands; this thread takes every batch already waiting
 * (up to MAX_WRITES writes, as the group commit bounds a transaction), runs them
 * in one IMMEDIATE transaction and posts the results back in one message.
 */
import { readlinkSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { type SendCommand, type SendResult, openWriter, sendUnit } from './send-fixture.js';

/** A turn's batch, from the main thread. */
export interface BatchMessage {
  readonly id: number;
  readonly commands: readonly SendCommand[];
}

/** Answers to the main thread. */
export type WorkerAnswer =
  | { readonly kind: 'ready'; readonly threadId: number }
  | { readonly kind: 'results'; readonly batches: ReadonlyArray<{ readonly id: number; readonly results: readonly SendResult[] }> }
  | { readonly kind: 'failed'; readonly ids: readonly number[]; readonly message: string };

const MAX_WRITES = 1000;
const port = parentPort;
if (!port) throw new Error('writer-thread-worker runs as a worker thread');
const { dir } = workerData as { dir: string };
const { db, store, settings } = openWriter(dir);
const send = sendUnit(store, settings);
const transaction = db.transaction((batches: BatchMessage[]) =>
  batches.map((batch) => ({ id: batch.id, results: batch.commands.map(send) })),
);

function close(): void {
  db.close();
  port?.close();
}

port.on('message', (first: BatchMessage | 'close') => {
  if (first === 'close') return close();
  const batches = [first];
  let writes = first.commands.length;
  let closing = false;
  // The batches that arrived while the last transaction ran go into this one: one commit, one fsync for all.
  while (writes < MAX_WRITES) {
    const next = receiveMessageOnPort(port) as { message: BatchMessage | 'close' } | undefined;
    if (!next) break;
    if (next.message === 'close') {
      closing = true;
      break;
    }
    batches.push(next.message);
    writes += next.message.commands.length;
  }
  let answer: WorkerAnswer;
  try {
    answer = { kind: 'results', batches: transaction.immediate(batches) };
  } catch (error) {
    answer = { kind: 'failed', ids: batches.map((batch) => batch.id), message: (error as Error).message };
  }
  port.postMessage(answer);
  if (closing) close();
});

// This thread's Linux thread id, so that the main thread can pin it to a core of its own (/proc/thread-self → <pid>/task/<tid>).
port.postMessage({ kind: 'ready', threadId: Number(readlinkSync('/proc/thread-self').split('/').pop()) } satisfies WorkerAnswer);
