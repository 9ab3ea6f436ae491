import type { Clock } from '../clock.js';
import { ChatError } from '../errors.js';
import { compareDevices, readEnvelope } from './e2e-envelope.js';
import type { SendBudget } from './limits/send-budget.js';
import { assertSignedIn } from './revocations.js';
import type { Store } from '../storage/store.js';
import { type MessageStoreSettings, findActiveMembership, findMembership, storeMessage, toMessage, unreadCount, visibleRange } from './message-store.js';
import type { Fanout, Message, MessageKind, Principal, PushQueueListener } from './types.js';

export interface MessagingSettings extends MessageStoreSettings {
  readonly maxBodyBytes: number;
  readonly pageMax: number;
  /** Every thread takes end-to-end encrypted messages only. */
  readonly requireE2e: boolean;
}

export interface MessagingDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly fanout: Fanout;
  readonly pushes: PushQueueListener;
  /** The user's budget of sends across all their connections and devices. */
  readonly sendBudget: Pick<SendBudget, 'spend'>;
  readonly settings: MessagingSettings;
}

export interface SendRequest {
  readonly threadId: number;
  readonly clientMsgId: string;
  readonly kind: Extract<MessageKind, 'text' | 'e2e'>;
  readonly bodyJson: string;
}

export interface SendResult {
  readonly message: Message;
  /** True when this (device, client_msg_id) was stored before: the same ack again, no second message. */
  readonly duplicate: boolean;
  /**
   * Fans the stored message out to the thread. The caller acks first and then
   * calls this, in the same turn of the event loop (so the thread's messages
   * still go out in seq order). A no-op for a duplicate: it went out the first time.
   */
  readonly publish: () => void;
}

export type HistoryAnchor = { readonly before: number } | { readonly after: number } | { readonly around: number } | { readonly latest: true };

export interface HistoryPage {
  readonly threadId: number;
  readonly messages: Message[];
  readonly hasMoreBefore: boolean;
  readonly hasMoreAfter: boolean;
}

export interface SyncedThread {
  readonly threadId: number;
  /** The last seq the device may see in this thread. */
  readonly lastSeq: number;
  /** Messages after the device's cursor, oldest first, at most a page; `hasMore` asks for another sync or history after the last. */
  readonly messages: Message[];
  readonly hasMore: boolean;
}

export interface ReadResult {
  readonly threadId: number;
  readonly readSeq: number;
  readonly unread: number;
  readonly totalUnread: number;
}

/**
 * The message path and everything a device does with messages: send (stored
 * with its seq in a group-committed transaction, acked after commit, then fanned
 * out), delivery acks, read cursors, history, sync, the offline inbox, typing.
 */
export class MessagingService {
  constructor(private readonly deps: MessagingDeps) {}

  async send(principal: Principal, request: SendRequest): Promise<SendResult> {
    const { store, clock, settings } = this.deps;
    this.deps.sendBudget.spend(principal.user.id);
    if (Buffer.byteLength(request.bodyJson) > settings.maxBodyBytes) {
      throw new ChatError('payload_too_large', `the message body is larger than the limit of ${settings.maxBodyBytes} bytes`, { field: 'body' });
    }
    const result = await store.batcher.submit((): Omit<SendResult, 'publish'> => {
      // Checked in the storing transaction: nothing is stored from a device once its revocation has
      // committed, whichever process made it and however late this process hears of it.
      assertSignedIn(store.devices.tokenState(principal.deviceId));
      // One read for the membership check and everything storing needs: this runs for every message.
      const view = store.threads.senderState(principal.user.id, request.threadId);
      const member = view !== undefined && view.left_seq === null;
      const refusal = member ? this.refusal(principal, request, view) : undefined;
      const message =
        member && !refusal
          ? storeMessage(store, settings, { ...request, senderUserId: principal.user.id, senderDeviceId: principal.deviceId, now: clock.now() }, view)
          : undefined;
      if (message) return { message, duplicate: false };
      // Not stored: a resend of a stored message (answered the same, even to a member who left since, or
      // after the thread's devices changed), or refused.
      const existing = store.messages.findByClientId(principal.deviceId, request.clientMsgId);
      if (existing?.thread_id === request.threadId) return { message: toMessage(existing), duplicate: true };
      if (existing) {
        throw new ChatError('invalid_field', `client_msg_id ${request.clientMsgId} was already used for a message in another thread`, {
          field: 'client_msg_id',
        });
      }
      if (refusal) throw refusal;
      if (!view) throw new ChatError('not_found', `no thread ${request.threadId}`);
      throw new ChatError('forbidden', `you are no longer a member of thread ${request.threadId}`);
    });
    // After commit: the ack (our caller) and then the fanout both follow a durable row.
    const pushing = settings.push.apns || settings.push.fcm;
    const publish = result.duplicate
      ? () => {}
      : () => {
          this.deps.fanout.message(result.message);
          if (pushing) this.deps.pushes.pushQueued();
        };
    return { ...result, publish };
  }

