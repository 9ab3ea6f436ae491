/**
 * chatd's send, as a unit of work on plain data, for the writer-thread
 * experiment (writer-thread-child.ts): the same statements as send-sql-child.ts
 * (the device's token state, the sender's read, storeMessage with the inbox
 * fan-in) through chatd's schema and code, over 200 direct threads whose
 * devices are all live. Plain data in and out, so that the same unit can run
 * on the main thread or be posted to a worker thread.
 */
import { loadConfig } from '../../src/config/load.js';
import { openConfiguredDatabase } from '../../src/app.js';
import type { AppendSettings } from '../../src/storage/sqlite/append.js';
import { SqliteMessagingStorage } from '../../src/storage/sqlite/messaging.js';
import type { Db } from '../../src/storage/database.js';
import { Store } from '../../src/storage/store.js';

export const THREADS = 200;

/** One direct thread's sending side. */
export interface Sender {
  readonly threadId: number;
  readonly userId: number;
  readonly deviceId: number;
}

/** What the main thread sends the writer: a decoded `send` frame. */
export interface SendCommand {
  readonly threadId: number;
  readonly senderUserId: number;
  readonly senderDeviceId: number;
  readonly clientMsgId: string;
  readonly bodyJson: string;
  readonly now: number;
}

/** What the ack reports. */
export interface SendResult {
  readonly id: number;
  readonly seq: number;
  readonly createdAt: number;
}

/** The server's defaults (synchronous, WAL, checkpoint pages), opened and migrated as the server opens its database. */
export function openWriter(dir: string): { db: Db; store: Store; settings: AppendSettings } {
  const config = loadConfig({ flags: { 'storage.dir': dir } });
  const db = openConfiguredDatabase(config);
  const settings: AppendSettings = {
    maxMessages: config.inbox.max_messages,
    readDiffusionAbove: config.messages.read_diffusion_above,
    push: { apns: false, fcm: false },
  };
  return { db, store: new Store(db), settings };
}

/** Creates the 200 pairs of users with one live device each and their direct threads, in one transaction; returns the senders. */
export function seedThreads(store: Store, now = Date.now()): Sender[] {
  return store.transaction(() =>
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
}

/** seedThreads on the database in `dir`, closed after. */
export function createThreads(dir: string): Sender[] {
  const { db, store } = openWriter(dir);
  try {
    return seedThreads(store);
  } finally {
    db.close();
  }
}

/** The body of the send's unit of work (SqliteMessagingStorage.append) for one message; runs inside the caller's transaction. */
export function sendUnit(store: Store, settings: AppendSettings): (command: SendCommand) => SendResult {
  const storage = new SqliteMessagingStorage(store, settings);
  return (command) => {
    const outcome = storage.append({ ...command, content: { kind: 'text' }, requireE2eEverywhere: false });
    if (outcome.kind !== 'stored') throw new Error(`not stored: ${outcome.kind}`);
    return { id: outcome.message.id, seq: outcome.message.seq, createdAt: outcome.message.createdAt };
  };
}
