import type { AppendMessageInput, AppendOutcome, ChangeInput, MessageChange, SendContent, SendInput, StoredMessage } from '../ports/messaging.js';
import type { MemberRole, ThreadKind } from '../ports/threads.js';
import type { TokenState } from '../ports/token.js';
import { type TargetState, decideChange, mentionRefusal, replyRefusal } from './change-plan.js';

/**
 * The decisions of one batch of appends (sends and changes), pure: what the
 * batch's queries read for every input (under the threads' row locks, and
 * the change targets' row locks) in, which rows to insert with which seqs,
 * which targets end in which state, and what each input gets out. The inputs
 * are decided one after another in batch order, exactly as SQLite runs the
 * same units one after another in its group transaction: an earlier append of
 * the batch takes its seq first, a later one with the same (device, client
 * id) is its duplicate, and a later change of the same target sees the
 * earlier one's result (two reactions aggregate, an edit after a delete is
 * refused).
 */

/** What the batch's check query found for one input. */
export interface AppendCheck {
  /** The sending device's token; undefined when there is no such device. */
  readonly token: TokenState | undefined;
  /** The thread and the sender's membership; undefined when the sender was never in it (or no such thread). */
  readonly thread: SenderView | undefined;
  /** The thread's approved devices in id order (read for e2e sends and edits only). */
  readonly approved: readonly number[] | undefined;
  /** The message this device already stored under this client id, if any. */
  readonly existing: StoredMessage | undefined;
  /** The first attached upload that is not (any more) a complete upload; read under a key-share lock for sends with attachments. */
  readonly missingUpload?: string | undefined;
}

export interface SenderView {
  /** Read under the thread's row lock: the seqs of this batch follow it. */
  readonly lastSeq: number;
  /** Current members: above read diffusion no inbox rows are written. */
  readonly memberCount: number;
  readonly e2eRequired: boolean;
  /** The sender left or was removed. */
  readonly left: boolean;
  /** The sender sees the thread's messages after this seq. */
  readonly joinedSeq: number;
  readonly role: MemberRole;
  readonly threadKind: ThreadKind;
}

/**
 * What the batch's second read found, made only when an input carries a
 * change, a reply or mentions: the messages they name (change targets locked
 * to commit) and, per thread, which of the users mentioned are current members.
 */
export interface Related {
  readonly messages: ReadonlyMap<number, TargetState>;
  readonly members: ReadonlyMap<number, ReadonlySet<number>>;
}

export const NOTHING_RELATED: Related = { messages: new Map(), members: new Map() };

/** A row to insert (its id comes from the INSERT): a content message or a change row. */
export interface PlannedMessage {
  readonly threadId: number;
  readonly seq: number;
  readonly senderUserId: number;
  readonly senderDeviceId: number;
  readonly clientMsgId: string;
  readonly kind: 'text' | 'e2e';
  readonly bodyJson: string;
  readonly attachments: SendInput['attachments'];
  readonly now: number;
  readonly replyTo?: number | undefined;
  readonly mentionsJson?: string | undefined;
  readonly targetId?: number | undefined;
  readonly change?: MessageChange | undefined;
}

/** An input's answer: final now, or the planned message (by index) it stores or duplicates. */
export type PlannedOutcome =
  | { readonly kind: 'final'; readonly outcome: AppendOutcome }
  | { readonly kind: 'stored' | 'duplicate'; readonly planned: number };

export interface AppendPlan {
  readonly messages: PlannedMessage[];
  readonly outcomes: PlannedOutcome[];
  /** Per thread that gets messages: its last seq after the batch, and whether it writes inbox rows. */
  readonly threads: Map<number, { readonly lastSeq: number; readonly memberCount: number }>;
  /** The targets the batch changed, in their state after the batch. */
  readonly targets: TargetState[];
  /** The targets the batch deleted for everyone: their edit rows' bodies and attachment refs go too. */
  readonly deleted: number[];
}

type Refusal = AppendOutcome & { kind: 'refused' };

/** What an input that may store would store, and what storing it does to its target. */
export interface RowDecision {
  readonly row: Pick<PlannedMessage, 'kind' | 'bodyJson' | 'attachments' | 'replyTo' | 'mentionsJson' | 'targetId' | 'change'>;
  /** The target's state once the row is stored (a change), and whether it is deleted by it. */
  readonly target?: { readonly state: TargetState; readonly deleted: boolean } | undefined;
}

export type Decision = RowDecision | Refusal | { readonly kind: 'unchanged' };

