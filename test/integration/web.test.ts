import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ARTIFACTS, launchChromium, messageBody as message, openOnArrival, register, say, skipWithoutChromium, startChat } from '../helpers/browser.js';
import { signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { TcpProxy } from '../helpers/proxy.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/**
 * The web client in headless Chromium (Debian's package, which .ci/run
 * installs), against the real server: people register, chat both ways and in
 * a group, see unread badges and ticks, and keep chatting across a server
 * restart. A screenshot of the main screen goes to artifacts/.
 */

const skip = skipWithoutChromium;

describe('the web client in a browser', { skip, timeout: 180_000 }, () => {
  let browser: Browser;
  let server: ServerProcess;
  /** The pages' origin: the server behind it can restart on another port. */
  let proxy: TcpProxy;
  let dir: string;
  const contexts: BrowserContext[] = [];

  const serverArgs = (): string[] => [
    '--data',
    join(dir, 'data'),
    '--config',
    writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n[presence]\noffline_grace_ms = 200\n'),
  ];

  before(async () => {
    dir = tempDir();
    server = await startServer(serverArgs());
    proxy = await TcpProxy.start(server.port);
    browser = await launchChromium(['--disable-quic']);
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.stop();
  });

  /** A fresh browser profile that registers `username` through the page and lands on the chat screen. */
  async function person(username: string, viewport = { width: 1100, height: 700 }): Promise<Page> {
    const context = await browser.newContext({ viewport });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    await register(page, proxy.url, username);
    return page;
  }

  it('a failed log-in says why, and the error goes when the form changes to creating an account', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(proxy.url);
    await page.getByLabel('Username').fill('nobody-here');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'wrong username or password' }).waitFor();
    await page.getByRole('button', { name: 'No account yet? Create one' }).click();
    await page.getByRole('button', { name: 'Create account' }).waitFor();
    assert.equal(await page.getByRole('alert').count(), 0, 'the log-in error is not shown on the account form');
  });

  it('the safety number with someone who never used an encrypting client says so, by name', async () => {
    await signUp(server.url, 'termie');
    const page = await person('keen');
    await startChat(page, 'termie', { named: true });
    await page.getByRole('button', { name: 'Verify safety number' }).click();
    await page.getByTestId('safety-panel').getByText('termie has no device that encrypts yet').waitFor();
  });

  it('two people chat both ways; the unread badge appears and clears; ticks turn to read', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    await startChat(alice, 'bob');
    await say(alice, 'hi bob, it is alice');
    await message(alice, 'hi bob, it is alice').waitFor();
    // Bob has not opened the chat: a badge with 2 on it (the notice that the chat is encrypted counts, as notices do).
    const badge = bob.getByTestId('unread');
    await badge.filter({ hasText: /^2$/ }).waitFor();
    await bob.locator('.thread-item', { hasText: 'alice' }).click();
    await message(bob, 'hi bob, it is alice').waitFor();
    await badge.waitFor({ state: 'detached' });
    // Opened: alice's tick turns to read.
    await alice.locator('.message.own .ticks.read').first().waitFor();
    await say(bob, 'hello alice!');
    await message(alice, 'hello alice!').waitFor();
    // Alice has the chat open: bob's message is read at once, and his tick turns to read.
    await bob.locator('.message.own .ticks.read').first().waitFor();
    // The chat on screen never shows a badge, not even before the read's round trip.
    assert.equal(await alice.getByTestId('unread').count(), 0);
    // Typing shows on the other side.
    await bob.getByLabel('Message', { exact: true }).pressSequentially('typing a long answer', { delay: 10 });
    await alice.locator('.typing', { hasText: 'bob is typing' }).waitFor();
    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: join(ARTIFACTS, 'web-main.png') });
    assert.ok(existsSync(join(ARTIFACTS, 'web-main.png')));
  });

  it('a group of three: created in the page, every member reads every message', async () => {
    const [carol, dave, erin] = [await person('carol'), await person('dave'), await person('erin', { width: 390, height: 740 })];
    await carol.getByRole('button', { name: 'New group' }).click();
    await carol.getByLabel('Group name').fill('Climbing');
    await carol.getByLabel('Members').fill('dave erin');
    await carol.getByRole('button', { name: 'Create group' }).click();
    await carol.getByRole('heading', { name: 'Climbing' }).waitFor();
    await say(carol, 'Saturday at nine?');
    for (const page of [dave, erin]) {
      await openOnArrival(page, 'Climbing', 'Saturday at nine?');
      await message(page, 'Saturday at nine?').waitFor();
    }
    await say(dave, 'I am in');
    // erin is on a phone-sized screen: one pane at a time, the chat open.
    await message(erin, 'I am in').waitFor();
    assert.equal(await erin.locator('.sidebar').isVisible(), false, 'on a narrow screen the list hides while a chat is open');
    await say(erin, 'me too');
    for (const page of [carol, dave]) await message(page, 'me too').waitFor();
    await carol.getByRole('button', { name: 'Members' }).click();
    await carol.locator('.members li', { hasText: 'erin' }).waitFor();
    // Owners manage members: erin is removed and can no longer write there; frank is added.
    // Remove asks first (web-catchup.test.ts checks the question): yes.
    carol.once('dialog', (dialog) => void dialog.accept());
    await carol.locator('.members li', { hasText: 'erin' }).getByRole('button', { name: 'Remove' }).click();
    await erin.getByText('You are no longer a member of this group.').waitFor();
    await person('frank2');
    await carol.getByLabel('Username to add').fill('frank2');
    await carol.getByRole('button', { name: 'Add', exact: true }).click();
    await carol.locator('.members li', { hasText: 'frank2' }).waitFor();
    // Mute shows in the list; logging out ends on the login screen.
    await dave.getByRole('button', { name: 'Mute' }).click();
    await dave.locator('.thread-item', { hasText: 'Climbing' }).locator('.muted-label').waitFor();
    await dave.getByRole('button', { name: 'Log out' }).click();
    await dave.getByRole('button', { name: 'Log in' }).waitFor();
  });

  it('a chat opened after a live message shows its history; after a reload the open chat and its read ticks are back', async () => {
    const hank = await person('hank');
    const ivy = await person('ivy');
    await startChat(hank, 'ivy');
    for (const text of ['h1', 'h2', 'h3']) await say(hank, text);
    await message(hank, 'h3').waitFor();
    await ivy.reload();
    await ivy.getByTestId('connection').filter({ hasText: 'Online' }).waitFor();
    await say(hank, 'h4');
    // Four messages and the notice that the chat is encrypted.
    await ivy.getByTestId('unread').filter({ hasText: /^5$/ }).waitFor();
    await ivy.locator('.thread-item', { hasText: 'hank' }).click();
    for (const text of ['h1', 'h2', 'h3', 'h4']) await message(ivy, text).waitFor();
    assert.deepEqual(await ivy.locator('.messages .message .body').allTextContents(), ['h1', 'h2', 'h3', 'h4']);
    await hank.locator('.message.own .ticks.read').nth(3).waitFor();
    await hank.reload();
    await message(hank, 'h4').waitFor();
    // The ticks come with the members' cursors, a request after the history: the fourth read tick
    // appearing (within the wait's timeout) is the check that they are back after the reload.
    await hank.locator('.message.own .ticks.read').nth(3).waitFor();
  });

  it('the server restarts mid-conversation: the page shows what waits, reconnects and sends it', async () => {
    const frank = await person('frank');
    const gina = await person('gina');
    await startChat(frank, 'gina');
    await say(frank, 'before the restart');
    await openOnArrival(gina, 'frank', 'before the restart');
    await message(gina, 'before the restart').waitFor();
    await server.stop();
    await frank.getByTestId('connection').filter({ hasText: /Offline|Connecting/ }).waitFor();
    await say(frank, 'sent while the server was down');
    await frank.getByTestId('pending').waitFor();
    await frank.getByTestId('connection').filter({ hasText: 'waiting to send' }).waitFor();
    server = await startServer(serverArgs());
    proxy.target(server.port);
    await frank.getByTestId('pending').waitFor({ state: 'detached', timeout: 30_000 });
    await message(gina, 'sent while the server was down').waitFor({ timeout: 30_000 });
    await say(gina, 'and back again');
    await message(frank, 'and back again').waitFor();
  });
});
