import type { SendInput, AppendOutcome, StoredMessage } from '../ports/messaging.js';
import type { TokenState } from '../ports/token.js';

/**
 * The decisions of one batch of sends, pure: what one query read for every
 * input (under the threads' row locks) in, which messages to insert with which
 * seqs and what each input gets out. The inputs are decided one after another
 * in batch order, exactly as SQLite runs the same units one after another in
 * its group transaction: an earlier send of the batch takes its seq first, and
 * a later one with the same (device, client id) is its duplicate.
 */

/** What the batch's check query found for one input. */
export interface AppendCheck {
  /** The sending device's token; undefined when there is no such device. */
  readonly token: TokenState | undefined;
  /** The thread and the sender's membership; undefined when the sender was never in it (or no such thread). */
  readonly thread: SenderView | undefined;
  /** The thread's approved devices in id order (read for e2e sends only). */
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
}

/** A message to insert (its id comes from the INSERT). */
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
}

type Refusal = AppendOutcome & { kind: 'refused' };

export function planAppends(inputs: readonly SendInput[], checks: readonly AppendCheck[]): AppendPlan {
  const messages: PlannedMessage[] = [];
  const outcomes: PlannedOutcome[] = [];
  const threads = new Map<number, { lastSeq: number; memberCount: number }>();
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
    const refusal = member ? (contentRefusal(input, thread.e2eRequired, check.approved ?? []) ?? attachmentRefusal(check)) : undefined;
    const earlier = taken.get(key);
    if (member && !refusal && !check.existing && earlier === undefined) {
      const state = threads.get(input.threadId) ?? { lastSeq: thread.lastSeq, memberCount: thread.memberCount };
      state.lastSeq += 1;
      threads.set(input.threadId, state);
      taken.set(key, messages.length);
      outcomes.push({ kind: 'stored', planned: messages.length });
      messages.push({
        threadId: input.threadId,
        seq: state.lastSeq,
        senderUserId: input.senderUserId,
        senderDeviceId: input.senderDeviceId,
        clientMsgId: input.clientMsgId,
        kind: input.content.kind,
        bodyJson: input.bodyJson,
        attachments: input.attachments,
        now: input.now,
      });
      return;
    }
    // Not stored: a resend of a stored message (answered the same, even to a member who left since, or
    // after the thread's devices changed), or refused.
    const existingThread = check.existing?.threadId ?? (earlier === undefined ? undefined : messages[earlier]?.threadId);
    if (existingThread === input.threadId) {
      outcomes.push(check.existing ? { kind: 'final', outcome: { kind: 'duplicate', message: check.existing } } : { kind: 'duplicate', planned: earlier as number });
    } else if (existingThread !== undefined) {
      outcomes.push({ kind: 'final', outcome: { kind: 'refused', reason: 'client_id_in_other_thread' } });
    } else if (refusal) {
      outcomes.push({ kind: 'final', outcome: refusal });
    } else {
      outcomes.push({ kind: 'final', outcome: { kind: 'refused', reason: thread ? 'not_member' : 'no_thread' } });
    }
  });
  return { messages, outcomes, threads };
}

function attachmentRefusal(check: AppendCheck): Refusal | undefined {
  return check.missingUpload === undefined ? undefined : { kind: 'refused', reason: 'attachment_gone', uploadId: check.missingUpload };
}

/** Why this content may not go into the thread: plaintext where encryption is required; an envelope not sealed to exactly the thread's approved devices. */
function contentRefusal(input: SendInput, threadRequires: boolean, approved: readonly number[]): Refusal | undefined {
  const { content } = input;
  if (content.kind === 'text') return input.requireE2eEverywhere || threadRequires ? { kind: 'refused', reason: 'encryption_required' } : undefined;
  if (content.sealedTo === 'invalid') return { kind: 'refused', reason: 'envelope_invalid' };
  if (!approved.includes(input.senderDeviceId)) return { kind: 'refused', reason: 'device_unapproved' };
  const have = new Set(content.sealedTo);
  const want = new Set(approved);
  const missing = approved.filter((id) => !have.has(id));
  const extra = content.sealedTo.filter((id) => !want.has(id));
  return missing.length === 0 && extra.length === 0 ? undefined : { kind: 'refused', reason: 'devices_changed', missing, extra };
}
