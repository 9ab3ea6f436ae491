import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type Browser, type Page, chromium } from 'playwright-core';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/**
 * Background notifications in the web client (issue 22, Web Push) in
 * headless Chromium against the real server.
 *
 * What headless Chromium can and cannot do here, and how the test gets
 * round it:
 * - Its contexts are incognito-like: pushManager.subscribe() fails at once
 *   ("Registration failed - permission denied"; it reaches no push service
 *   anyway). That is the refusal the settings must report. The rest uses a
 *   test-only injection point of the page (window.chatdTestSubscription, set
 *   by an init script) that stands in for subscribe() with a subscription
 *   made here (a P-256 key and an auth secret, as a browser makes them).
 * - A push reaches the service worker through CDP
 *   (ServiceWorker.deliverPushMessage): the worker's real `push` handler
 *   runs and shows the notification, read back with
 *   registration.getNotifications().
 * - Notifications have no window to click in headless Chromium: the click is
 *   a NotificationEvent dispatched inside the worker (Playwright's
 *   serviceWorker.evaluate) to its real `notificationclick` handler. A
 *   dispatched event is not a user gesture, so the worker may not focus a
 *   tab or open a window: the path tested is an open tab told by message.
 */

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));
const ARTIFACTS = fileURLToPath(new URL('../../artifacts/', import.meta.url));
const skip = CHROMIUM ? false : 'Chromium is not installed (apt-get install chromium; .ci/run does it)';

/** A switchable visibility and a record of the page's own notifications (as in web-catchup.test.ts). */
const BACKGROUNDABLE = `
(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => hidden });
  window.setHiddenForTest = (value) => {
    hidden = value;
    document.dispatchEvent(new Event('visibilitychange'));
  };
  const notifications = [];
  window.notificationsForTest = notifications;
  const Real = window.Notification;
  window.Notification = class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      notifications.push({ title, body: options && options.body, tag: options && options.tag });
    }
  };
})();
`;

/** What a browser's PushSubscription.toJSON() gives, with keys made as a browser makes them. */
function fakeSubscription(): { endpoint: string; keys: { p256dh: string; auth: string } } {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return {
    endpoint: `https://127.0.0.1:9/push/${randomBytes(12).toString('base64url')}`,
    keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
  };
}

