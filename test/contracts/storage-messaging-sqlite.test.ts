import { openSqliteMessaging } from '../helpers/sqlite-messaging.js';
import { messagingStorageContract } from './storage-messaging.contract.js';

// In a file: the races between nodes open it a second time.
messagingStorageContract('SQLite', (settings) => openSqliteMessaging(settings, { inFile: true }));
