/**
 * A message's reactions (messages.reactions, JSON text) and one user's toggle
 * of one emoji on them: the one rule, pure, in storage/ports so that every
 * engine rewrites the JSON the same way inside its unit (SQLite: the writer
 * is alone; PostgreSQL: under the target row's lock), which is what makes
 * concurrent toggles aggregate.
 */

/** One emoji on a message and who reacted with it, in the order they did. */
export interface Reaction {
  readonly emoji: string;
  readonly user_ids: readonly number[];
}

export type ToggleResult =
  /** The reaction is already so (on and there, or off and absent): nothing to store. */
  | { readonly kind: 'unchanged' }
  /** Turning it on would give the user more than `maxPerUser` distinct emoji on the message. */
  | { readonly kind: 'too_many' }
  /** The new reactions: compact JSON text in first-reacted order, null for none left. */
  | { readonly kind: 'changed'; readonly json: string | null };

/**
 * `json` as stored (null: none). On: the user joins the emoji's list (a new
 * emoji goes last); off: the user leaves it, and an emoji nobody reacts with
 * any more goes.
 */
export function toggleReaction(json: string | null, userId: number, emoji: string, on: boolean, maxPerUser: number): ToggleResult {
  const reactions = json === null ? [] : (JSON.parse(json) as Reaction[]);
  const index = reactions.findIndex((reaction) => reaction.emoji === emoji);
  const current = reactions[index];
  const has = current !== undefined && current.user_ids.includes(userId);
  if (has === on) return { kind: 'unchanged' };
  let next: Reaction[];
  if (on) {
    const mine = reactions.filter((reaction) => reaction.user_ids.includes(userId)).length;
    if (mine >= maxPerUser) return { kind: 'too_many' };
    next = current === undefined ? [...reactions, { emoji, user_ids: [userId] }] : reactions.map((r, i) => (i === index ? { emoji, user_ids: [...r.user_ids, userId] } : r));
  } else {
    next = reactions
      .map((r, i) => (i === index ? { emoji, user_ids: r.user_ids.filter((id) => id !== userId) } : r))
      .filter((reaction) => reaction.user_ids.length > 0);
  }
  return { kind: 'changed', json: next.length === 0 ? null : JSON.stringify(next) };
}
