import { migrate, openDatabase } from '../../src/storage/database.js';
import { Store } from '../../src/storage/store.js';

/** A fresh, migrated SQLite database in memory, as every SQLite runner of the storage contracts starts from. */
export function memoryStore(): Store {
  const db = openDatabase({ file: ':memory:', synchronous: 'normal', busyTimeoutMs: 1000 });
  migrate(db);
  return new Store(db);
}

/** A thread of `members` (users) with `messages` messages from `sender`, as the message path stores them; the last one is noted for push. */
export function seedThread(store: Store, members: readonly number[], sender: { userId: number; deviceId: number }, messages: number, now: number): { threadId: number; messageIds: number[] } {
  return store.transaction(() => {
    const threadId = store.threads.insert('group', 'test', null, members[0] as number, now);
    for (const userId of members) store.threads.addMember(threadId, userId, 'member', 0, now);
    const messageIds: number[] = [];
    for (let seq = 1; seq <= messages; seq++) {
      const id = store.messages.insert({ threadId, seq, senderUserId: sender.userId, senderDeviceId: sender.deviceId, clientMsgId: `t${threadId}-m${seq}`, kind: 'text', body: '{"text":"hi"}', now }) as number;
      store.threads.setLastSeq(threadId, seq, now);
      store.push.noteThread({ id, threadId, senderUserId: sender.userId, createdAt: now });
      messageIds.push(id);
    }
    return { threadId, messageIds };
  });
}
