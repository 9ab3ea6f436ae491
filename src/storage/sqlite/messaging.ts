import type { AppendMessageInput, AppendOutcome, CursorOutcome, HideOutcome, Membership, MessagingStorage, SendInput, StoredHidden } from '../ports/messaging.js';
import type { Store } from '../store.js';
import { signedOut } from './signed-out.js';
import { type AppendSettings, insertMessage, seenRange, toStoredMessage, unreadOf } from './append.js';

/**
 * MessagingStorage on SQLite: each write is one synchronous function run in
 * the WriteBatcher's next group transaction (one IMMEDIATE transaction, one
 * fsync for every write of the turn), resolving after its commit.
 */
export class SqliteMessagingStorage implements MessagingStorage {
  constructor(
    private readonly store: Store,
    private readonly settings: AppendSettings,
  ) {}

  appendMessage(input: AppendMessageInput): Promise<AppendOutcome> {
    return this.store.batcher.submit(() => this.append(input));
  }

  /** The send's transaction body, synchronous: for the batcher, and for the bench of the send statements alone. */
  append(input: AppendMessageInput): AppendOutcome {
    const { store } = this;
    if (input.change) throw new Error('message changes: not yet');
    // Checked in the storing transaction: nothing is stored from a device once its revocation has
    // committed, whichever process made it and however late this process hears of it.
    const out = signedOut(store, input.senderDeviceId);
    if (out) return out;
    // One read for the membership check and everything storing needs: this runs for every message.
    const view = store.threads.senderState(input.senderUserId, input.threadId);
    const member = view !== undefined && view.left_seq === null;
    const refusal = member ? (this.contentRefusal(input, view.e2e_required === 1) ?? this.attachmentRefusal(input)) : undefined;
    if (member && !refusal) {
      const message = insertMessage(
        store,
        this.settings,
        {
          threadId: input.threadId,
          senderUserId: input.senderUserId,
          senderDeviceId: input.senderDeviceId,
          clientMsgId: input.clientMsgId,
          kind: input.content.kind,
          bodyJson: input.bodyJson,
          attachments: input.attachments,
          now: input.now,
        },
        view,
      );
      if (message) return { kind: 'stored', message };
    }
    // Not stored: a resend of a stored message (answered the same, even to a member who left since, or
    // after the thread's devices changed), or refused.
    const existing = store.messages.findByClientId(input.senderDeviceId, input.clientMsgId);
    if (existing?.thread_id === input.threadId) return { kind: 'duplicate', message: toStoredMessage(existing) };
    if (existing) return { kind: 'refused', reason: 'client_id_in_other_thread' };
    if (refusal) return refusal;
    if (!view) return { kind: 'refused', reason: 'no_thread' };
    return { kind: 'refused', reason: 'not_member' };
  }

  /** An attached upload deleted or collected since the service read it: refused here rather than failing on its reference. */
  private attachmentRefusal(input: SendInput): (AppendOutcome & { kind: 'refused' }) | undefined {
    const uploadId = input.attachments && this.store.messages.missingUpload(input.attachments.uploadIds);
    return uploadId === undefined ? undefined : { kind: 'refused', reason: 'attachment_gone', uploadId };
  }

  /** Why this content may not go into the thread: plaintext where encryption is required; an envelope not sealed to exactly the thread's approved devices. */
  private contentRefusal(input: SendInput, threadRequires: boolean): (AppendOutcome & { kind: 'refused' }) | undefined {
    const { content } = input;
    if (content.kind === 'text') return input.requireE2eEverywhere || threadRequires ? { kind: 'refused', reason: 'encryption_required' } : undefined;
    if (content.sealedTo === 'invalid') return { kind: 'refused', reason: 'envelope_invalid' };
    const required = this.store.keys.threadDevices(input.threadId);
    if (!required.includes(input.senderDeviceId)) return { kind: 'refused', reason: 'device_unapproved' };
    const have = new Set(content.sealedTo);
    const want = new Set(required);
    const missing = required.filter((id) => !have.has(id));
    const extra = content.sealedTo.filter((id) => !want.has(id));
    return missing.length === 0 && extra.length === 0 ? undefined : { kind: 'refused', reason: 'devices_changed', missing, extra };
  }

  markDelivered(input: { userId: number; deviceId: number; threadId: number; seq: number }): Promise<CursorOutcome<{ seq: number }>> {
    const { store } = this;
    return store.batcher.submit((): CursorOutcome<{ seq: number }> => {
      const found = this.membershipOf(input.threadId, input.userId);
      if (!found) return { kind: 'refused', reason: 'no_thread' };
      const upTo = Math.min(input.seq, seenRange(found.membership, found.lastSeq).to);
      store.cursors.advance(input.deviceId, input.threadId, upTo);
      store.inbox.acknowledge(input.deviceId, input.threadId, upTo);
      const moved = store.threads.advanceDelivered(input.threadId, input.userId, upTo);
      // A former member's cursors still move (their unread counts), but the thread is no longer told.
      return { kind: 'done', seq: upTo, moved: moved && found.membership.left_seq === null };
    });
  }

  markRead(input: { userId: number; threadId: number; seq: number }): Promise<CursorOutcome<{ readSeq: number; unread: number; totalUnread: number }>> {
    const { store } = this;
    return store.batcher.submit((): CursorOutcome<{ readSeq: number; unread: number; totalUnread: number }> => {
      const found = this.membershipOf(input.threadId, input.userId);
      if (!found) return { kind: 'refused', reason: 'no_thread' };
      const { membership, lastSeq } = found;
      const upTo = Math.min(input.seq, seenRange(membership, lastSeq).to);
      const moved = store.threads.advanceRead(input.threadId, input.userId, upTo);
      const readSeq = Math.max(upTo, membership.read_seq);
      const unread = unreadOf({ ...membership, read_seq: readSeq }, lastSeq);
      return { kind: 'done', moved: moved && membership.left_seq === null, readSeq, unread, totalUnread: this.unreadTotal(input.userId) };
    });
  }

  async totalUnread(userId: number): Promise<number> {
    return this.unreadTotal(userId);
  }

  async membership(threadId: number, userId: number): Promise<Membership> {
    const row = this.store.threads.membership(threadId, userId);
    return !row ? 'none' : row.left_seq === null ? 'member' : 'left';
  }

  async hideMessage(_input: { userId: number; messageId: number; now: number }): Promise<HideOutcome> {
    throw new Error('hideMessage: not yet');
  }

  async hiddenAfter(_userId: number, _after: number, _limit: number): Promise<{ items: StoredHidden[]; more: boolean }> {
    throw new Error('hiddenAfter: not yet');
  }

  private unreadTotal(userId: number): number {
    return unreadTotal(this.store, userId);
  }

  private membershipOf(threadId: number, userId: number) {
    const membership = this.store.threads.membership(threadId, userId);
    const thread = membership ? this.store.threads.findById(threadId) : undefined;
    return membership && thread ? { membership, lastSeq: thread.last_seq } : undefined;
  }
}

/** Unread messages over all the user's threads (MessagingStorage.totalUnread; AdminStorage's badge is the same read). */
export function unreadTotal(store: Pick<Store, 'threads'>, userId: number): number {
  let total = 0;
  for (const row of store.threads.forUser(userId)) total += unreadOf(row, row.last_seq);
  return total;
}