  /**
   * Why this content may not go into the thread, if it may not: plaintext
   * where encryption is required; for an encrypted message, an envelope that
   * is malformed, claims another sender, or does not carry exactly one sealed
   * key per current, approved device of the thread (the sender's own
   * included; a pending device neither sends nor gets keys).
   */
  private refusal(principal: Principal, request: SendRequest, thread: { readonly e2e_required: 0 | 1 }): ChatError | undefined {
    if (request.kind === 'text') {
      if (!this.deps.settings.requireE2e && thread.e2e_required === 0) return undefined;
      return new ChatError('encryption_required', 'this thread takes end-to-end encrypted messages only (kind "e2e")', { field: 'kind' });
    }
    let envelope;
    try {
      envelope = readEnvelope(request.bodyJson);
    } catch (error) {
      return error as ChatError;
    }
    if (envelope.senderDevice !== principal.deviceId) {
      return new ChatError('invalid_field', `sender_device must be this device (${principal.deviceId})`, { field: 'body' });
    }
    const required = this.deps.store.keys.threadDevices(request.threadId);
    if (!required.includes(principal.deviceId)) {
      return new ChatError(
        'invalid_field',
        'this device has no approved keys: publish them (keys_publish) and have them signed by your account key (account_signature) first',
        { field: 'body' },
      );
    }
    const { missing, extra } = compareDevices(envelope.deviceIds, required);
    if (missing.length === 0 && extra.length === 0) return undefined;
    return new ChatError('devices_changed', `the thread's devices changed (missing ${missing.join(', ') || 'none'}; extra ${extra.join(', ') || 'none'}): fetch keys and encrypt again`, {
      details: { missing_devices: missing, extra_devices: extra },
    });
  }

  /** The device has received everything up to `seq` in the thread (cumulative). */
  async delivered(principal: Principal, threadId: number, seq: number): Promise<{ threadId: number; seq: number }> {
    const { store } = this.deps;
    const outcome = await store.batcher.submit(() => {
      const { thread, membership } = findMembership(store, threadId, principal.user.id);
      const upTo = Math.min(seq, visibleRange(membership, thread.last_seq).to);
      store.cursors.advance(principal.deviceId, threadId, upTo);
      store.inbox.acknowledge(principal.deviceId, threadId, upTo);
      const moved = store.threads.advanceDelivered(threadId, principal.user.id, upTo);
      // A former member's cursors still move (their unread counts), but the thread is no longer told.
      return { seq: upTo, moved: moved && membership.left_seq === null };
    });
    if (outcome.moved) this.deps.fanout.receipt(threadId, principal.user.id, 'delivered', outcome.seq);
    return { threadId, seq: outcome.seq };
  }

