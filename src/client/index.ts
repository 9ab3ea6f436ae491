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
  TransportChange,
  TransportKind,
  UserRef,
} from './client.js';
export type {
  AttachmentLinks, ClientAttachment, DownloadOptions, EncryptedFileInfo, EncryptedThumbnailInfo, ThumbnailInput, UploadOptions, UploadedAttachment,
} from './attachment-types.js';
export type { BackoffOptions } from './backoff.js';
export type {
  AccountStanding, ClientMessage, DeviceFingerprint, DeviceRequest, E2eStatus, IdentityChange, KeyChange, OwnDevice, SafetyNumber,
} from './e2e-types.js';
export type {
  DeviceSecrets, E2eField, E2eRecords, E2eState, OwnAccount, PinnedAccount, PinnedDevice, ThreadEncryption,
} from './e2e-records.js';
export { ClientError, type ClientErrorCode, type ClientErrorDetails } from './errors.js';
export type { HistoryProgress, HistoryReceived, ShareResult } from './history-share.js';
export { AccountApi, type DeviceJson, type LoginResult, type Platform } from './http.js';
export { newClientMsgId } from './ids.js';
export type { MessageReceipts, SearchOptions, SearchPage } from './client-messages.js';
export type { SearchFilters, SearchResult } from './local-search.js';
export { type Mentionable, parseMentions } from './mentions.js';
export { applyChange, deletedState, type MessageChange, type MessageHidden, toggled } from './message-changes.js';
export type { MessageStatus, SentMessage, StatusChange } from './outbox.js';
export type { WebSocketConstructor } from './socket.js';
export {
  type ClientStore,
  DocumentStore,
  documentToState,
  MemoryStore,
  parseStoreDocument,
  type OutboxChange,
  type OutboxEntry,
  type StoreDocument,
  type StoreIdentity,
  type StoredState,
} from './store.js';
export type {
  AttachmentJson,
  ChangeJson,
  HiddenJson,
  MemberJson,
  MessageJson,
  PresenceJson,
  ReactionJson,
  ReceiptEvent,
  ThreadJson,
  TypingEvent,
  UserJson,
  UserRefJson,
} from '../protocol/frames.js';
