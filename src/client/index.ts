/**
 * What `chatd/client` exports on every platform. The platform entries
 * (browser.ts, node.ts) add the ChatClient with their WebSocket.
 */
export type {
  ChatClientOptions,
  ClientEvents,
  ConnectionState,
  HistoryAnchor,
  HistoryPage,
  StateChange,
  ThreadChange,
  UserRef,
} from './client.js';
export type { BackoffOptions } from './backoff.js';
export type { ClientMessage, DeviceFingerprint, KeyChange } from './e2e.js';
export type { DeviceSecrets, E2eStatus } from './e2e-crypto.js';
export { ClientError, type ClientErrorCode } from './errors.js';
export { AccountApi, type DeviceJson, type LoginResult, type Platform } from './http.js';
export { newClientMsgId } from './ids.js';
export type { MessageStatus, SentMessage, StatusChange } from './outbox.js';
export type { WebSocketConstructor } from './socket.js';
export {
  type ClientStore,
  DocumentStore,
  documentToState,
  type KnownDevice,
  MemoryStore,
  type OutboxEntry,
  type StoreDocument,
  type StoreIdentity,
  type StoredState,
} from './store.js';
export type {
  MemberJson,
  MessageJson,
  PresenceJson,
  ReceiptEvent,
  ThreadJson,
  TypingEvent,
  UserJson,
  UserRefJson,
} from '../protocol/frames.js';
