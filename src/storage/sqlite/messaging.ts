import type {
  AppendMessageInput,
  AppendOutcome,
  ChangeInput,
  CursorOutcome,
  HideOutcome,
  Membership,
  MessagingStorage,
  ReceiptsOutcome,
  SendInput,
  StoredHidden,
  StoredMessage,
} from '../ports/messaging.js';
import { receiptLists } from '../ports/messaging.js';
import type { Store } from '../store.js';
import { signedOut } from './signed-out.js';
import { type AppendSettings, insertMessage, seenRange, toStoredMessage, unreadAfterRead, unreadOf } from './append.js';
import { applyChange, planChange } from './changes.js';
import { contentRefusal, mentionRefusal, mentionsJson } from './content.js';

type Refusal = AppendOutcome & { kind: 'refused' };
/** What an append came to before the idempotency lookup: `collided`: its (device, client id) was taken, nothing stored. */
type Attempt = { readonly kind: 'stored'; readonly message: StoredMessage } | { readonly kind: 'collided' } | { readonly kind: 'unchanged' } | Refusal;

/**
 * MessagingStorage on SQLite: each write is one synchronous function run in
 * the WriteBatcher's next group transaction (one IMMEDIATE transaction, one
 * fsync for every write of the turn), resolving after its commit.
 */
/** How soon after a delete or an edit the WAL is emptied; erasures within it share one checkpoint. */
const ERASE_DELAY_MS = 200;

