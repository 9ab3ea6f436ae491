import { type ChangeJson, type ClientMessage, applyChange, deletedState } from '../../src/client/browser.js';

/**
 * How a message on screen takes a change (an edit, a delete for everyone, a
 * reaction toggled) that arrived live, by the SDK's own rules (its
 * `applyChange`): pure functions, tested alone. The server's history
 * already gives each message in its latest state; these keep the messages
 * already on screen in step with it without fetching them again.
 */

/**
 * `target` after `change`, made by `by` (the change message: its sender
 * reacted, its body is the edit's new body). A delete needs no `by` (the
 * user's own, shown at once); an edit or reaction without it changes nothing.
 */
export function changedMessage(target: ClientMessage, change: ChangeJson, by: ClientMessage | undefined): ClientMessage {
  if (change.type === 'delete') return deletedState(target);
  return by ? applyChange(target, { ...by, change }) : target;
}

/** Whether `userId` reacted with `emoji`. */
export function reacted(message: Pick<ClientMessage, 'reactions'>, emoji: string, userId: number): boolean {
  return message.reactions?.some((reaction) => reaction.emoji === emoji && reaction.user_ids.includes(userId)) ?? false;
}

/** The text a message shows for its body, or undefined when it has none (files alone, a problem to show instead). */
export function plainText(message: Pick<ClientMessage, 'body'>): string | undefined {
  const text = (message.body as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : undefined;
}