describe('the web client takes background notifications (Web Push)', { skip, timeout: 240_000 }, () => {
  let browser: Browser;
  let server: ServerProcess;
  /** Per page, the WebSocket frames it sent (text). */
  const frames = new Map<Page, string[]>();
  const framesOf = (page: Page): string[] => frames.get(page) ?? [];

  before(async () => {
    const dir = tempDir();
    server = await startServer([
      '--data',
      join(dir, 'data'),
      '--config',
      writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n[webpush]\nallowed_hosts = "127.0.0.1"\n'),
    ]);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions'],
    });
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function person(username: string, options: { notifications?: boolean; subscription?: object } = {}): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    if (options.notifications) await context.grantPermissions(['notifications'], { origin: server.url });
    await context.addInitScript({ content: BACKGROUNDABLE });
    if (options.subscription) {
      const json = JSON.stringify(options.subscription);
      await context.addInitScript({ content: `window.chatdTestSubscription = async (key) => { window.subscribedWithKeyForTest = key; return ${json}; };` });
    }
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    const sent: string[] = [];
    frames.set(page, sent);
    page.on('websocket', (socket) => socket.on('framesent', (frame) => sent.push(String(frame.payload))));
    await page.goto(server.url);
    await page.getByRole('button', { name: 'No account yet? Create one' }).click();
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill('correct horse');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByTestId('connection').filter({ hasText: 'Online' }).waitFor();
    await page.locator('.shell[data-standing=created]').waitFor();
    return page;
  }

  async function startChat(page: Page, username: string): Promise<number> {
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByLabel('Username to chat with').fill(username);
    await page.getByRole('button', { name: 'Start' }).click();
    await page.getByRole('heading', { level: 2 }).waitFor();
    return Number(/#thread-(\d+)$/.exec(page.url())?.[1]);
  }

  async function say(page: Page, text: string): Promise<void> {
    await page.getByLabel('Message', { exact: true }).fill(text);
    await page.keyboard.press('Enter');
  }

  async function openSettings(page: Page): Promise<void> {
    await page.getByRole('button', { name: 'Settings' }).click();
  }

  const token = (page: Page) => page.evaluate("JSON.parse(localStorage.getItem('chatd.session')).token") as Promise<string>;

  async function pushRegistration(page: Page): Promise<unknown> {
    const response = await fetch(`${server.url}/v1/me/push`, { headers: { authorization: `Bearer ${await token(page)}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as { push: unknown }).push;
  }

  /** The page's service worker registration, once its worker is active. */
  async function activeWorker(page: Page): Promise<string> {
    return (await page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.scriptURL)")) as string;
  }

  /** The notifications the service worker shows, once there are `count`. */
  async function workerNotifications(page: Page, count: number): Promise<Array<{ title: string; body: string; tag: string; data: unknown }>> {
    const handle = await page.waitForFunction(
      `navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((ns) => ns.length === ${count} ? ns.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })) : null)`,
    );
    return (await handle.jsonValue()) as Array<{ title: string; body: string; tag: string; data: unknown }>;
  }

  /** Delivers `payload` to the page's service worker as a push would (CDP), running its real `push` handler. */
  async function deliverPush(page: Page, payload: object): Promise<void> {
    const cdp = await page.context().newCDPSession(page);
    const registrations: Array<{ registrationId: string; scopeURL: string; isDeleted: boolean }> = [];
    const seen = new Promise<void>((resolve) =>
      cdp.on('ServiceWorker.workerRegistrationUpdated', (event: { registrations: typeof registrations }) => {
        registrations.push(...event.registrations);
        if (registrations.some((r) => !r.isDeleted && r.scopeURL === `${server.url}/`)) resolve();
      }),
    );
    await cdp.send('ServiceWorker.enable');
    await seen;
    const registration = registrations.find((r) => !r.isDeleted && r.scopeURL === `${server.url}/`);
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: server.url, registrationId: registration?.registrationId ?? '', data: JSON.stringify(payload) });
    await cdp.detach();
  }

  it('after notifications are allowed the worker registers; a browser that cannot subscribe says so in settings, and notifications in the tab still come', async () => {
    const alice = await person('alice');
    const bob = await person('bob', { notifications: true });
    // The worker is served from the root, as JavaScript, so that its scope is the whole app.
    const sw = await fetch(`${server.url}/sw.js`);
    assert.equal(sw.status, 200);
    assert.match(sw.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal(await activeWorker(bob), `${server.url}/sw.js`);

    await openSettings(bob);
    const state = bob.getByTestId('background-push');
    await state.and(bob.locator('[data-state=unavailable]')).waitFor();
    assert.match((await state.textContent()) ?? '', /^Background notifications are not available in this browser: it could not subscribe to a push service \(“.+”\)\. Notifications still come while chatd is open in a tab\.$/);
    assert.equal(await pushRegistration(bob), null, 'no subscription was registered');
    mkdirSync(ARTIFACTS, { recursive: true });
    await state.scrollIntoViewIfNeeded();
    await bob.screenshot({ path: join(ARTIFACTS, 'web-push-unavailable.png') });

    // In-tab notifications are unaffected.
    await startChat(alice, 'bob');
    await bob.evaluate('window.setHiddenForTest(true)');
    await say(alice, 'still here?');
    await bob.waitForFunction("window.notificationsForTest.some((n) => n.body === 'still here?')");
  });

  it('a subscription is registered as a webpush token; a push shows its notification, a click opens the chat; logout unregisters', async () => {
    const subscription = fakeSubscription();
    const carol = await person('carol');
    // Dave allows notifications from settings (not in advance): that is when the worker registers and the subscription is made.
    const dave = await person('dave', { subscription });
    assert.equal(await dave.evaluate("navigator.serviceWorker.getRegistration('/').then((r) => r === undefined)"), true, 'no worker before permission');
    await openSettings(dave);
    const turnOn = dave.getByRole('button', { name: 'Turn on notifications' });
    await turnOn.waitFor();
    // The user allows them when the browser asks (headless Chromium does not ask: the grant stands for the answer).
    await dave.context().grantPermissions(['notifications'], { origin: server.url });
    await turnOn.click();
    await dave.getByTestId('background-push').and(dave.locator('[data-state=on]')).waitFor();
    assert.equal(await activeWorker(dave), `${server.url}/sw.js`);
    const key = (await (await fetch(`${server.url}/v1/push/webpush`)).json()) as { public_key: string };
    assert.equal(await dave.evaluate('window.subscribedWithKeyForTest'), key.public_key, 'subscribed with the server key');
    assert.deepEqual(await pushRegistration(dave), { platform: 'webpush', topic: null });

    // A push as the server sends it: the worker shows it (title, body, one tag per chat) with nothing added.
    const threadId = await startChat(carol, 'dave');
    await say(carol, 'hello dave');
    await dave.locator('.thread-item', { hasText: 'carol' }).waitFor();
    // The payload as the server makes it (src/push/content.ts, webPushPayload).
    await deliverPush(dave, { title: 'carol', body: 'hello dave', tag: `thread-${threadId}`, badge: 2, thread_id: threadId, seq: 2, message_id: 2, encrypted: false });
    const [shown] = await workerNotifications(dave, 1);
    assert.equal(shown?.title, 'carol');
    assert.equal(shown?.body, 'hello dave');
    assert.equal(shown?.tag, `chatd-thread-${threadId}`);
    assert.deepEqual(shown?.data, { thread_id: threadId });
    // An encrypted chat's push carries no text and no title: the worker shows what it got, never more.
    await deliverPush(dave, { body: 'New message', tag: `thread-${threadId + 1000}`, badge: 3, thread_id: threadId + 1000, seq: 1, message_id: 9, encrypted: true });
    const both = await workerNotifications(dave, 2);
    const plain = both.find((n) => n.data && (n.data as { thread_id: number }).thread_id === threadId + 1000);
    assert.deepEqual({ title: plain?.title, body: plain?.body, tag: plain?.tag }, { title: 'chatd', body: 'New message', tag: `chatd-thread-${threadId + 1000}` });

    // The click: the worker's notificationclick handler, with the chat list on screen: the tab opens the chat.
    assert.equal(await dave.getByRole('heading', { level: 2 }).count(), 0);
    const worker = dave.context().serviceWorkers().find((w) => w.url() === `${server.url}/sw.js`);
    assert.ok(worker, 'Playwright sees the worker');
    await worker.evaluate(`self.registration.getNotifications({ tag: 'chatd-thread-${threadId}' }).then(([n]) => { self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n })); })`);
    await dave.getByRole('heading', { name: 'carol' }).waitFor();
    await dave.locator('.messages .message .body', { hasText: 'hello dave' }).waitFor();
    assert.match(dave.url(), new RegExp(`#thread-${threadId}$`));
    await workerNotifications(dave, 1); // the clicked one was closed

    // Logout: push_unregister goes (and is answered) before the token is revoked.
    const unregistered = framesOf(dave).length;
    await dave.getByRole('button', { name: 'Log out' }).first().click();
    await dave.getByRole('button', { name: 'Log in' }).waitFor();
    const after = framesOf(dave).slice(unregistered).map((text) => JSON.parse(text) as { type?: string });
    assert.ok(after.some((frame) => frame.type === 'push_unregister'), `push_unregister was sent: ${JSON.stringify(after.map((f) => f.type))}`);
  });
});
