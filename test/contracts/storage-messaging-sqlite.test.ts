import { openSqliteMessaging } from '../helpers/sqlite-messaging.js';
import { messagingStorageContract } from './storage-messaging.contract.js';

messagingStorageContract('SQLite in memory', openSqliteMessaging);
