import { openDatabase } from '../../src/storage/database.js';
import { SqliteAttachmentStorage } from '../../src/storage/sqlite/attachments.js';
import { Store } from '../../src/storage/store.js';
import { openSqliteMessaging } from '../helpers/sqlite-messaging.js';
import { attachmentsStorageContract } from './storage-attachments.contract.js';

// In a file: the races between nodes open it a second time.
attachmentsStorageContract('SQLite', async () => {
  const messaging = await openSqliteMessaging({ readDiffusionAbove: 50 }, { inFile: true });
  const { store } = messaging;
  const others: Store[] = [];
  const insertRef = store.db.prepare<[string, number, number]>('INSERT INTO attachment_refs (upload_id, thread_id, seq) VALUES (?, ?, ?)');
  return {
    attachments: new SqliteAttachmentStorage(store),
    messaging: messaging.messaging,
    threads: messaging.threads,
    otherNode: async () => {
      const other = new Store(openDatabase({ file: store.db.name, synchronous: 'normal', busyTimeoutMs: 1000 }));
      others.push(other);
      return new SqliteAttachmentStorage(other);
    },
    user: messaging.user,
    device: (userId) => messaging.device(userId),
    // Test fixture: the ref appendMessage will write (see the contract).
    insertRefForTest: async (uploadId, threadId, seq) => {
      await store.batcher.submit(() => insertRef.run(uploadId, threadId, seq));
    },
    close: async () => {
      for (const other of others) other.db.close();
      await messaging.close();
    },
  };
});
