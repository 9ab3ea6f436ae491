import { HistoryService } from '../../src/services/history.js';
import { MessagingService } from '../../src/services/messaging.js';
import { ThreadService } from '../../src/services/threads.js';
import type { Principal } from '../../src/services/types.js';
import { FakeClock } from './fake-clock.js';
import { RecordingFanout } from './recording-fanout.js';
import { seededAttachments } from './seeded-attachments.js';
import { openSqliteMessaging } from './sqlite-messaging.js';

export interface WorldOptions {
  readonly readDiffusionAbove?: number;
  readonly maxGroupMembers?: number;
  readonly requireE2e?: boolean;
  readonly push?: boolean;
  /** attachments.enabled (default true). */
  readonly attachments?: boolean;
}

/** The message path's services in process: SQLite in memory, a FakeClock, a recording Fanout, no sockets. */
export async function serviceWorld(options: WorldOptions = {}) {
  const fixture = await openSqliteMessaging({ readDiffusionAbove: options.readDiffusionAbove ?? 50 });
  const clock = new FakeClock();
  const fanout = new RecordingFanout();
  const push = { apns: options.push === true, fcm: false };
  const base = { maxMessages: 1000, readDiffusionAbove: options.readDiffusionAbove ?? 50, push, requireE2e: options.requireE2e === true };
  const attachments = seededAttachments(fixture.store);
  const messaging = new MessagingService({
    storage: fixture.messaging,
    attachments,
    clock,
    fanout,
    pushes: fanout,
    sendBudget: { spend: () => {} },
    settings: { ...base, maxBodyBytes: 4096, attachmentsEnabled: options.attachments !== false },
  });
  const history = new HistoryService({ storage: fixture.history, settings: { pageMax: 100 } });
  const threads = new ThreadService({ storage: fixture.threads, clock, fanout, settings: { ...base, maxGroupMembers: options.maxGroupMembers ?? 10 } });
  const principal = async (name: string): Promise<Principal> => {
    const userId = await fixture.user(name);
    return { user: { id: userId, username: name, displayName: name }, deviceId: await fixture.device(userId) };
  };
  return { fixture, clock, fanout, messaging, history, threads, principal, attachments };
}
