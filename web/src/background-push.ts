import type { ChatClient } from '../../src/client/browser.js';
import type { OpenThreadMessage } from './sw.js';

/**
 * Background notifications with Web Push: once the user has allowed
 * notifications, the page registers the service worker (/sw.js), subscribes
 * with the server's VAPID key and hands the subscription to the server as this
 * device's push token (`push_register`, platform `webpush`). The server then
 * pushes while no tab is connected; the worker shows the notification and a
 * click opens the chat (the worker tells an open tab, see `onOpenThread`).
 *
 * When the browser cannot subscribe (no push service it can reach, a page
 * that is not a secure context), the state says so and the page's own
 * notifications (attention.ts) keep working while a tab is open.
 */
export type BackgroundPushState =
  | { readonly kind: 'off' }
  | { readonly kind: 'starting' }
  | { readonly kind: 'on' }
  /** `why` completes "not available in this browser: …". */
  | { readonly kind: 'unavailable'; readonly why: string }
  | { readonly kind: 'server_off' };

/** The subscription as the browser gives it (PushSubscription.toJSON()). */
interface SubscriptionJson {
  readonly endpoint?: string;
  readonly keys?: Record<string, string>;
}

/**
 * Test-only injection point: when an init script defines it, the page uses
 * its subscription instead of pushManager.subscribe (headless Chromium
 * reaches no push service). Nothing in the app defines it.
 */
declare global {
  interface Window {
    chatdTestSubscription?: (applicationServerKey: string) => Promise<SubscriptionJson>;
  }
}

/** A browser that reaches no push service may never settle subscribe(): give up after this long. */
const SUBSCRIBE_TIMEOUT_MS = 20_000;
/** Logging out waits at most this long for the server to forget the subscription (the logout revokes it anyway). */
const UNREGISTER_TIMEOUT_MS = 3_000;

export class BackgroundPush {
  state: BackgroundPushState = { kind: 'off' };
  private running: Promise<void> | undefined;

  constructor(
    private readonly client: ChatClient,
    private readonly changed: () => void,
  ) {}

  /** Whether this browser could take background notifications at all (a secure page with service workers and push). */
  static supported(): boolean {
    return window.isSecureContext && 'serviceWorker' in navigator && 'PushManager' in window;
  }

  /**
   * Registers the worker and the subscription; called when permission is
   * granted and at each start while it is (a subscription the browser
   * renewed reaches the server). Never throws: failures become the state.
   */
  start(): Promise<void> {
    if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return Promise.resolve();
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  /** The worker tells an open tab which chat a clicked notification was for. */
  onOpenThread(open: (threadId: number) => void): () => void {
    if (!('serviceWorker' in navigator)) return () => {};
    const listener = (event: MessageEvent): void => {
      const data = event.data as Partial<OpenThreadMessage> | null;
      if (data?.type === 'chatd-open-thread' && typeof data.thread_id === 'number') {
        window.focus();
        open(data.thread_id);
      }
    };
    navigator.serviceWorker.addEventListener('message', listener);
    return () => navigator.serviceWorker.removeEventListener('message', listener);
  }

  /** Logout: the server and the browser forget the subscription (each bounded: logging out must not hang on it). */
  async stop(): Promise<void> {
    if (this.state.kind === 'on') await withTimeout(this.client.unregisterPush(), UNREGISTER_TIMEOUT_MS).catch(() => {});
    if (!('serviceWorker' in navigator)) return;
    const registration = await navigator.serviceWorker.getRegistration('/').catch(() => undefined);
    const subscription = await registration?.pushManager.getSubscription().catch(() => null);
    await subscription?.unsubscribe().catch(() => false);
    await navigator.setAppBadge?.(0).catch(() => {});
  }

  /** Closes the worker's notifications of a chat (it was opened here). */
  async closeNotifications(threadId: number): Promise<void> {
    if (!('serviceWorker' in navigator)) return;
    const registration = await navigator.serviceWorker.getRegistration('/').catch(() => undefined);
    for (const notification of (await registration?.getNotifications({ tag: `chatd-thread-${threadId}` }).catch(() => [])) ?? []) notification.close();
  }

  private async run(): Promise<void> {
    if (!BackgroundPush.supported()) {
      return this.set({ kind: 'unavailable', why: window.isSecureContext ? 'it has no push support' : 'they need a secure page (https://)' });
    }
    this.set({ kind: 'starting' });
    try {
      const key = await this.serverKey();
      if (key === undefined) return this.set({ kind: 'server_off' });
      const registration = await navigator.serviceWorker.register('/sw.js');
      let subscription: SubscriptionJson;
      try {
        subscription = await withTimeout(this.subscribe(registration, key), SUBSCRIBE_TIMEOUT_MS);
      } catch (error) {
        return this.set({ kind: 'unavailable', why: `it could not subscribe to a push service (“${messageOf(error)}”)` });
      }
      await this.client.registerPush({ platform: 'webpush', token: JSON.stringify(subscription) });
      this.set({ kind: 'on' });
    } catch (error) {
      // The server refused the subscription, or the worker did not register: say so rather than pretend.
      this.set({ kind: 'unavailable', why: `they could not be set up (“${messageOf(error)}”)` });
    }
  }

  /** The server's VAPID public key, or undefined when it sends no Web Push (webpush.enabled = false). */
  private async serverKey(): Promise<string | undefined> {
    const response = await fetch(new URL('/v1/push/webpush', location.origin));
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`the server answered ${response.status} for its push key`);
    const { public_key: key } = (await response.json()) as { public_key?: unknown };
    if (typeof key !== 'string' || key === '') throw new Error('the server sent no push key');
    return key;
  }

  private async subscribe(registration: ServiceWorkerRegistration, key: string): Promise<SubscriptionJson> {
    if (window.chatdTestSubscription) return window.chatdTestSubscription(key);
    await navigator.serviceWorker.ready;
    const existing = await registration.pushManager.getSubscription();
    // A subscription made with another key (the server's keys were replaced) cannot be pushed to: make a new one.
    if (existing && sameKey(existing.options.applicationServerKey, key)) return existing.toJSON();
    await existing?.unsubscribe();
    const made = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    return made.toJSON();
  }

  private set(state: BackgroundPushState): void {
    this.state = state;
    this.changed();
  }
}

function sameKey(current: ArrayBuffer | null, key: string): boolean {
  if (!current) return false;
  const bytes = new Uint8Array(current);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') === key.replace(/=+$/, '');
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer from the push service')), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
