import type { AckFrame, OkFrame, ReceiptEvent } from '../protocol/frames.js';
import type { Connection } from './connection.js';
import { ClientError } from './errors.js';
import type { RequestJson } from './requests.js';
import type { ClientStore, OutboxEntry } from './store.js';

/** Where one of the app's messages stands. `delivered` and `read`: by at least one other member. */
export type MessageStatus = 'pending' | 'sent' | 'delivered' | 'read' | 'failed';

export interface StatusChange {
  readonly thread_id: number;
  readonly client_msg_id: string;
  readonly status: MessageStatus;
  /** Once sent: the message's place in the thread. */
  readonly seq: number | undefined;
  readonly message_id: number | undefined;
  /** Why it failed (for `failed`). */
  readonly error: ClientError | undefined;
}

/** What `send` resolves with: the server's ack. */
export interface SentMessage {
  readonly thread_id: number;
  readonly client_msg_id: string;
  readonly seq: number;
  readonly message_id: number;
  readonly created_at: number;
}

export interface OutboxOptions {
  readonly store: ClientStore;
  readonly statusChanged: (change: StatusChange) => void;
  /** Sends in flight on one connection at most. */
  readonly maxInFlight: number;
  readonly reportError: (error: unknown) => void;
  /** For e2e entries: the envelope to send, or a wait (the thread's device keys being fetched) after which to ask again. Absent: encryption is off. */
  readonly seal?: (entry: OutboxEntry) => { body: unknown } | { wait: Promise<void> };
  /**
   * The server said the thread's devices changed (`devices_changed`, `refusal` lists them): settles once they are
   * fetched again; rejects (not retryable) when the server insists on devices the client will not seal to.
   */
  readonly devicesChanged?: (threadId: number, refusal: ClientError) => Promise<void>;
  /**
   * Whether the thread never gets plaintext (required, seen encrypted, or `always`), asked again before each
   * attempt: a text entry stored before the thread became so fails instead of going out in the clear.
   */
  readonly mustEncrypt?: (threadId: number) => boolean;
}

/** Times one message is encrypted again for a thread whose devices changed, before it fails. */
const RESEALS = 3;

const RANK: Record<MessageStatus, number> = { pending: 0, sent: 1, delivered: 2, read: 3, failed: -1 };
/** Per thread, how many sent messages are watched for receipts. */
const WATCHED_PER_THREAD = 500;

/**
 * The sending half of the delivery contract (docs/protocol.md, flows 2 and 8):
 * every message is stored before it is sent, sent in order, sent again on each
 * new connection until acked (the server dedupes by client_msg_id), and then
 * followed through the receipts to delivered and read.
 */
export class Outbox {
  private readonly entries: OutboxEntry[] = [];
  private readonly inFlight = new Set<string>();
  /** Refused for now (busy server, rate limit, no reply): resent when the retry timer fires, not before. */
  private readonly retrying = new Set<string>();
  /** Resolved with the ack, or undefined when the server answered `ok` (a change that changed nothing). */
  private readonly waiters = new Map<string, { resolve: (sent: SentMessage | undefined) => void; reject: (error: ClientError) => void }>();
  private readonly watched = new Map<number, Array<{ seq: number; client_msg_id: string; message_id: number; status: MessageStatus }>>();
  private connection: Connection | undefined;
  /** Set once the client stopped: sends still being stored fail like the ones before them. */
  private stopped: ClientError | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly reseals = new Map<string, number>();

  constructor(private readonly options: OutboxOptions) {}

  /** Entries from the store, in the order they were sent. */
  load(entries: readonly OutboxEntry[]): void {
    this.entries.push(...entries);
  }

  pending(): readonly OutboxEntry[] {
    return [...this.entries];
  }

  /** Stores the message, then sends it when a connection is up. Resolves with the ack. */
  async add(entry: OutboxEntry): Promise<SentMessage> {
    // A new message is always acked (only changes may be answered ok).
    return (await this.addChange(entry)) as SentMessage;
  }

  /**
   * Stores a message or a change (edit, delete for everyone, reaction), then sends it in its thread's turn like a
   * message. Resolves with the ack, or undefined when the server stored nothing (`ok`: already deleted, the reaction
   * was already so).
   */
  async addChange(entry: OutboxEntry): Promise<SentMessage | undefined> {
    await this.options.store.putOutbox(entry);
    // The client stopped while this was being stored: it stays stored for the next start, like the others.
    if (this.stopped) throw this.stopped;
    const sent = new Promise<SentMessage | undefined>((resolve, reject) => this.waiters.set(entry.client_msg_id, { resolve, reject }));
    this.entries.push(entry);
    this.changed(entry, 'pending', undefined, undefined);
    this.flush();
    return sent;
  }

  attach(connection: Connection): void {
    this.connection = connection;
    this.inFlight.clear();
    this.flush();
  }