  /** The user has read up to `seq`: moves the read cursor (forward only) and tells the thread. */
  async read(principal: Principal, threadId: number, seq: number): Promise<ReadResult> {
    const { store } = this.deps;
    const outcome = await store.batcher.submit(() => {
      const { thread, membership } = findMembership(store, threadId, principal.user.id);
      const upTo = Math.min(seq, visibleRange(membership, thread.last_seq).to);
      const moved = store.threads.advanceRead(threadId, principal.user.id, upTo);
      const readSeq = Math.max(upTo, membership.read_seq);
      const unread = unreadCount({ ...membership, read_seq: readSeq }, thread.last_seq);
      return { moved: moved && membership.left_seq === null, readSeq, unread, totalUnread: this.totalUnread(principal.user.id) };
    });
    if (outcome.moved) this.deps.fanout.receipt(threadId, principal.user.id, 'read', outcome.readSeq);
    return { threadId, readSeq: outcome.readSeq, unread: outcome.unread, totalUnread: outcome.totalUnread };
  }

  /** Unread messages over all the user's threads, muted ones included (clients may subtract them). */
  totalUnread(userId: number): number {
    let total = 0;
    for (const row of this.deps.store.threads.forUser(userId)) total += unreadCount(row, row.last_seq);
    return total;
  }

  history(principal: Principal, threadId: number, anchor: HistoryAnchor, limit: number): HistoryPage {
    const { store, settings } = this.deps;
    const { thread, membership } = findMembership(store, threadId, principal.user.id);
    const { from, to } = visibleRange(membership, thread.last_seq);
    const size = Math.min(Math.max(1, limit), settings.pageMax);
    let messages;
    if ('after' in anchor) {
      messages = store.messages.after(threadId, Math.max(anchor.after, from), to, size);
    } else if ('before' in anchor) {
      messages = store.messages.before(threadId, Math.min(anchor.before, to + 1), from, size);
    } else if ('around' in anchor) {
      const center = Math.min(Math.max(anchor.around, from + 1), to);
      const older = store.messages.before(threadId, center, from, Math.floor((size - 1) / 2));
      messages = [...older, ...store.messages.after(threadId, center - 1, to, size - older.length)];
    } else {
      messages = store.messages.before(threadId, to + 1, from, size);
    }
    const first = messages[0]?.seq;
    const last = messages.at(-1)?.seq;
    return {
      threadId,
      messages: messages.map(toMessage),
      hasMoreBefore: first === undefined ? false : first > from + 1,
      hasMoreAfter: last === undefined ? false : last < to,
    };
  }

  /** The seq of a message the caller may see, for "jump to message". */
  seqOfMessage(principal: Principal, messageId: number): { threadId: number; seq: number } {
    const { store } = this.deps;
    const row = store.messages.findById(messageId);
    const membership = row && store.threads.membership(row.thread_id, principal.user.id);
    const thread = row && membership && store.threads.findById(row.thread_id);
    const range = membership && thread ? visibleRange(membership, thread.last_seq) : undefined;
    // A message in a thread the caller cannot see is answered like one that does not exist.
    if (!row || !range || row.seq <= range.from || row.seq > range.to) throw new ChatError('not_found', `no message ${messageId}`);
    return { threadId: row.thread_id, seq: row.seq };
  }

  /**
   * What the device lacks, thread by thread. `cursors` are the device's own
   * (thread id → highest seq it has); threads it does not mention start from the
   * server's record of its acks. Clears the inbox-overflow flag: this is the
   * catch-up that flag asked for.
   */
  sync(principal: Principal, cursors: ReadonlyMap<number, number> | undefined): SyncedThread[] {
    const { store, settings } = this.deps;
    const acked = store.cursors.forDevice(principal.deviceId);
    const result: SyncedThread[] = [];
    for (const row of store.threads.forUser(principal.user.id)) {
      const { from, to } = visibleRange(row, row.last_seq);
      const cursor = Math.max(cursors?.get(row.id) ?? acked.get(row.id) ?? 0, from);
      if (cursor >= to) continue;
      const messages = store.messages.after(row.id, cursor, to, settings.pageMax);
      result.push({ threadId: row.id, lastSeq: to, messages: messages.map(toMessage), hasMore: (messages.at(-1)?.seq ?? to) < to });
    }
    store.inbox.clearOverflow(principal.deviceId);
    return result;
  }

  typing(principal: Principal, threadId: number): void {
    findActiveMembership(this.deps.store, threadId, principal.user.id);
    this.deps.fanout.typing(threadId, principal.user.id, principal.deviceId);
  }
}
