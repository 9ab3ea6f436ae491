import type { Clock } from '../clock.js';
import { ChatError } from '../errors.js';
import type { HistoryStorage } from '../storage/ports/history.js';
import type { AppendOutcome, ChangeRequest, MessagingStorage } from '../storage/ports/messaging.js';
import type { SendBudget } from './limits/send-budget.js';
import { contentRefusal, mentionRefusal, sealing } from './message-content.js';
import { refuseSignedOut } from './revocations.js';
import type { Fanout, HiddenMessage, Message, Principal } from './types.js';

export interface MessageChangeSettings {
  readonly maxBodyBytes: number;
  /** messages.edit_window_seconds in ms: how long after sending the author may edit; 0: no limit. */
  readonly editWindowMs: number;
  /** messages.require_e2e: plaintext is refused in every thread (an edit too). */
  readonly requireE2e: boolean;
}

export interface MessageChangeDeps {
  readonly storage: Pick<MessagingStorage, 'appendMessage' | 'hideMessage' | 'hiddenAfter'>;
  /** Which thread a message is in, and whether the user may see it: a change is appended to its target's thread. */
  readonly history: Pick<HistoryStorage, 'locate'>;
  readonly clock: Clock;
  readonly fanout: Fanout;
  /** Changes are stored like sends: they draw from the same budget. */
  readonly sendBudget: Pick<SendBudget, 'spend'>;
  readonly settings: MessageChangeSettings;
}

export interface EditRequest {
  readonly messageId: number;
  readonly clientMsgId: string;
  readonly kind: 'text' | 'e2e';
  readonly bodyJson: string;
  readonly mentions?: readonly number[] | undefined;
}

/**
 * What a change request came to: a change message stored now (announce it
 * after the ack) or before (a resend: ack it again, announce nothing), or
 * nothing to change (answered `ok`).
 */
export type ChangeResult = { readonly kind: 'stored' | 'duplicate'; readonly message: Message } | { readonly kind: 'unchanged' };

/** A reaction is exactly one emoji as Unicode recommends them (RGI: sequences with skin tones, flags, ZWJ families included). */
const ONE_EMOJI = new RegExp('^\\p{RGI_Emoji}$', 'v');

/** The largest page of `hidden` items. */
const HIDDEN_PAGE_MAX = 500;

/**
 * Edits, deletes and reactions (MSG-SPEC §1): each is a change message
 * appended to its target's thread by the send's unit of work (seq, inbox,
 * idempotency, ack after commit), with the target rewritten to its latest
 * state in the same unit. So they reach every device by the ways messages
 * do. The rules that need the stored rows (author, window, role, reaction
 * counts) are checked in the unit and come back as refusals, mapped here to
 * the errors of docs/protocol.md. Also "delete for me" (hidden messages),
 * which is the user's own and not part of any thread's log.
 */
export class MessageChangeService {
  constructor(private readonly deps: MessageChangeDeps) {}

  /** Replaces the body and mentions of the principal's own message, sealed like a send when it is e2e. */
  async edit(principal: Principal, request: EditRequest): Promise<ChangeResult> {
    const { settings } = this.deps;
    this.deps.sendBudget.spend(principal.user.id);
    if (Buffer.byteLength(request.bodyJson) > settings.maxBodyBytes) {
      throw new ChatError('payload_too_large', `the message body is larger than the limit of ${settings.maxBodyBytes} bytes`, { field: 'body' });
    }
    const content = sealing(principal, request.kind, request.bodyJson);
    const change: ChangeRequest = {
      type: 'edit',
      targetId: request.messageId,
      content: content.content,
      bodyJson: request.bodyJson,
      ...(request.mentions === undefined ? {} : { mentions: request.mentions }),
      editWindowMs: settings.editWindowMs,
    };
    return this.append(principal, request.clientMsgId, change, content.error);
  }

  /** Deletes a message for everyone: its author, or an owner or admin of its group. `unchanged` when it was deleted already. */
  async deleteForEveryone(principal: Principal, messageId: number, clientMsgId: string): Promise<ChangeResult> {
    this.deps.sendBudget.spend(principal.user.id);
    return this.append(principal, clientMsgId, { type: 'delete', targetId: messageId }, undefined);
  }

  /** Turns the principal's reaction with `emoji` on or off. `unchanged` when it already was so. */
  async react(principal: Principal, messageId: number, emoji: string, on: boolean, clientMsgId: string): Promise<ChangeResult> {
    if (!ONE_EMOJI.test(emoji)) throw new ChatError('invalid_field', `emoji must be exactly one emoji, got ${JSON.stringify(emoji)}`, { field: 'emoji' });
    this.deps.sendBudget.spend(principal.user.id);
    return this.append(principal, clientMsgId, { type: 'reaction', targetId: messageId, emoji, on }, undefined);
  }

  /**
   * Announces a stored change message like a message: to every live device
   * following its thread. After the ack, never for a duplicate. Changes wake
   * no push worker: they queue no notification (an edit that adds a mention
   * does not notify either).
   */
  announce(message: Message): void {
    this.deps.fanout.message(message);
  }

  /**
   * "Delete for me": the message leaves the user's history, jump, search and
   * sync; their live devices are told (the first time only). Hiding a
   * message twice changes nothing.
   */
  async deleteForMe(principal: Principal, messageId: number): Promise<void> {
    const outcome = await this.deps.storage.hideMessage({ userId: principal.user.id, messageId, now: this.deps.clock.now() });
    if (outcome.kind === 'refused') throw new ChatError('not_found', `no message ${messageId}`);
    if (!outcome.already) this.deps.fanout.hidden(principal.user.id, [outcome.hidden]);
  }

