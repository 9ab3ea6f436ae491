/**
 * The service worker (/sw.js): shows a Web Push notification while no chatd
 * tab is open (or all are in the background), keeps the app badge, and opens
 * the chat when the notification is clicked. It adds nothing to what the
 * server sent: for an encrypted chat the payload carries no plaintext (the
 * server's rule, docs/push.md) and this worker has no keys to open any.
 *
 * Built on its own (scripts/build-web.ts) and served from the root, so that
 * its scope is the whole app. Type-checked with the page's DOM types: the
 * few service-worker types it uses are declared below (the WebWorker and DOM
 * libraries cannot be loaded together).
 */

/** What the worker uses of the server's Web Push payload (src/push/content.ts, WebPushPayload). */
export interface PushPayload {
  readonly title?: string;
  readonly body: string;
  readonly thread_id?: number;
  readonly badge?: number;
  readonly tag?: string;
}

/** What a click tells an open tab (web/src/background-push.ts listens). */
export interface OpenThreadMessage {
  readonly type: 'chatd-open-thread';
  readonly thread_id: number;
}

interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface PushEvent extends ExtendableEvent {
  readonly data: { text(): string } | null;
}
interface NotificationEvent extends ExtendableEvent {
  readonly notification: Notification;
}
interface WindowClient {
  readonly url: string;
  readonly focused: boolean;
  focus(): Promise<WindowClient>;
  postMessage(message: unknown): void;
}
interface WorkerScope {
  readonly registration: ServiceWorkerRegistration;
  readonly clients: {
    matchAll(options: { type: 'window'; includeUncontrolled: boolean }): Promise<WindowClient[]>;
    openWindow(url: string): Promise<WindowClient | null>;
    claim(): Promise<void>;
  };
  readonly navigator: { setAppBadge?(count?: number): Promise<void> };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'push', listener: (event: PushEvent) => void): void;
  addEventListener(type: 'notificationclick', listener: (event: NotificationEvent) => void): void;
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEvent) => void): void;
}

const scope = self as unknown as WorkerScope;

/** The address the web client opens a chat at (web/src/navigation.ts). */
export function threadUrl(threadId: number): string {
  return `/#thread-${threadId}`;
}

/** The payload, or a plain notice when it cannot be read (a push always shows something: browsers require it). */
export function readPayload(text: string | undefined): PushPayload {
  try {
    const data = JSON.parse(text ?? '') as Partial<PushPayload> | null;
    if (data && typeof data === 'object') {
      return {
        title: typeof data.title === 'string' && data.title !== '' ? data.title : undefined,
        body: typeof data.body === 'string' ? data.body : 'New message',
        thread_id: Number.isSafeInteger(data.thread_id) && (data.thread_id as number) > 0 ? data.thread_id : undefined,
        badge: Number.isSafeInteger(data.badge) && (data.badge as number) >= 0 ? data.badge : undefined,
        tag: typeof data.tag === 'string' && data.tag !== '' ? data.tag : undefined,
      };
    }
  } catch {
    // Not JSON: fall through.
  }
  return { body: 'New message' };
}

async function showPush(payload: PushPayload): Promise<void> {
  // One per chat, with the tag the page's own notifications use: a newer message of a chat replaces the older one,
  // whichever showed it, and opening the chat in a tab closes it (background-push.ts).
  const tag = payload.thread_id !== undefined ? `chatd-thread-${payload.thread_id}` : (payload.tag ?? 'chatd');
  await scope.registration.showNotification(payload.title ?? 'chatd', { body: payload.body, tag, data: { thread_id: payload.thread_id } });
  // The app's icon shows the unread count where the system has badges (an installed app); elsewhere nothing happens.
  const { navigator } = scope;
  if (payload.badge === undefined || !navigator.setAppBadge) return;
  await navigator.setAppBadge(payload.badge).catch(() => {});
}

/** A click: the chat opens in a chatd tab that is open (told by message), or in a new one. */
async function openThread(threadId: number | undefined): Promise<void> {
  const tabs = await scope.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const tab = tabs.find((client) => client.focused) ?? tabs[0];
  if (tab) {
    if (threadId !== undefined) tab.postMessage({ type: 'chatd-open-thread', thread_id: threadId } satisfies OpenThreadMessage);
    // Browsers let a worker focus a tab only while handling a notification click.
    await tab.focus().catch(() => {});
    return;
  }
  await scope.clients.openWindow(threadId !== undefined ? threadUrl(threadId) : '/');
}

scope.addEventListener('install', (event) => event.waitUntil(scope.skipWaiting()));
scope.addEventListener('activate', (event) => event.waitUntil(scope.clients.claim()));

scope.addEventListener('push', (event) => {
  event.waitUntil(showPush(readPayload(event.data?.text())));
});

scope.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const threadId = (event.notification.data as { thread_id?: unknown } | null)?.thread_id;
  event.waitUntil(openThread(typeof threadId === 'number' ? threadId : undefined));
});
