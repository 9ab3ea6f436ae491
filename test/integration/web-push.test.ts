import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, backgroundableScript, launchChromium, register, say, skipWithoutChromium, startChat as startChatWith } from '../helpers/browser.js';
import { signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { PushService } from '../helpers/push-service.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { connectAuthenticated } from '../helpers/ws.js';

/**
 * Background notifications in the web client (issue 22, Web Push) in
 * headless Chromium against the real server, which pushes to a local HTTPS
 * push service (test/helpers/push-service.ts) that decrypts what it gets.
 *
 * What headless Chromium can and cannot do here, and how the test gets
 * round it:
 * - Its contexts are incognito-like: pushManager.subscribe() fails at once
 *   ("Registration failed - permission denied"; it reaches no push service
 *   anyway). That is the refusal the settings must report. The rest uses a
 *   test-only injection point of the page (window.chatdTestSubscription, set
 *   by an init script) that stands in for subscribe() with a subscription at
 *   the local push service (a P-256 key and an auth secret, as a browser
 *   makes them).
 * - The push service cannot reach the browser: the payload it decrypted is
 *   handed to the service worker through CDP
 *   (ServiceWorker.deliverPushMessage), so the worker's real `push` handler
 *   runs on what the server sent; its notifications are read back with
 *   registration.getNotifications().
 * - Notifications have no window to click in headless Chromium: the click is
 *   a NotificationEvent dispatched inside the worker (Playwright's
 *   serviceWorker.evaluate) to its real `notificationclick` handler. A
 *   dispatched event is not a user gesture, so the worker may not focus a
 *   tab or open a window: the path tested is an open tab told by message.
 */

const skip = skipWithoutChromium;

/** A switchable visibility and a record of the page's notifications. */
const BACKGROUNDABLE = backgroundableScript();

describe('the web client takes background notifications (Web Push)', { skip, timeout: 240_000 }, () => {
  let browser: Browser;
  let server: ServerProcess;
  let pushService: PushService;
  /** Per page, the WebSocket frames it sent (text). */
  const frames = new Map<Page, string[]>();
  const framesOf = (page: Page): string[] => frames.get(page) ?? [];
  function recordFrames(page: Page): void {
    const sent: string[] = [];
    frames.set(page, sent);
    page.on('websocket', (socket) => socket.on('framesent', (frame) => sent.push(String(frame.payload))));
  }

  before(async () => {
    const dir = tempDir();
    pushService = await PushService.start(dir);
    server = await startServer(
      [
        '--data',
        join(dir, 'data'),
        '--config',
        writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n[push]\nretry_base_ms = 20\n[webpush]\nallowed_hosts = "127.0.0.1"\n'),
      ],
      // The server trusts the local push service's self-signed certificate.
      { env: { NODE_EXTRA_CA_CERTS: pushService.certFile } },
    );
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    await pushService?.close();
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
    recordFrames(page);
    await register(page, server.url, username);
    return page;
  }

  /** Starts a chat with `username` and returns its thread's id (from the page's address). */
  async function startChat(page: Page, username: string): Promise<number> {
    await startChatWith(page, username);
    return Number(/#thread-(\d+)$/.exec(page.url())?.[1]);
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

  it('a subscription is registered as a webpush token; the server\'s pushes, shown by the worker, carry no plaintext for an encrypted chat; a click opens the chat; logout unregisters', async () => {
    const subscriber = pushService.browser();
    const carol = await person('carol');
    // Dave allows notifications from settings: that is when the worker registers and the subscription is made
    // (the stand-in for subscribe() gives the push service's subscription).
    let dave = await person('dave', { subscription: subscriber.subscription });
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

    // Carol's chat with dave is end-to-end encrypted (both are web devices); erin (no encryption keys) writes in plain.
    const threadId = await startChat(carol, 'dave');
    await say(carol, 'hello dave');
    await dave.locator('.thread-item', { hasText: 'carol' }).waitFor();
    const erin = await signUp(server.url, 'erin');
    const erinSocket = (await connectAuthenticated(server.wsUrl, erin.token)).socket;
    const daveId = (await dave.evaluate("JSON.parse(localStorage.getItem('chatd.session')).user.id")) as number;
    const plainThread = (await erinSocket.expect({ type: 'direct_open', user_id: daveId }, 'thread')).thread.id as number;

    // Dave closes chatd: what comes now is pushed by the server to the push service, which decrypts it here.
    const daveToken = await token(dave);
    await dave.close();
    await say(carol, 'the secret plans');
    erinSocket.send({ type: 'send', id: 'e1', thread_id: plainThread, client_msg_id: 'e1', kind: 'text', body: { text: 'lunch at noon?' } });
    const deliveries = await pushService.waitForDeliveries(2);
    const encrypted = deliveries.find((d) => d.payload.thread_id === threadId);
    const plain = deliveries.find((d) => d.payload.thread_id === plainThread);
    assert.ok(encrypted && plain, `one push per chat: ${deliveries.map((d) => d.plaintext).join(' | ')}`);
    assert.equal(encrypted.payload.body, 'New message');
    assert.equal(encrypted.payload.title, undefined);
    assert.doesNotMatch(encrypted.plaintext, /secret|plans|carol/, 'no plaintext for an encrypted chat');
    assert.equal(plain.payload.title, 'erin');
    assert.equal(plain.payload.body, 'lunch at noon?');
    erinSocket.close();

    // The pushes reach dave's worker (CDP stands in for the push service's delivery to the browser): it shows what came.
    dave = await dave.context().newPage();
    dave.setDefaultTimeout(20_000);
    recordFrames(dave);
    await dave.goto(server.url);
    await dave.getByTestId('connection').filter({ hasText: 'Online' }).waitFor();
    await deliverPush(dave, encrypted.payload);
    await deliverPush(dave, plain.payload);
    const shown = await workerNotifications(dave, 2);
    const byThread = (id: number) => shown.find((n) => (n.data as { thread_id?: number } | null)?.thread_id === id);
    assert.deepEqual(
      { title: byThread(threadId)?.title, body: byThread(threadId)?.body, tag: byThread(threadId)?.tag },
      { title: 'chatd', body: 'New message', tag: `chatd-thread-${threadId}` },
      'the worker adds nothing to an encrypted chat\'s push',
    );
    assert.deepEqual(
      { title: byThread(plainThread)?.title, body: byThread(plainThread)?.body, tag: byThread(plainThread)?.tag },
      { title: 'erin', body: 'lunch at noon?', tag: `chatd-thread-${plainThread}` },
    );

    // The click: the worker's notificationclick handler, with the chat list on screen: the tab opens the chat,
    // decrypted as usual, and the clicked notification is gone.
    assert.equal(await dave.getByRole('heading', { level: 2 }).count(), 0);
    const worker = dave.context().serviceWorkers().find((w) => w.url() === `${server.url}/sw.js`) ?? (await dave.context().waitForEvent('serviceworker'));
    await worker.evaluate(`self.registration.getNotifications({ tag: 'chatd-thread-${threadId}' }).then(([n]) => { self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n })); })`);
    await dave.getByRole('heading', { name: 'carol' }).waitFor();
    await dave.locator('.messages .message .body', { hasText: 'the secret plans' }).waitFor();
    assert.match(dave.url(), new RegExp(`#thread-${threadId}$`));
    const left = await workerNotifications(dave, 1);
    assert.equal(left[0]?.tag, `chatd-thread-${plainThread}`);

    // Logout: push_unregister goes (and is answered) before the token is revoked.
    const before = framesOf(dave).length;
    await dave.getByRole('button', { name: 'Log out' }).first().click();
    await dave.getByRole('button', { name: 'Log in' }).waitFor();
    const sent = framesOf(dave).slice(before).map((text) => JSON.parse(text) as { type?: string });
    assert.ok(sent.some((frame) => frame.type === 'push_unregister'), `push_unregister was sent: ${JSON.stringify(sent.map((f) => f.type))}`);
    const gone = await fetch(`${server.url}/v1/me/push`, { headers: { authorization: `Bearer ${daveToken}` } });
    assert.equal(gone.status, 401, 'the device was logged out');
  });
});
