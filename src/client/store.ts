import { type E2eField, type E2eRecords, type E2eState, E2E_FIELDS, checkE2eState } from './e2e-records.js';
import { ClientError } from './errors.js';

/**
 * What the client keeps between runs of the app, so that a restart loses
 * nothing: the messages not yet acked by the server (the outbox), per thread
 * how far the app has been given messages (the cursors), and, with
 * encryption on, the device's secret keys and what it trusts (e2e-records.ts).
 */

/**
 * What an outbox entry changes, when it is not a new message: an edit, a
 * delete for everyone, a reaction toggle (each appended to the thread like a
 * message, docs/protocol.md).
 */
export type OutboxChange =
  | { readonly type: 'edit'; readonly message_id: number }
  | { readonly type: 'delete'; readonly message_id: number }
  | { readonly type: 'reaction'; readonly message_id: number; readonly emoji: string; readonly on: boolean };

/** A message (or a change) the app sent that the server has not acked yet. */
export interface OutboxEntry {
  readonly client_msg_id: string;
  readonly thread_id: number;
  readonly kind: 'text' | 'e2e';
  /**
   * What is sent (`text`) or sealed (`e2e`): the app's body; null for a text message of attachments only. An e2e
   * message with attachments seals `{ chatd: 'chatd-attachments-v1', body, attachments: [EncryptedFileInfo] }`.
   */
  readonly body: unknown;
  /** The upload ids the `send` frame lists (for an e2e message: ids only, the rest is sealed in `body`). */
  readonly attachments?: ReadonlyArray<{ readonly id: string }>;
  /** When the app sent it (client clock, ms). */
  readonly created_at: number;
  /** The message this one answers (send only). */
  readonly reply_to?: number;
  /** User ids mentioned (send and edit). */
  readonly mentions?: readonly number[];
  /** Absent: a new message (`send`). Present: the `edit`, `delete` or `react` this entry is; `body` is then the new body (edit) or null. */
  readonly change?: OutboxChange;
  /**
   * An e2e edit: the client_msg_id its envelope is bound to, the edited message's (so that the edited message, which
   * the server shows with this envelope as its body, opens under its own binding; docs/client.md, "Edits in encrypted threads").
   */
  readonly seal_as?: string;
}

/** Whose data a store holds, and of which server database (its epoch). */
export interface StoreIdentity {
  readonly epoch: string;
  readonly user_id: number;
  readonly device_id: number;
}

export interface StoredState {
  /** Absent until the first connection caught up; then the server it caught up with. */
  readonly identity: StoreIdentity | undefined;
  readonly cursors: ReadonlyMap<number, number>;
  /** In the order the app sent them. */
  readonly outbox: readonly OutboxEntry[];
  /** End-to-end encryption: the device's keys, the account key, what is pinned (each field absent until first written). */
  readonly e2e: E2eState;
  /** The highest `hidden` id (messages deleted for this user) this device has applied; absent: none yet. */
  readonly hiddenCursor?: number;
}

/**
 * The persistence seam: in memory by default, a file in Node (FileStore),
 * IndexedDB or the like in a browser app.
 *
 * Contract: writes take effect in the order they are called, and the promise
 * of a write resolves once that write (and every one before it) is durable.
 * The client awaits `putOutbox` before it sends the message, so an app that
 * quits right after `send()` resolves loses nothing; it does not wait for
 * cursor writes, so a crash can at worst give the app a message again.
 */
export interface ClientStore {
  load(): Promise<StoredState>;
  setIdentity(identity: StoreIdentity): Promise<void>;
  setCursor(threadId: number, seq: number): Promise<void>;
  putOutbox(entry: OutboxEntry): Promise<void>;
  deleteOutbox(clientMsgId: string): Promise<void>;
  /**
   * Replaces one encryption field whole (`deviceSecrets`, `account`,
   * `knownDevices`, …). The device's secrets are among them: a store that
   * syncs must not sync `deviceSecrets` or `account`.
   */
  setE2e<K extends E2eField>(field: K, value: E2eRecords[K]): Promise<void>;
  /** Forgets identity and cursors (the server's data was replaced); keeps the outbox and the encryption fields. */
  reset(): Promise<void>;
  /** Optional: keeps the `hidden` cursor (messages deleted for this user); without it a restart asks for every hidden message again. */
  setHiddenCursor?(id: number): Promise<void>;
  /**
   * Optional: the local search index of decrypted messages (local-search.ts), serialised, or undefined to drop it.
   * It holds the text of end-to-end encrypted messages: keep it where the device's keys are kept. Without these two
   * methods the index lives as long as the ChatClient.
   */
  saveLocalIndex?(serialised: string | undefined): Promise<void>;
  loadLocalIndex?(): Promise<string | undefined>;
  /** Resolves once every write called so far is durable; `ChatClient.close` awaits it. */
  flush(): Promise<void>;
}

/** The serialisable form of a store's content, for stores that keep one document. */
export interface StoreDocument {
  identity?: StoreIdentity;
  cursors: Record<string, number>;
  outbox: OutboxEntry[];
  deviceSecrets?: E2eRecords['deviceSecrets'];
  account?: E2eRecords['account'];
  knownDevices?: E2eRecords['knownDevices'];
  accounts?: E2eRecords['accounts'];
  e2eThreads?: E2eRecords['e2eThreads'];
  historyKeys?: E2eRecords['historyKeys'];
  grants?: E2eRecords['grants'];
  deviceMessagesSeen?: E2eRecords['deviceMessagesSeen'];
  owedGrants?: E2eRecords['owedGrants'];
  hiddenCursor?: number;
}

