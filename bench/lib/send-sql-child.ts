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
import { openConfiguredDatabase } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { AppendSettings } from '../../src/storage/sqlite/append.js';
import { SqliteMessagingStorage } from '../../src/storage/sqlite/messaging.js';
import { Store } from '../../src/storage/store.js';

const seconds = Number(process.argv[2] ?? 3);
const THREADS = 200;
const body = JSON.stringify({ t: 0, p: 'x'.repeat(180) });

/** Ids that sort in the order they are made, as the SDK's UUIDv7 ids do, without the cost of making UUIDs in the measured loop. */
const clientMsgId = (n: number): string => `c${n.toString().padStart(12, '0')}`;

function run(perCommit: number): { wallUs: number; cpuUs: number } {
  const dir = mkdtempSync(join(tmpdir(), 'chatd-send-sql-'));
  // The server's defaults, opened and migrated as the server opens its database.
  const config = loadConfig({ flags: { 'storage.dir': dir } });
  const db = openConfiguredDatabase(config);
  const store = new Store(db);
  const settings: AppendSettings = {
    maxMessages: config.inbox.max_messages,
    readDiffusionAbove: config.messages.read_diffusion_above,
    push: { apns: false, fcm: false },
  };
  const now = Date.now();
  // Pairs of users with one device each, all live (on a connection), as in direct-throughput.
  const senders = store.transaction(() =>
    Array.from({ length: THREADS }, (_, i) => {
      const [a, b] = [0, 1].map((side) => {
        const userId = store.users.insert({ username: `u${i}-${side}`, displayName: `u${i}-${side}`, passwordHash: 'x', now }) as number;
        const deviceId = store.devices.insert({ userId, name: 'bench', platform: 'cli', tokenHash: Buffer.from(`${i}-${side}`), now });
        store.inbox.goLive(deviceId);
        return { userId, deviceId };
      }) as [{ userId: number; deviceId: number }, { userId: number; deviceId: number }];
      const threadId = store.threads.insert('direct', null, `bench:${i}`, a.userId, now);
      store.threads.addMember(threadId, a.userId, 'member', 0, now);
      store.threads.addMember(threadId, b.userId, 'member', 0, now);
      return { threadId, ...a };
    }),
  );
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
