/**
 * Who is connected, across nodes (centrifuge's PresenceManager): a set of
 * connection keys per user. A user is online while their set is not empty.
 * Keys are unique across nodes (the node's id and a counter); the
 * PresenceService also adds a key of its own for a user's grace period after
 * the last connection (so that other nodes show them online meanwhile), kept
 * on its Clock.
 *
 * Every method may be a network round trip: all are async. Calls for one user
 * from one node take effect in call order.
 */
export interface PresenceStore {
  /** Adds a connection key to the user's set (idempotent); resolves to the set's size after. */
  add(userId: number, key: string): Promise<number>;
  /** Removes it (idempotent); resolves to the set's size after: 0 means nobody of the user is connected anywhere. */
  remove(userId: number, key: string): Promise<number>;
  /** Those of `userIds` whose set is not empty. */
  online(userIds: readonly number[]): Promise<Set<number>>;
  /**
   * Removes every key that starts with `prefix` (a node's keys when it stops or
   * is declared dead); resolves to the users left with an empty set.
   */
  removeAll(prefix: string): Promise<number[]>;
}