  /** The user's hidden messages after the cursor `after` (a hidden id), oldest first. */
  hidden(principal: Principal, after: number, limit: number): Promise<{ readonly items: readonly HiddenMessage[]; readonly more: boolean }> {
    return this.deps.storage.hiddenAfter(principal.user.id, after, Math.min(limit, HIDDEN_PAGE_MAX));
  }

  /**
   * Appends the change to its target's thread. The thread is read first (the
   * unit needs it to take the thread's next seq); the unit checks everything
   * again, so a target deleted or a membership ended in between is refused
   * there, not stored.
   */
  private async append(principal: Principal, clientMsgId: string, change: ChangeRequest, envelopeError: ChatError | undefined): Promise<ChangeResult> {
    // Hidden messages and change rows included: "delete for me" does not take away the right to change a
    // message (nor the ack of a change stored before: the unit finds a resend by its client_msg_id first),
    // and the unit refuses a change row as such (`not_changeable`).
    const found = await this.deps.history.locate(principal.user.id, change.targetId, { anyRow: true });
    // A message outside what the caller may see of its thread is answered like one that does not exist (as jump does).
    if (!found || found.seq <= found.from || found.seq > found.to) throw new ChatError('not_found', `no message ${change.targetId}`);
    const outcome = await this.deps.storage.appendMessage({
      threadId: found.threadId,
      senderUserId: principal.user.id,
      senderDeviceId: principal.deviceId,
      clientMsgId,
      change,
      now: this.deps.clock.now(),
      requireE2eEverywhere: this.deps.settings.requireE2e,
    });
    switch (outcome.kind) {
      case 'stored':
      case 'duplicate':
        return { kind: outcome.kind, message: outcome.message };
      case 'unchanged':
        return { kind: 'unchanged' };
      case 'signed_out':
        return refuseSignedOut(outcome.state);
      case 'refused':
        throw changeRefusal(outcome, change, found.threadId, clientMsgId, envelopeError);
    }
  }
}

const VERB: Record<ChangeRequest['type'], string> = { edit: 'edited', delete: 'deleted', reaction: 'reacted to' };

/** The error a refused change is answered with (docs/protocol.md, "Requests: changing messages"). */
function changeRefusal(
  outcome: AppendOutcome & { kind: 'refused' },
  change: ChangeRequest,
  threadId: number,
  clientMsgId: string,
  envelopeError: ChatError | undefined,
): ChatError {
  const content = contentRefusal(outcome, envelopeError);
  if (content) return content;
  const id = change.targetId;
  switch (outcome.reason) {
    case 'no_message':
    case 'no_thread':
      return new ChatError('not_found', `no message ${id}`);
    case 'not_member':
      return new ChatError('forbidden', `you are no longer a member of thread ${threadId}`);
    case 'not_changeable':
      return new ChatError('invalid_field', `message ${id} is a system message or a change: it cannot be ${VERB[change.type]}`, { field: 'message_id' });
    case 'message_deleted':
      return new ChatError('message_deleted', `message ${id} was deleted`);
    case 'not_author':
      return change.type === 'edit'
        ? new ChatError('forbidden', 'only the author can edit this message')
        : new ChatError('forbidden', 'only the author, or an owner or admin of the group, can delete this message for everyone');
    case 'edit_window_passed':
      return new ChatError('edit_window_passed', `messages can be edited for ${inWords(outcome.windowMs)} after they are sent (messages.edit_window_seconds); this one is older`);
    case 'kind_mismatch':
      return new ChatError('invalid_field', `kind must be the message's own: message ${id} is ${change.type === 'edit' && change.content.kind === 'text' ? 'e2e' : 'text'}`, { field: 'kind' });
    case 'unseen_by_members':
      return new ChatError(
        'forbidden',
        `message ${id} can no longer be edited: members who joined the thread after it cannot see it, and an edit would show them its text; send a new message instead`,
      );
    case 'mention_not_member':
      return mentionRefusal(outcome.userId, threadId);
    case 'too_many_reactions':
      return new ChatError('invalid_field', `emoji: you already reacted to message ${id} with the most emoji one user may (20)`, { field: 'emoji' });
    case 'client_id_in_other_thread':
      return new ChatError('invalid_field', `client_msg_id ${clientMsgId} was already used for a message in another thread`, { field: 'client_msg_id' });
    // A change is never refused for what only a send carries.
    case 'reply_invalid':
    case 'attachment_gone':
      return new ChatError('internal', `a change was refused as a send (${outcome.reason})`);
    // The content's refusals, answered above.
    case 'encryption_required':
    case 'envelope_invalid':
    case 'device_unapproved':
    case 'devices_changed':
      return new ChatError('internal', `a content refusal was not mapped (${outcome.reason})`);
  }
}

/** A window in words: "48 hours", "15 minutes", "1 second" (the largest unit that divides it; days from a week up). */
export function inWords(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const units: Array<[string, number]> = [
    ['day', 86_400],
    ['hour', 3_600],
    ['minute', 60],
  ];
  for (const [unit, size] of units) {
    if (seconds % size !== 0 || (unit === 'day' && seconds < 7 * size)) continue;
    const count = seconds / size;
    return `${count} ${unit}${count === 1 ? '' : 's'}`;
  }
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}
