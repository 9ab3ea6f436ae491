import type { Clock } from '../clock.js';
import { ChatError } from '../errors.js';
import type { AttachmentStorage } from '../storage/ports/attachments.js';
import type { AppendOutcome, MessagingStorage } from '../storage/ports/messaging.js';
import { type PushPlatforms, anyPushPlatform } from '../storage/ports/push.js';
import { resolveAttachments } from './message-attachments.js';
import { contentRefusal, mentionRefusal, sealing } from './message-content.js';
import type { SendBudget } from './limits/send-budget.js';
import { refuseSignedOut } from './revocations.js';
import type { Fanout, Message, MessageKind, Principal, PushQueueListener } from './types.js';

export interface MessagingSettings {
  /** The push providers configured: with none, a stored message wakes no push worker. */
  readonly push: PushPlatforms;
  readonly maxBodyBytes: number;
  /** Every thread takes end-to-end encrypted messages only. */
  readonly requireE2e: boolean;
  /** attachments.enabled: false refuses a send that carries attachments (attachments_disabled). */
  readonly attachmentsEnabled: boolean;
}

export interface MessagingDeps {
  readonly storage: MessagingStorage;
  /** Which uploads a sender may attach (their own complete ones, or ones they can read). */
  readonly attachments: Pick<AttachmentStorage, 'attachable'>;
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
  /** Upload ids (1-10, distinct: the decoder checked), in the client's order; undefined: none. */
  readonly attachments?: readonly string[] | undefined;
  /** The message this one answers (the unit checks it is a content message of the thread the sender may see). */
  readonly replyTo?: number | undefined;
  /** User ids mentioned (distinct, at most 50: the decoder checked); the unit checks each is a current member. */
  readonly mentions?: readonly number[] | undefined;
}

export interface SendResult {
  readonly message: Message;
  /** True when this (device, client_msg_id) was stored before: the same ack again, no second message, nothing to announce. */
  readonly duplicate: boolean;
}

export interface ReadResult {
  readonly threadId: number;
  readonly readSeq: number;
  readonly unread: number;
  readonly totalUnread: number;
}

/** Who has a message (MessagingService.receipts): user ids, each in one list, in joining order. */
export interface ReceiptsResult {
  readonly threadId: number;
  readonly seq: number;
  readonly read: readonly number[];
  readonly delivered: readonly number[];
  readonly pending: readonly number[];
}

/**
 * The message path: send (stored with its seq in one unit of work, acked after
 * commit by the caller, then announced: fanout, then the push wake-up),
 * delivery acks, read cursors, typing. History and sync are HistoryService's.
 */
export class MessagingService {
  constructor(private readonly deps: MessagingDeps) {}

  /**
   * Stores the message (one unit of work: membership, seq, row, idempotency,
   * inbox and push rows) and resolves after commit with what the ack reports.
   * Nothing is fanned out here: the caller acks, then calls `announce`.
   */
  async send(principal: Principal, request: SendRequest): Promise<SendResult> {
    const { storage, clock, settings } = this.deps;
    this.deps.sendBudget.spend(principal.user.id);
    if (Buffer.byteLength(request.bodyJson) > settings.maxBodyBytes) {
      throw new ChatError('payload_too_large', `the message body is larger than the limit of ${settings.maxBodyBytes} bytes`, { field: 'body' });
    }
    if (request.attachments !== undefined && !settings.attachmentsEnabled) {
      throw new ChatError('attachments_disabled', 'this server does not take attachments (attachments.enabled is false)', { field: 'attachments' });
    }
    const content = sealing(principal, request.kind, request.bodyJson);
    // Read before the unit (a networked engine's unit awaits nothing else); the unit checks again that
    // each upload is still there (deleted or collected in between: attachment_gone).
    const attachments =
      request.attachments === undefined ? undefined : await resolveAttachments(this.deps.attachments, principal.user.id, request.attachments, request.kind);
    const outcome = await storage.appendMessage({
      threadId: request.threadId,
      senderUserId: principal.user.id,
      senderDeviceId: principal.deviceId,
      clientMsgId: request.clientMsgId,
      content: content.content,
      bodyJson: request.bodyJson,
      ...(attachments === undefined ? {} : { attachments }),
      ...(request.replyTo === undefined ? {} : { replyTo: request.replyTo }),
      ...(request.mentions === undefined ? {} : { mentions: request.mentions }),
      now: clock.now(),
      requireE2eEverywhere: settings.requireE2e,
    });
    if (outcome.kind === 'signed_out') refuseSignedOut(outcome.state);
    if (outcome.kind === 'stored' || outcome.kind === 'duplicate') return { message: outcome.message, duplicate: outcome.kind === 'duplicate' };
    if (outcome.kind === 'unchanged') throw new Error('a send cannot be unchanged');
    throw sendRefusal(outcome, request, content.error);
  }

