import { openPostgresMessaging } from '../helpers/postgres-messaging.js';
import { messagingStorageContract } from './storage-messaging.contract.js';

messagingStorageContract('PostgreSQL', openPostgresMessaging);
