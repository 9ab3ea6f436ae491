import { ChatError } from '../errors.js';
import type { HistoryAnchor, HistoryStorage } from '../storage/ports/history.js';
import type { Message, Principal } from './types.js';

export interface HistorySettings {
  /** Most messages in one page of history or of one thread's sync. */
  readonly pageMax: number;
}

export interface HistoryDeps {
  readonly storage: HistoryStorage;
  readonly settings: HistorySettings;
}

export interface HistoryPage {
  readonly threadId: number;
  readonly messages: Message[];
  readonly hasMoreBefore: boolean;
  readonly hasMoreAfter: boolean;
}

export interface SyncedThread {
  readonly threadId: number;
  /** The last seq the device may see in this thread. */
  readonly lastSeq: number;
  /** Messages after the device's cursor, oldest first, at most a page; `hasMore` asks for another sync or history after the last. */
  readonly messages: Message[];
  readonly hasMore: boolean;
}

/** Reading what was stored: history pages, "jump to message", and the catch-up sync by cursors. */
export class HistoryService {
  constructor(private readonly deps: HistoryDeps) {}

  async history(principal: Principal, threadId: number, anchor: HistoryAnchor, limit: number): Promise<HistoryPage> {
    const size = Math.min(Math.max(1, limit), this.deps.settings.pageMax);
    const page = await this.deps.storage.page({ userId: principal.user.id, threadId, anchor, size });
    // A thread the user was never in is indistinguishable from one that does not exist.
    if (!page) throw new ChatError('not_found', `no thread ${threadId}`);
    // From the rows such a page would hold, not from seqs: change rows and hidden messages are no more.
    return { threadId, messages: page.messages, hasMoreBefore: page.moreBefore, hasMoreAfter: page.moreAfter };
  }

  /** The seq of a message the caller may see, for "jump to message". */
  async seqOfMessage(principal: Principal, messageId: number): Promise<{ threadId: number; seq: number }> {
    const found = await this.deps.storage.locate(principal.user.id, messageId);
    // A message in a thread the caller cannot see is answered like one that does not exist.
    if (!found || found.seq <= found.from || found.seq > found.to) throw new ChatError('not_found', `no message ${messageId}`);
    return { threadId: found.threadId, seq: found.seq };
  }

  /**
   * What the device lacks, thread by thread. `cursors` are the device's own
   * (thread id → highest seq it has); threads it does not mention start from the
   * server's record of its acks. Clears the inbox-overflow flag: this is the
   * catch-up that flag asked for.
   */
  sync(principal: Principal, cursors: ReadonlyMap<number, number> | undefined): Promise<SyncedThread[]> {
    return this.deps.storage.sync({ userId: principal.user.id, deviceId: principal.deviceId, cursors, pageMax: this.deps.settings.pageMax });
  }
}
