import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContextOptions, type Locator, type Page, chromium } from 'playwright-core';

/**
 * What the Chromium tests (test/integration/web*.test.ts) share: finding and
 * launching Chromium, and the steps on the page every such test takes
 * (sign in or register, start a chat, say something, open a thread).
 * Everything takes its browser, page and origin as arguments: each test file
 * keeps its own server and browser, and nothing here holds state.
 */

/** The Chromium binary, or undefined where none is installed (the tests then skip). */
export const CHROMIUM: string | undefined = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));

/** For describe(…, { skip }): false, or why the Chromium tests cannot run here. */
export const skipWithoutChromium: false | string = CHROMIUM ? false : 'Chromium is not installed (apt-get install chromium; .ci/run does it)';

/** Where the tests leave their screenshots (the repository's artifacts/ folder, kept by CI). */
export const ARTIFACTS = fileURLToPath(new URL('../../artifacts/', import.meta.url));

/** Headless in a container (no sandbox, no GPU, small /dev/shm), and nothing that talks to the network on its own. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions'];

/** Launches headless Chromium with the shared arguments, plus `extraArgs` (a test's own switches). */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/**
 * Opens `origin` on `page` and submits the account form as `username`: registering (the page's
 * "Create one" link first) or logging in. Does not wait for the result: see waitOnline.
 */
export async function submitAccount(page: Page, origin: string, username: string, mode: 'register' | 'login'): Promise<void> {
  await page.goto(origin);
  if (mode === 'register') await page.getByRole('button', { name: 'No account yet? Create one' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill('correct horse');
  await page.getByRole('button', { name: mode === 'register' ? 'Create account' : 'Log in' }).click();
}

/** Waits until the page's connection badge says Online. */
export async function waitOnline(page: Page): Promise<void> {
  await page.getByTestId('connection').filter({ hasText: 'Online' }).waitFor();
}

/**
 * Waits until this device has its keys made and published: a chat started with this person is then
 * encrypted, never by the luck of timing.
 */
export async function waitForKeys(page: Page): Promise<void> {
  await page.locator('.shell[data-standing=created]').waitFor();
}

/** Registers `username` on `page` through the form at `origin`, and waits until online with keys published. */
export async function register(page: Page, origin: string, username: string): Promise<void> {
  await submitAccount(page, origin, username, 'register');
  await waitOnline(page);
  await waitForKeys(page);
}

/**
 * A fresh browser profile (a new context of `browser`, with `contextOptions`) on the chat screen at
 * `origin`, logged in (or registered first) as `username` and online. Steps time out after 20 s.
 */
export async function onChatScreen(browser: Browser, origin: string, username: string, mode: 'register' | 'login', contextOptions: BrowserContextOptions): Promise<Page> {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  await submitAccount(page, origin, username, mode);
  await waitOnline(page);
  return page;
}

/**
 * Starts a chat with `username` from the New chat dialog and waits for the open chat's heading; with
 * `named`, for the heading that names `username` (some files' callers wait for any heading).
 */
export async function startChat(page: Page, username: string, options: { named?: boolean } = {}): Promise<void> {
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByLabel('Username to chat with').fill(username);
  await page.getByRole('button', { name: 'Start' }).click();
  await page.getByRole('heading', options.named ? { level: 2, name: username } : { level: 2 }).waitFor();
}

/** Opens the thread titled `title` from the list and waits for its heading. */
export async function openChat(page: Page, title: string): Promise<void> {
  await page.locator('.thread-item', { hasText: title }).click();
  await page.getByRole('heading', { level: 2, name: title }).waitFor();
}

/** Types `text` in the open chat and sends it with Enter (does not wait for it to show). */
export async function say(page: Page, text: string): Promise<void> {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.keyboard.press('Enter');
}

/** The body of the open chat's message whose text contains `text`. */
export function messageBody(page: Page, text: string): Locator {
  return page.locator('.messages .message .body', { hasText: text });
}

/**
 * Opens the thread titled `title` once `text` (its newest message) has reached the page, shown as the list's
 * preview. The first message a page receives also brings the offer of notifications, a banner over the whole
 * screen that moves the list down: a click on a thread made while it appears can end elsewhere, and the thread
 * stays closed.
 */
export async function openOnArrival(page: Page, title: string, text: string): Promise<void> {
  const item = page.locator('.thread-item', { hasText: title });
  await item.locator('.preview', { hasText: text }).waitFor();
  await item.click();
}

/**
 * An init script (context.addInitScript({ content })) that runs in the page before its scripts. Headless
 * Chromium never hides a page, so it makes document.visibilityState switchable by the test
 * (window.setHiddenForTest(hidden), with the visibilitychange event the browser would send), and it records
 * each Notification the page creates in window.notificationsForTest (still creating the real one): title,
 * body and tag, and with `keepInstance` the Notification itself (to click it). A string: the tests are
 * type-checked without the DOM's types.
 */
export function backgroundableScript(options: { keepInstance?: boolean } = {}): string {
  const instance = options.keepInstance ? ', instance: this' : '';
  return `
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
      notifications.push({ title, body: options && options.body, tag: options && options.tag${instance} });
    }
  };
})();
`;
}
