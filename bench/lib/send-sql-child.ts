/**
 * The storage ceiling of chatd's own send path: the statements a send runs
 * (the sender's read, the insert, last seq, the inbox fan-in, the read
 * cursor), through chatd's schema and code (the SQLite append unit's body), with the
 * server's settings, over 200 direct threads whose devices are all live, in
 * commits of 1,000, 100, 50 and 10 messages. No sockets, frames or promises:
 * what is left of a message's cost when everything but the database is taken
 * away. Prints, per commit size, the microseconds per message of wall time (the
 * event loop is blocked for all of it: statements, commit, fsync) and of CPU, as JSON.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteMessagingStorage } from '../../src/storage/sqlite/messaging.js';
import { THREADS, openWriter, seedThreads } from './send-fixture.js';

const seconds = Number(process.argv[2] ?? 3);
const body = JSON.stringify({ t: 0, p: 'x'.repeat(180) });

/** Ids that sort in the order they are made, as the SDK's UUIDv7 ids do, without the cost of making UUIDs in the measured loop. */
const clientMsgId = (n: number): string => `c${n.toString().padStart(12, '0')}`;

function run(perCommit: number): { wallUs: number; cpuUs: number } {
  const dir = mkdtempSync(join(tmpdir(), 'chatd-send-sql-'));
  // The server's defaults, opened and migrated as the server opens its database; pairs of users with one device each,
  // all live (on a connection), as in direct-throughput.
  const { db, store, settings } = openWriter(dir);
  const senders = seedThreads(store);
  let sent = 0;
  const storage = new SqliteMessagingStorage(store, settings);
  // The work of the send's unit (token check, membership, seq, insert, inbox, cursor), message after message.
  const commit = db.transaction((count: number) => {
    for (let i = 0; i < count; i++) {
      const sender = senders[sent++ % THREADS] as (typeof senders)[number];
      const input = {
        threadId: sender.threadId,
        senderUserId: sender.userId,
        senderDeviceId: sender.deviceId,
        clientMsgId: clientMsgId(sent),
        content: { kind: 'text' as const },
        bodyJson: body,
        now: Date.now(),
        requireE2eEverywhere: false,
      };
      if (storage.append(input).kind !== 'stored') throw new Error('not stored');
    }
  });
  const cpu = process.cpuUsage();
  const started = performance.now();
  const first = sent;
  while (performance.now() - started < seconds * 1000) commit.immediate(perCommit);
  const wallUs = ((performance.now() - started) * 1000) / (sent - first);
  const used = process.cpuUsage(cpu);
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { wallUs, cpuUs: (used.user + used.system) / (sent - first) };
}

console.log(JSON.stringify([1000, 100, 50, 10].map((perCommit) => ({ perCommit, ...run(perCommit) }))));
