/** What the presence rules need to know of a user, as the viewer stands to them. */
export interface PresenceFacts {
  readonly userId: number;
  /** The user and the viewer are current members of a thread together. */
  readonly sharesThread: boolean;
  /** The user has added the viewer as a contact (sharing their presence with them). */
  readonly addedViewer: boolean;
  readonly deleted: boolean;
  /** The stored last-active time (Unix ms), if any. */
  readonly lastActiveAt: number | null;
}

/**
 * The PresenceService's storage. Reads resolve with committed state; the
 * write is a unit of work resolving after commit (group-committed on SQLite:
 * a reconnect storm must not wait on an fsync per user).
 */
export interface PresenceStorage {
  /** The facts for each of `userIds` that exists (deleted ones included, flagged), in the order asked. */
  facts(viewerId: number, userIds: readonly number[]): Promise<PresenceFacts[]>;
  /** Who may see the user's presence change: the users they added as contacts, and those they share a thread with. */
  audience(userId: number): Promise<{ readonly contacts: number[]; readonly sharingThreads: number[] }>;
  /** Stores the user's last-active time. */
  setLastActive(userId: number, at: number): Promise<void>;
}
