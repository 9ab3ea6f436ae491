import type { AccountEvent, AccountEventsStorage } from '../ports/account-events.js';
import type { Store } from '../store.js';
import { toAccountEvent } from './rows.js';

export class SqliteAccountEventsStorage implements AccountEventsStorage {
  constructor(private readonly store: Store) {}

  async changedElsewhere(): Promise<boolean> {
    return this.store.accountEvents.changedElsewhere();
  }

  async accountEventsAfter(afterId: number, limit: number): Promise<AccountEvent[]> {
    return this.store.accountEvents.after(afterId, limit).map(toAccountEvent);
  }

  async latestAccountEventId(): Promise<number> {
    return this.store.accountEvents.latestId();
  }
}
