import type { MessageJson } from '../protocol/frames.js';
import type { E2eSession } from './e2e.js';
import type { ClientMessage } from './e2e-types.js';

/**
 * Opening an edit made in an end-to-end encrypted thread (sealed-edit.ts):
 * its envelope is bound to the edited message's client_msg_id, so the target
 * must be known first, and its author must be the edit's (the server enforces
 * that too; a client checks it does not have to trust it).
 */

/** The edited message's id, for an e2e edit change message; undefined for anything else. */
export function editedBy(message: MessageJson): number | undefined {
  return message.kind === 'e2e' && message.change?.type === 'edit' ? message.change.message_id : undefined;
}

type Target = Pick<MessageJson, 'client_msg_id' | 'sender_id'>;

/**
 * An edit of a message deleted for everyone since: the server erased its body
 * (docs/protocol.md, "Change messages"). There is nothing to open, and nothing
 * forged: it is given as it came (applyChange ignores it; the delete that
 * follows carries the state).
 */
export function isErasedEdit(message: MessageJson): boolean {
  return message.change?.type === 'edit' && message.body === null;
}

/** Opens it now when the target and the sender's keys are at hand; undefined: it must wait (`openEdit`). */
export function openEditNow(e2e: E2eSession, message: MessageJson, target: Target | undefined): ClientMessage | undefined {
  if (isErasedEdit(message)) return message;
  if (!target) return undefined;
  return refused(message, target) ?? e2e.openNow(message, target);
}

/** Opens it, the target found by `findTarget` (a cached copy, or the server's `jump`): `undecryptable` without one. */
export async function openEdit(e2e: E2eSession, message: MessageJson, findTarget: () => Promise<Target | undefined>): Promise<ClientMessage> {
  if (isErasedEdit(message)) return message;
  const target = await findTarget();
  if (!target) return { ...message, e2e: { status: 'undecryptable', fingerprint: undefined } };
  return refused(message, target) ?? e2e.open(message, target);
}

/** An edit by someone else than the author is taken for a forgery. */
function refused(message: MessageJson, target: Target): ClientMessage | undefined {
  return message.sender_id === target.sender_id ? undefined : { ...message, e2e: { status: 'bad_signature', fingerprint: undefined } };
}