  /**
   * Tells the thread of a stored message: the fanout to live devices, then the
   * push worker's wake-up. Call it after the ack (in the same gathered turn, so
   * the sender hears its ack before the event, and the thread's messages go out
   * in seq order), and never for a duplicate: it went out the first time.
   */
  announce(message: Message): void {
    this.deps.fanout.message(message);
    if (anyPushPlatform(this.deps.settings.push)) this.deps.pushes.pushQueued();
  }

  /** The device has received everything up to `seq` in the thread (cumulative). */
  async delivered(principal: Principal, threadId: number, seq: number): Promise<{ threadId: number; seq: number }> {
    const outcome = await this.deps.storage.markDelivered({ userId: principal.user.id, deviceId: principal.deviceId, threadId, seq });
    if (outcome.kind === 'refused') throw new ChatError('not_found', `no thread ${threadId}`);
    // To the authors of what it passed; the user's own devices know what they acked.
    if (outcome.moved && outcome.authors.length > 0) this.deps.fanout.receipt(threadId, principal.user.id, 'delivered', outcome.seq, outcome.authors);
    return { threadId, seq: outcome.seq };
  }

  /**
   * The user has read up to `seq`: moves the read cursor (forward only) and
   * tells the authors of what it passed, and the user's own devices (their
   * unread badges follow).
   */
  async read(principal: Principal, threadId: number, seq: number): Promise<ReadResult> {
    const outcome = await this.deps.storage.markRead({ userId: principal.user.id, threadId, seq });
    if (outcome.kind === 'refused') throw new ChatError('not_found', `no thread ${threadId}`);
    if (outcome.moved) this.deps.fanout.receipt(threadId, principal.user.id, 'read', outcome.readSeq, [...outcome.authors, principal.user.id]);
    return { threadId, readSeq: outcome.readSeq, unread: outcome.unread, totalUnread: outcome.totalUnread };
  }

  /**
   * Who has read, received, or not yet received message `seq` ("message
   * info"): any current member may ask about a message they may see (the
   * cursors are theirs to see in thread_get already).
   */
  async receipts(principal: Principal, threadId: number, seq: number): Promise<ReceiptsResult> {
    const outcome = await this.deps.storage.receiptsOf(threadId, seq, principal.user.id);
    if (outcome.kind === 'refused') {
      throw new ChatError('not_found', outcome.reason === 'no_thread' ? `no thread ${threadId}` : `no message ${seq} in thread ${threadId}`);
    }
    return { threadId, seq, read: outcome.read, delivered: outcome.delivered, pending: outcome.pending };
  }

  /** Unread messages over all the user's threads, muted ones included (clients may subtract them). */
  totalUnread(userId: number): Promise<number> {
    return this.deps.storage.totalUnread(userId);
  }

  async typing(principal: Principal, threadId: number): Promise<void> {
    const membership = await this.deps.storage.membership(threadId, principal.user.id);
    if (membership === 'none') throw new ChatError('not_found', `no thread ${threadId}`);
    if (membership === 'left') throw new ChatError('forbidden', `you are no longer a member of thread ${threadId}`);
    this.deps.fanout.typing(threadId, principal.user.id, principal.deviceId);
  }
}

/** The error a refused send is answered with (today's codes, messages and details: clients and tests rely on them). */
function sendRefusal(outcome: AppendOutcome & { kind: 'refused' }, request: SendRequest, envelopeError: ChatError | undefined): ChatError {
  const content = contentRefusal(outcome, envelopeError);
  if (content) return content;
  switch (outcome.reason) {
    case 'client_id_in_other_thread':
      return new ChatError('invalid_field', `client_msg_id ${request.clientMsgId} was already used for a message in another thread`, { field: 'client_msg_id' });
    case 'attachment_gone':
      return new ChatError('attachment_not_found', `attachment ${outcome.uploadId} is not an upload you may attach: it was deleted`, { field: 'attachments' });
    case 'no_thread':
      return new ChatError('not_found', `no thread ${request.threadId}`);
    case 'not_member':
      return new ChatError('forbidden', `you are no longer a member of thread ${request.threadId}`);
    case 'reply_invalid':
      return new ChatError('invalid_field', `reply_to ${request.replyTo} is not a message of thread ${request.threadId} you may see`, { field: 'reply_to' });
    case 'mention_not_member':
      return mentionRefusal(outcome.userId, request.threadId);
    case 'message_deleted':
      return new ChatError('message_deleted', `reply_to ${request.replyTo} is a message deleted for everyone`, { field: 'reply_to' });
    // A send is never refused for its target: these answer changes only.
    case 'no_message':
    case 'not_changeable':
    case 'not_author':
    case 'edit_window_passed':
    case 'kind_mismatch':
    case 'unseen_by_members':
    case 'too_many_reactions':
      return new ChatError('internal', `a send was refused as a change (${outcome.reason})`);
    // The content's refusals, answered above.
    case 'encryption_required':
    case 'envelope_invalid':
    case 'device_unapproved':
    case 'devices_changed':
      return new ChatError('internal', `a content refusal was not mapped (${outcome.reason})`);
  }
}