export function emptyDocument(): StoreDocument {
  return { cursors: {}, outbox: [] };
}

export function documentToState(document: StoreDocument): StoredState {
  return {
    identity: document.identity,
    cursors: new Map(Object.entries(document.cursors).map(([thread, seq]) => [Number(thread), seq])),
    outbox: [...document.outbox],
    e2e: e2eOf(document),
    ...(document.hiddenCursor !== undefined ? { hiddenCursor: document.hiddenCursor } : {}),
  };
}

/**
 * A stored document from its JSON text, checked: anything malformed throws
 * `store_corrupt` (naming `where` and the field) rather than be dropped, since a
 * dropped secret key means a new identity for this device.
 */
export function parseStoreDocument(text: string, where: string): StoreDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ClientError('store_corrupt', `${where} is not JSON: ${(error as Error).message}`, false);
  }
  const document = value as Partial<StoreDocument> | null;
  if (typeof document !== 'object' || document === null || typeof document.cursors !== 'object' || document.cursors === null || !Array.isArray(document.outbox)) {
    throw new ClientError('store_corrupt', `${where} is not a chatd client store`, false);
  }
  let e2e: E2eState;
  try {
    e2e = checkE2eState(document as Record<string, unknown>);
  } catch (error) {
    throw new ClientError('store_corrupt', `${where}: ${(error as Error).message}; the file was left as it is`, false);
  }
  const hidden = document.hiddenCursor;
  if (hidden !== undefined && (typeof hidden !== 'number' || !Number.isSafeInteger(hidden) || hidden < 0)) {
    throw new ClientError('store_corrupt', `${where}: hiddenCursor is not a hidden id`, false);
  }
  return {
    ...(document.identity ? { identity: document.identity } : {}), cursors: document.cursors, outbox: document.outbox, ...e2e,
    ...(hidden !== undefined ? { hiddenCursor: hidden } : {}),
  };
}

/** The encryption fields of a document (as they are: FileStore checks them when it loads). */
function e2eOf(document: StoreDocument): E2eState {
  const state: Record<string, unknown> = {};
  for (const field of E2E_FIELDS) if (document[field] !== undefined) state[field] = document[field];
  return state as E2eState;
}

/**
 * A store that keeps everything in one document and applies each change to
 * it; subclasses decide where the document lives (`persist`).
 */
export abstract class DocumentStore implements ClientStore {
  protected document: StoreDocument = emptyDocument();

  abstract load(): Promise<StoredState>;
  /** Makes the current document durable. */
  protected abstract persist(): Promise<void>;

  setIdentity(identity: StoreIdentity): Promise<void> {
    this.document.identity = identity;
    return this.persist();
  }

  setCursor(threadId: number, seq: number): Promise<void> {
    const key = String(threadId);
    if ((this.document.cursors[key] ?? -1) >= seq) return Promise.resolve();
    this.document.cursors[key] = seq;
    return this.persist();
  }

  putOutbox(entry: OutboxEntry): Promise<void> {
    if (this.document.outbox.some((existing) => existing.client_msg_id === entry.client_msg_id)) return Promise.resolve();
    this.document.outbox.push(entry);
    return this.persist().catch((error: unknown) => {
      // `send` rejects: the message must not go out later with a next write, behind the app's back.
      this.document.outbox = this.document.outbox.filter((kept) => kept !== entry);
      throw error;
    });
  }

  deleteOutbox(clientMsgId: string): Promise<void> {
    const before = this.document.outbox.length;
    this.document.outbox = this.document.outbox.filter((entry) => entry.client_msg_id !== clientMsgId);
    return before === this.document.outbox.length ? Promise.resolve() : this.persist();
  }

  setE2e<K extends E2eField>(field: K, value: E2eRecords[K]): Promise<void> {
    (this.document as Partial<E2eRecords>)[field] = value;
    return this.persist();
  }

  setHiddenCursor(id: number): Promise<void> {
    if ((this.document.hiddenCursor ?? 0) >= id) return Promise.resolve();
    this.document.hiddenCursor = id;
    return this.persist();
  }

  reset(): Promise<void> {
    // Hidden ids are the old data's too.
    const { identity: _identity, cursors: _cursors, hiddenCursor: _hidden, ...kept } = this.document;
    this.document = { ...kept, cursors: {} };
    return this.persist();
  }

  abstract flush(): Promise<void>;
}

/** The default: kept for the life of the ChatClient object only. */
export class MemoryStore extends DocumentStore {
  private localIndex: string | undefined;

  saveLocalIndex(serialised: string | undefined): Promise<void> {
    this.localIndex = serialised;
    return Promise.resolve();
  }

  loadLocalIndex(): Promise<string | undefined> {
    return Promise.resolve(this.localIndex);
  }

  load(): Promise<StoredState> {
    return Promise.resolve(documentToState(structuredClone(this.document)));
  }

  protected persist(): Promise<void> {
    return Promise.resolve();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }
}