export class SqliteMessagingStorage implements MessagingStorage {
  /** A truncation of the WAL waiting to run (erasing text), coalesced: at most one per ERASE_DELAY_MS. */
  private erasing: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly settings: AppendSettings,
  ) {}

  async appendMessage(input: AppendMessageInput): Promise<AppendOutcome> {
    const outcome = await this.store.batcher.submit(() => this.append(input));
    if (outcome.kind === 'stored' && (input.change?.type === 'delete' || input.change?.type === 'edit')) this.eraseFromLog();
    return outcome;
  }

  /**
   * A delete or an edit overwrote text in place (zeroed: secure_delete), but the pages that held it stay in the
   * WAL until later writes reuse its frames: the automatic checkpoints copy pages into the database file and
   * leave the log as it is. A TRUNCATE checkpoint soon after empties it, so the text is gone from the disk,
   * not only from the database file. Busy (a reader holds an old snapshot): tried again.
   */
  private eraseFromLog(): void {
    if (this.erasing) return;
    this.erasing = setTimeout(() => {
      this.erasing = undefined;
      try {
        const [result] = this.store.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
        if (result?.busy) this.eraseFromLog();
      } catch {
        // Closed meanwhile (a shutdown checkpoints the same way), or the disk refused: the next erasure tries again.
      }
    }, ERASE_DELAY_MS);
    this.erasing.unref();
  }

  /** The append's transaction body, synchronous: for the batcher, and for the bench of the send statements alone. */
  append(input: AppendMessageInput): AppendOutcome {
    // Checked in the storing transaction: nothing is stored from a device once its revocation has
    // committed, whichever process made it and however late this process hears of it.
    const out = signedOut(this.store, input.senderDeviceId);
    if (out) return out;
    const attempt = input.change ? this.change(input) : this.send(input);
    if (attempt.kind === 'stored') return attempt;
    // Not stored: a resend of a stored message or change (answered the same, even to a member who left
    // since, after the thread's devices changed, or after the change it made), or refused, or unchanged.
    const existing = this.store.messages.findByClientId(input.senderDeviceId, input.clientMsgId);
    if (existing?.thread_id === input.threadId) return { kind: 'duplicate', message: toStoredMessage(existing) };
    if (existing) return { kind: 'refused', reason: 'client_id_in_other_thread' };
    if (attempt.kind === 'collided') throw new Error(`message ${input.clientMsgId} of device ${input.senderDeviceId} collided and is not there`);
    return attempt;
  }

  private send(input: SendInput): Attempt {
    const { store } = this;
    // One read for the membership check and everything storing needs: this runs for every message.
    const view = store.threads.senderState(input.senderUserId, input.threadId);
    if (!view) return { kind: 'refused', reason: 'no_thread' };
    if (view.left_seq !== null) return { kind: 'refused', reason: 'not_member' };
    // Replies and mentions cost a read each, and only when a send has them.
    const refusal =
      contentRefusal(store, input, input.content, view.e2e_required === 1) ??
      this.replyRefusal(input, view.joined_seq) ??
      mentionRefusal(store, input.threadId, input.mentions) ??
      this.attachmentRefusal(input);
    if (refusal) return refusal;
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
        replyTo: input.replyTo,
        mentionsJson: mentionsJson(input.mentions),
        now: input.now,
      },
      view,
    );
    return message ? { kind: 'stored', message } : { kind: 'collided' };
  }

  /** The change row and the target's new state, in this one unit (planChange, applyChange). */
  private change(input: ChangeInput): Attempt {
    const { store } = this;
    const state = store.threads.changerState(input.senderUserId, input.threadId);
    if (!state) return { kind: 'refused', reason: 'no_thread' };
    if (state.left_seq !== null) return { kind: 'refused', reason: 'not_member' };
    const plan = planChange(store, input, state);
    if (!('target' in plan)) return plan;
    const message = insertMessage(
      store,
      this.settings,
      {
        threadId: input.threadId,
        senderUserId: input.senderUserId,
        senderDeviceId: input.senderDeviceId,
        clientMsgId: input.clientMsgId,
        kind: plan.kind,
        bodyJson: plan.bodyJson,
        mentionsJson: plan.mentionsJson,
        change: { targetId: plan.target.id, change: plan.change },
        now: input.now,
      },
      state,
    );
    if (!message) return { kind: 'collided' };
    applyChange(store, plan, input.now);
    return { kind: 'stored', message };
  }

  /** A reply must be to a content message of this thread the sender may see, not deleted for everyone. */
  private replyRefusal(input: SendInput, joinedSeq: number): Refusal | undefined {
    if (input.replyTo === undefined) return undefined;
    const target = this.store.messages.findById(input.replyTo);
    if (!target || target.thread_id !== input.threadId || target.seq <= joinedSeq || target.kind === 'system' || target.change !== null) {
      return { kind: 'refused', reason: 'reply_invalid' };
    }
    return target.deleted_at === null ? undefined : { kind: 'refused', reason: 'message_deleted' };
  }

  /** An attached upload deleted or collected since the service read it: refused here rather than failing on its reference. */
  private attachmentRefusal(input: SendInput): Refusal | undefined {
    const uploadId = input.attachments && this.store.messages.missingUpload(input.attachments.uploadIds);
    return uploadId === undefined ? undefined : { kind: 'refused', reason: 'attachment_gone', uploadId };
  }

  /**
   * A lazy write (see WriteBatcher): it commits with a send that comes within 5 ms, or alone without an fsync. A
   * power cut may lose the move until a later commit has synced it: the device gets those messages again, and
   * dedupes them.
   */
  markDelivered(input: { userId: number; deviceId: number; threadId: number; seq: number }): Promise<CursorOutcome<{ seq: number }>> {
    const { store } = this;
    return store.batcher.submit((): CursorOutcome<{ seq: number }> => {
      const found = this.membershipOf(input.threadId, input.userId);
      if (!found) return { kind: 'refused', reason: 'no_thread' };
      const { membership } = found;
      const upTo = Math.min(input.seq, seenRange(membership, found.lastSeq).to);
      store.cursors.advance(input.deviceId, input.threadId, upTo);
      store.inbox.acknowledge(input.deviceId, input.threadId, upTo);
      // A former member's cursors still move (their unread counts), but nobody is told.
      const moved = store.threads.advanceDelivered(input.threadId, input.userId, upTo) && membership.left_seq === null;
      const authors = moved ? store.messages.authorsBetween(input.threadId, Math.max(membership.delivered_seq, membership.joined_seq), upTo, input.userId) : [];
      return { kind: 'done', seq: upTo, moved, authors };
    }, 'lazy');
  }

  markRead(input: { userId: number; threadId: number; seq: number }): Promise<CursorOutcome<{ readSeq: number; unread: number; totalUnread: number }>> {
    const { store } = this;
    return store.batcher.submit((): CursorOutcome<{ readSeq: number; unread: number; totalUnread: number }> => {
      const found = this.membershipOf(input.threadId, input.userId);
      if (!found) return { kind: 'refused', reason: 'no_thread' };
      const { membership, lastSeq, thread } = found;
      const upTo = Math.min(input.seq, seenRange(membership, lastSeq).to);
      const moved = store.threads.advanceRead(input.threadId, input.userId, upTo) && membership.left_seq === null;
      const authors = moved ? store.messages.authorsBetween(input.threadId, Math.max(membership.read_seq, membership.joined_seq), upTo, input.userId) : [];
      const readSeq = Math.max(upTo, membership.read_seq);
      const unread = unreadAfterRead(store, { ...membership, read_seq: readSeq }, thread);
      return { kind: 'done', moved, authors, readSeq, unread, totalUnread: this.unreadTotal(input.userId) };
    });
  }

  async receiptsOf(threadId: number, seq: number, requesterUserId: number): Promise<ReceiptsOutcome> {
    const { store } = this;
    const found = this.membershipOf(threadId, requesterUserId);
    if (!found || found.membership.left_seq !== null) return { kind: 'refused', reason: 'no_thread' };
    const range = seenRange(found.membership, found.lastSeq);
    const author = seq > range.from && seq <= range.to ? store.messages.senderAt(threadId, seq) : undefined;
    if (author === undefined) return { kind: 'refused', reason: 'no_message' };
    return receiptLists(
      store.threads.receiptCursors(threadId, seq).filter((member) => member.userId !== author),
      seq,
    );
  }

  async totalUnread(userId: number): Promise<number> {
    return this.unreadTotal(userId);
  }

  async membership(threadId: number, userId: number): Promise<Membership> {
    const row = this.store.threads.membership(threadId, userId);
    return !row ? 'none' : row.left_seq === null ? 'member' : 'left';
  }

  hideMessage(input: { userId: number; messageId: number; now: number }): Promise<HideOutcome> {
    const { store } = this;
    return store.batcher.submit((): HideOutcome => {
      const message = store.messages.findById(input.messageId);
      const found = message && message.change === null ? this.membershipOf(message.thread_id, input.userId) : undefined;
      const range = found && seenRange(found.membership, found.lastSeq);
      // A change row, or a message outside what the user may see (never a member, joined after it): as if none.
      if (!message || !range || message.seq <= range.from || message.seq > range.to) return { kind: 'refused', reason: 'no_message' };
      const id = store.hidden.insert(input.userId, message.id, message.thread_id, input.now);
      const row = id === undefined ? store.hidden.find(input.userId, message.id) : { id, thread_id: message.thread_id, message_id: message.id };
      if (!row) throw new Error(`hidden message ${message.id} of user ${input.userId} is not there`);
      return { kind: 'hidden', hidden: { id: row.id, threadId: row.thread_id, messageId: row.message_id }, already: id === undefined };
    });
  }

  async hiddenAfter(userId: number, after: number, limit: number): Promise<{ items: StoredHidden[]; more: boolean }> {
    const rows = this.store.hidden.after(userId, after, limit + 1);
    const items = rows.slice(0, limit).map((row) => ({ id: row.id, threadId: row.thread_id, messageId: row.message_id }));
    return { items, more: rows.length > limit };
  }

  private unreadTotal(userId: number): number {
    return unreadTotal(this.store, userId);
  }

  private membershipOf(threadId: number, userId: number) {
    const membership = this.store.threads.membership(threadId, userId);
    const thread = membership ? this.store.threads.findById(threadId) : undefined;
    return membership && thread ? { membership, thread, lastSeq: thread.last_seq } : undefined;
  }
}

/** Unread messages over all the user's threads (MessagingStorage.totalUnread; AdminStorage's badge is the same read). */
export function unreadTotal(store: Pick<Store, 'threads'>, userId: number): number {
  let total = 0;
  for (const row of store.threads.forUser(userId)) total += unreadOf(row);
  return total;
}
