import type { AppendOutcome, SendContent } from '../ports/messaging.js';
import type { Store } from '../store.js';

type Refusal = AppendOutcome & { kind: 'refused' };

/**
 * Why this content may not go into the thread: plaintext where encryption is
 * required; an envelope not sealed to exactly the thread's approved devices.
 * The one check for a send and for an edit (an E2E edit is sealed like a send).
 */
export function contentRefusal(
  store: Pick<Store, 'keys'>,
  input: { readonly threadId: number; readonly senderDeviceId: number; readonly requireE2eEverywhere: boolean },
  content: SendContent,
  threadRequires: boolean,
): Refusal | undefined {
  if (content.kind === 'text') return input.requireE2eEverywhere || threadRequires ? { kind: 'refused', reason: 'encryption_required' } : undefined;
  if (content.sealedTo === 'invalid') return { kind: 'refused', reason: 'envelope_invalid' };
  const required = store.keys.threadDevices(input.threadId);
  if (!required.includes(input.senderDeviceId)) return { kind: 'refused', reason: 'device_unapproved' };
  const have = new Set(content.sealedTo);
  const want = new Set(required);
  const missing = required.filter((id) => !have.has(id));
  const extra = content.sealedTo.filter((id) => !want.has(id));
  return missing.length === 0 && extra.length === 0 ? undefined : { kind: 'refused', reason: 'devices_changed', missing, extra };
}

/** Mentions must name current members of the thread: the first that is not, refused. No read without mentions. */
export function mentionRefusal(store: Pick<Store, 'messages'>, threadId: number, mentions: readonly number[] | undefined): Refusal | undefined {
  if (mentions === undefined || mentions.length === 0) return undefined;
  const userId = store.messages.firstNonMember(threadId, mentions);
  return userId === undefined ? undefined : { kind: 'refused', reason: 'mention_not_member', userId };
}

/** The mentions column: JSON text, or null for none. */
export function mentionsJson(mentions: readonly number[] | undefined): string | null {
  return mentions === undefined || mentions.length === 0 ? null : JSON.stringify(mentions);
}