export function planAppends(inputs: readonly AppendMessageInput[], checks: readonly AppendCheck[], related: Related = NOTHING_RELATED): AppendPlan {
  const messages: PlannedMessage[] = [];
  const outcomes: PlannedOutcome[] = [];
  const threads = new Map<number, { lastSeq: number; memberCount: number }>();
  // Targets as the batch leaves them so far: a later change of the batch sees an earlier one's result.
  const states = new Map(related.messages);
  const changed = new Set<number>();
  const deleted: number[] = [];
  // (device, client id) → the planned message of this batch that took it.
  const taken = new Map<string, number>();
  inputs.forEach((input, index) => {
    const check = checks[index];
    if (!check) throw new Error(`append check missing for input ${index}`);
    const { token, thread } = check;
    // Checked in the storing transaction: nothing is stored from a device whose revocation committed first.
    if (!token || token.revoked || token.disabled || token.deleted) {
      outcomes.push({ kind: 'final', outcome: { kind: 'signed_out', state: token } });
      return;
    }
    const key = `${input.senderDeviceId}\u0000${input.clientMsgId}`;
    const member = thread !== undefined && !thread.left;
    const earlier = taken.get(key);
    const decision = member && !check.existing && earlier === undefined ? decide(input, thread, check, related, states) : undefined;
    if (decision && 'row' in decision) {
      const state = threads.get(input.threadId) ?? { lastSeq: thread?.lastSeq ?? 0, memberCount: thread?.memberCount ?? 0 };
      state.lastSeq += 1;
      threads.set(input.threadId, state);
      taken.set(key, messages.length);
      outcomes.push({ kind: 'stored', planned: messages.length });
      messages.push({
        ...decision.row,
        threadId: input.threadId,
        seq: state.lastSeq,
        senderUserId: input.senderUserId,
        senderDeviceId: input.senderDeviceId,
        clientMsgId: input.clientMsgId,
        now: input.now,
      });
      if (decision.target) {
        states.set(decision.target.state.id, decision.target.state);
        changed.add(decision.target.state.id);
        if (decision.target.deleted) deleted.push(decision.target.state.id);
      }
      return;
    }
    // Not stored: a resend of a stored message (answered the same, even to a member who left since, or
    // after the thread's devices changed), or refused, or a change that changes nothing.
    const existingThread = check.existing?.threadId ?? (earlier === undefined ? undefined : messages[earlier]?.threadId);
    if (existingThread === input.threadId) {
      outcomes.push(check.existing ? { kind: 'final', outcome: { kind: 'duplicate', message: check.existing } } : { kind: 'duplicate', planned: earlier as number });
    } else if (existingThread !== undefined) {
      outcomes.push({ kind: 'final', outcome: { kind: 'refused', reason: 'client_id_in_other_thread' } });
    } else if (decision) {
      outcomes.push({ kind: 'final', outcome: decision });
    } else {
      outcomes.push({ kind: 'final', outcome: { kind: 'refused', reason: thread ? 'not_member' : 'no_thread' } });
    }
  });
  const targets = [...changed].map((id) => states.get(id) as TargetState);
  return { messages, outcomes, threads, targets, deleted };
}

function decide(input: AppendMessageInput, thread: SenderView, check: AppendCheck, related: Related, states: ReadonlyMap<number, TargetState>): Decision {
  const members = related.members.get(input.threadId) ?? new Set<number>();
  if (input.change) {
    const target = states.get(input.change.targetId);
    const content = (change: ChangeInput, send: SendContent): Refusal | undefined => contentRefusal(change, send, thread.e2eRequired, check.approved ?? []);
    return decideChange(input, thread, target, members, content);
  }
  const refusal =
    contentRefusal(input, input.content, thread.e2eRequired, check.approved ?? []) ??
    replyRefusal(input, thread, input.replyTo === undefined ? undefined : states.get(input.replyTo)) ??
    mentionRefusal(input.mentions, members) ??
    attachmentRefusal(check);
  if (refusal) return refusal;
  const mentions = input.mentions !== undefined && input.mentions.length > 0 ? JSON.stringify(input.mentions) : undefined;
  return {
    row: { kind: input.content.kind, bodyJson: input.bodyJson, attachments: input.attachments, replyTo: input.replyTo, mentionsJson: mentions },
  };
}

function attachmentRefusal(check: AppendCheck): Refusal | undefined {
  return check.missingUpload === undefined ? undefined : { kind: 'refused', reason: 'attachment_gone', uploadId: check.missingUpload };
}

/** Why this content may not go into the thread: plaintext where encryption is required; an envelope not sealed to exactly the thread's approved devices. */
function contentRefusal(input: AppendMessageInput, content: SendContent, threadRequires: boolean, approved: readonly number[]): Refusal | undefined {
  if (content.kind === 'text') return input.requireE2eEverywhere || threadRequires ? { kind: 'refused', reason: 'encryption_required' } : undefined;
  if (content.sealedTo === 'invalid') return { kind: 'refused', reason: 'envelope_invalid' };
  if (!approved.includes(input.senderDeviceId)) return { kind: 'refused', reason: 'device_unapproved' };
  const have = new Set(content.sealedTo);
  const want = new Set(approved);
  const missing = approved.filter((id) => !have.has(id));
  const extra = content.sealedTo.filter((id) => !want.has(id));
  return missing.length === 0 && extra.length === 0 ? undefined : { kind: 'refused', reason: 'devices_changed', missing, extra };
}