  detach(): void {
    this.connection = undefined;
    this.inFlight.clear();
    this.retrying.clear();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /**
   * Another member's cursor moved: their receipt covers every one of our messages up to its seq. The server sends
   * the author every receipt whose move passes one of the author's messages (protocol 4 sends no others), so
   * each watched message hears of each member that gets to it.
   */
  receipt(receipt: ReceiptEvent, ownUserId: number): void {
    if (receipt.user_id === ownUserId) return;
    const list = this.watched.get(receipt.thread_id);
    if (!list) return;
    for (const item of list) {
      if (item.seq > receipt.seq || RANK[item.status] >= RANK[receipt.kind]) continue;
      item.status = receipt.kind;
      this.options.statusChanged({
        thread_id: receipt.thread_id, client_msg_id: item.client_msg_id, status: item.status,
        seq: item.seq, message_id: item.message_id, error: undefined,
      });
    }
    this.watched.set(receipt.thread_id, list.filter((item) => item.status !== 'read'));
  }

  /** Fails every entry for good: removed from the store, status `failed`, promises rejected. */
  discard(error: ClientError): void {
    for (const entry of [...this.entries]) this.fail(entry, error);
  }

  /** Rejects the promises of this run's sends (the client is closing or stopped); the entries stay stored. */
  abandon(error: ClientError): void {
    this.stopped = error;
    for (const waiter of this.waiters.values()) waiter.reject(error);
    this.waiters.clear();
  }

  private flush(): void {
    const connection = this.connection;
    if (!connection) return;
    const maxBody = connection.welcome?.limits.max_body_bytes;
    // A thread whose earlier message waits for a retry sends nothing newer meanwhile, so seqs keep the order of sending.
    const waiting = new Set<number>();
    for (const entry of [...this.entries]) {
      if (this.inFlight.size >= this.options.maxInFlight) return;
      if (this.retrying.has(entry.client_msg_id)) waiting.add(entry.thread_id);
      if (this.inFlight.has(entry.client_msg_id) || waiting.has(entry.thread_id)) continue;
      const size = new TextEncoder().encode(JSON.stringify(entry.body)).length;
      if (maxBody !== undefined && size > maxBody) {
        // Stored before the limits were known (or under other limits): the server would refuse it for ever.
        this.fail(entry, new ClientError('payload_too_large', `the body is ${size} bytes; the server takes at most ${maxBody}`, false));
        continue;
      }
      const carriesBody = !entry.change || entry.change.type === 'edit';
      if (carriesBody && entry.kind !== 'e2e' && this.options.mustEncrypt?.(entry.thread_id)) {
        this.fail(entry, new ClientError('encryption_required', `thread ${entry.thread_id} is end-to-end encrypted now: this message was queued in plaintext and is not sent`, false));
        continue;
      }
      let body = entry.body;
      if (carriesBody && entry.kind === 'e2e') {
        if (!this.options.seal) {
          this.fail(entry, new ClientError('invalid_field', 'encrypted messages need a client made with encryption: true', false));
          continue;
        }
        let sealed: { body: unknown } | { wait: Promise<void> };
        try {
          sealed = this.options.seal(entry);
        } catch (error) {
          // A peer's unusable key, or this device's keys unusable (key_mismatch): this message cannot be encrypted as things are.
          this.fail(entry, error instanceof ClientError ? error : new ClientError('invalid_field', `the message could not be encrypted: ${(error as Error).message}`, false));
          continue;
        }
        if ('wait' in sealed) {
          this.waitFor(entry, sealed.wait);
          waiting.add(entry.thread_id);
          continue;
        }
        body = sealed.body;
        const sealedSize = new TextEncoder().encode(JSON.stringify(body)).length;
        if (maxBody !== undefined && sealedSize > maxBody) {
          this.fail(entry, new ClientError('payload_too_large', `encrypted for every device of the thread the body is ${sealedSize} bytes; the server takes at most ${maxBody}`, false));
          continue;
        }
      }
      this.inFlight.add(entry.client_msg_id);
      // Callbacks, not a promise: the ack is handled before the echo of the message that follows it.
      connection.send(
        frameOf(entry, body),
        (reply: AckFrame | OkFrame) => this.acked(entry, reply),
        (error) => this.refused(connection, entry, error),
      );
    }
  }

  private acked(entry: OutboxEntry, reply: AckFrame | OkFrame): void {
    // Sent again on a connection that took over while the first one's ack was on its way: the second ack is a repeat.
    if (!this.entries.includes(entry)) return;
    this.inFlight.delete(entry.client_msg_id);
    this.reseals.delete(entry.client_msg_id);
    this.remove(entry);
    if (reply.type === 'ok') {
      // A change that changed nothing (already deleted, the reaction already so): nothing was stored.
      this.changed(entry, 'sent', undefined, undefined);
      this.waiters.get(entry.client_msg_id)?.resolve(undefined);
      this.waiters.delete(entry.client_msg_id);
      this.flush();
      return;
    }
    const ack = reply;
    // Changes are followed to `sent` only: receipts say nothing about them.
    if (entry.change) return this.settled(entry, ack);
    const list = this.watched.get(ack.thread_id) ?? [];
    list.push({ seq: ack.seq, client_msg_id: ack.client_msg_id, message_id: ack.message_id, status: 'sent' });
    if (list.length > WATCHED_PER_THREAD) list.shift();
    this.watched.set(ack.thread_id, list);
    this.settled(entry, ack);
  }

  private settled(entry: OutboxEntry, ack: AckFrame): void {
    this.changed(entry, 'sent', ack.seq, ack.message_id);
    this.waiters.get(entry.client_msg_id)?.resolve({
      thread_id: ack.thread_id, client_msg_id: ack.client_msg_id, seq: ack.seq, message_id: ack.message_id, created_at: ack.created_at,
    });
    this.waiters.delete(entry.client_msg_id);
    this.flush();
  }

  private refused(connection: Connection, entry: OutboxEntry, error: unknown): void {
    if (connection !== this.connection) return; // The connection ended: the next one sends it again.
    this.inFlight.delete(entry.client_msg_id);
    const failure = error instanceof ClientError ? error : new ClientError('internal', String(error), true);
    const reseals = this.reseals.get(entry.client_msg_id) ?? 0;
    if (failure.code === 'devices_changed' && this.options.devicesChanged && reseals < RESEALS) {
      // Sealed to a stale list of devices: fetch the thread's devices and encrypt again.
      this.reseals.set(entry.client_msg_id, reseals + 1);
      this.waitFor(entry, this.options.devicesChanged(entry.thread_id, failure));
      this.flush();
      return;
    }
    if (failure.retryable) {
      // Busy server, rate limit or a lost reply: the same send again later is safe (it is deduplicated).
      this.retrying.add(entry.client_msg_id);
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        this.retrying.clear();
        this.flush();
      }, failure.retryAfterMs ?? 1000);
      return;
    }
    this.fail(entry, failure);
    this.flush();
  }

  /**
   * Holds the entry (and its thread's later ones) until `until` settles. A
   * failure that can pass (a dropped connection, a timeout) waits for the
   * retry timer or the next connection, as often as it takes: only reseals
   * after `devices_changed` are counted (refused), not a flaky link (review
   * M-2). One that cannot pass (no such thread, not a member, untrusted
   * devices) fails the entry.
   */
  private waitFor(entry: OutboxEntry, until: Promise<void>): void {
    this.retrying.add(entry.client_msg_id);
    until.then(
      () => {
        this.retrying.delete(entry.client_msg_id);
        this.flush();
      },
      (error: unknown) => {
        if (!(error instanceof ClientError) || !error.retryable) {
          this.retrying.delete(entry.client_msg_id);
          const failure = error instanceof ClientError ? error : new ClientError('internal', String(error), false);
          if (this.entries.includes(entry)) this.fail(entry, failure);
          this.flush();
          return;
        }
        this.options.reportError(error);
        this.retryTimer ??= setTimeout(() => {
          this.retryTimer = undefined;
          this.retrying.clear();
          this.flush();
        }, 1000);
      },
    );
  }

  private fail(entry: OutboxEntry, failure: ClientError): void {
    this.reseals.delete(entry.client_msg_id);
    this.remove(entry);
    this.changed(entry, 'failed', undefined, undefined, failure);
    this.waiters.get(entry.client_msg_id)?.reject(failure);
    this.waiters.delete(entry.client_msg_id);
  }

  private remove(entry: OutboxEntry): void {
    const index = this.entries.indexOf(entry);
    if (index >= 0) this.entries.splice(index, 1);
    this.options.store.deleteOutbox(entry.client_msg_id).catch(this.options.reportError);
  }

  private changed(entry: OutboxEntry, status: MessageStatus, seq: number | undefined, messageId: number | undefined, error?: ClientError): void {
    this.options.statusChanged({ thread_id: entry.thread_id, client_msg_id: entry.client_msg_id, status, seq, message_id: messageId, error });
  }
}

/** The frame an entry goes out as: `send`, or the change request it stands for. `body`: sealed for e2e. */
function frameOf(entry: OutboxEntry, body: unknown): RequestJson & { type: 'send' | 'edit' | 'delete' | 'react' } {
  const { change, client_msg_id } = entry;
  const mentions = entry.mentions && entry.mentions.length > 0 ? { mentions: entry.mentions } : {};
  if (!change) {
    return {
      type: 'send', thread_id: entry.thread_id, client_msg_id, kind: entry.kind, ...(body === null ? {} : { body }),
      ...(entry.attachments && entry.attachments.length > 0 ? { attachments: entry.attachments } : {}),
      ...(entry.reply_to !== undefined ? { reply_to: entry.reply_to } : {}), ...mentions,
    };
  }
  switch (change.type) {
    case 'edit':
      return { type: 'edit', message_id: change.message_id, client_msg_id, kind: entry.kind, body, ...mentions };
    case 'delete':
      return { type: 'delete', message_id: change.message_id, for: 'everyone', client_msg_id };
    case 'reaction':
      return { type: 'react', message_id: change.message_id, emoji: change.emoji, on: change.on, client_msg_id };
  }
}
