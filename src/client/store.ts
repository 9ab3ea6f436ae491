import type { DeviceSecrets } from './e2e-crypto.js';

/**
 * What the client keeps between runs of the app, so that a restart loses
 * nothing: the messages not yet acked by the server (the outbox), per thread
 * how far the app has been given messages (the cursors), and, with
 * encryption on, the device's secret keys.
 */

/** A message the app sent that the server has not acked yet. */
export interface OutboxEntry {
  readonly client_msg_id: string;
  readonly thread_id: number;
  readonly kind: 'text' | 'e2e';
  readonly body: unknown;
  /** When the app sent it (client clock, ms). */
  readonly created_at: number;
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
  /** The device's key pairs for end-to-end encryption, once made. */
  readonly deviceSecrets: DeviceSecrets | undefined;
  /** Other devices' fingerprints as first seen (trust on first use): a later difference is a key change. */
  readonly knownDevices: ReadonlyMap<number, KnownDevice>;
}

export interface KnownDevice {
  readonly user_id: number;
  readonly fingerprint: string;
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
  /** Keeps the device's secret keys (they never leave the device: a store that syncs must not sync them). */
  setDeviceSecrets(secrets: DeviceSecrets): Promise<void>;
  /** Remembers another device's fingerprint. */
  rememberDevice(deviceId: number, device: KnownDevice): Promise<void>;
  /** Forgets identity and cursors (the server's data was replaced); keeps the outbox and the device's keys. */
  reset(): Promise<void>;
  /** Resolves once every write called so far is durable; `ChatClient.close` awaits it. */
  flush(): Promise<void>;
}

/** The serialisable form of a store's content, for stores that keep one document. */
export interface StoreDocument {
  identity?: StoreIdentity;
  cursors: Record<string, number>;
  outbox: OutboxEntry[];
  deviceSecrets?: DeviceSecrets;
  knownDevices?: Record<string, KnownDevice>;
}

export function emptyDocument(): StoreDocument {
  return { cursors: {}, outbox: [] };
}

export function documentToState(document: StoreDocument): StoredState {
  return {
    identity: document.identity,
    cursors: new Map(Object.entries(document.cursors).map(([thread, seq]) => [Number(thread), seq])),
    outbox: [...document.outbox],
    deviceSecrets: document.deviceSecrets,
    knownDevices: new Map(Object.entries(document.knownDevices ?? {}).map(([id, device]) => [Number(id), device])),
  };
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

  setDeviceSecrets(secrets: DeviceSecrets): Promise<void> {
    this.document.deviceSecrets = secrets;
    return this.persist();
  }

  rememberDevice(deviceId: number, device: KnownDevice): Promise<void> {
    this.document.knownDevices = { ...this.document.knownDevices, [String(deviceId)]: device };
    return this.persist();
  }

  reset(): Promise<void> {
    const { outbox, deviceSecrets, knownDevices } = this.document;
    this.document = { cursors: {}, outbox, ...(deviceSecrets ? { deviceSecrets } : {}), ...(knownDevices ? { knownDevices } : {}) };
    return this.persist();
  }

  abstract flush(): Promise<void>;
}

/** The default: kept for the life of the ChatClient object only. */
export class MemoryStore extends DocumentStore {
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
