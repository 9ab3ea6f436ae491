import { PostgresAttachmentStorage } from '../../src/storage/postgres/attachments.js';
import { openPostgresMessaging } from '../helpers/postgres-messaging.js';
import { anotherNode } from './postgres-fixture.js';
import { attachmentsStorageContract } from './storage-attachments.contract.js';

attachmentsStorageContract('PostgreSQL', async () => {
  const messaging = await openPostgresMessaging({ readDiffusionAbove: 50 });
  const { db } = messaging;
  return {
    attachments: new PostgresAttachmentStorage(db),
    messaging: messaging.messaging,
    threads: messaging.threads,
    otherNode: async () => new PostgresAttachmentStorage(await anotherNode(db)),
    user: messaging.user,
    device: (userId) => messaging.device(userId),
    // Test fixture: the ref appendMessage will write (see the contract).
    insertRefForTest: async (uploadId, threadId, seq) => {
      await db.writes.submit((sql) => sql.query('INSERT INTO attachment_refs (upload_id, thread_id, seq) VALUES ($1, $2, $3)', [uploadId, threadId, seq]));
    },
    // The file's databases close after its tests (postgres-fixture).
    close: async () => {},
  };
});
