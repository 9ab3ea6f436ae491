import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { ChatClient } from '../../src/client/node.js';
import { ARTIFACTS, launchChromium, onChatScreen, openChat, say as send, skipWithoutChromium, startChat, waitForKeys } from '../helpers/browser.js';
import { signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/**
 * The web client's message features in headless Chromium against the real
 * server (as web.test.ts), two people in two browsers, each action seen from
 * the other side: an edit (from the menu, and with ↑ in the empty composer),
 * a reply whose quote jumps to the message, reactions toggled from the picker
 * and the chips, an @mention chosen from the autocomplete and drawn
 * highlighted, delete for everyone and for me, and a search whose result
 * opens the chat at an older message, loaded in context and highlighted. In an
 * encrypted chat the same edit, reaction and search work the same from the
 * user's view. Screenshots go to artifacts/.
 */

const skip = skipWithoutChromium;

describe('the web client edits, deletes, replies, reacts, mentions and searches', { skip, timeout: 300_000 }, () => {
  let browser: Browser;
  let server: ServerProcess;
  let origin: string;
  const clients: ChatClient[] = [];

  before(async () => {
    const dir = tempDir();
    server = await startServer(['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n[limits]\nuser_sends_per_second = 1000\n')]);
    origin = `http://127.0.0.1:${server.port}/`;
    browser = await launchChromium();
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await browser?.close();
    await server?.stop();
  });

  /** A browser on the chat screen as `username`: registered through the page, or logging in to an account made over HTTP. */
  async function browserOf(username: string, mode: 'register' | 'login'): Promise<Page> {
    const page = await onChatScreen(browser, origin, username, mode, { viewport: { width: 1100, height: 760 } });
    await waitForKeys(page);
    return page;
  }

  /** Sends `text` and waits for its bubble. */
  async function say(page: Page, text: string): Promise<void> {
    await send(page, text);
    await bubble(page, text).waitFor();
  }

  /** The bubble whose text contains `text`. */
  const bubble = (page: Page, text: string): Locator => page.locator('.messages .message', { has: page.locator('.body', { hasText: text }) });

  /** Opens a bubble's menu with its ⋯ button (or a right click) and picks `item`. */
  async function menu(page: Page, text: string, item: string, how: 'button' | 'right-click' = 'button'): Promise<void> {
    const target = bubble(page, text);
    await target.hover();
    if (how === 'button') await target.getByRole('button', { name: 'Message actions' }).click();
    else await target.locator('.body').click({ button: 'right' });
    await page.getByRole('menu', { name: 'Message actions' }).getByRole('menuitem', { name: item, exact: true }).click();
  }

  it('plaintext chat: edit, reply, react, mention, delete and search, each seen in the other browser', async () => {
    // bob has no device with keys when alice starts the chat: it is plain (the server searches it).
    const bobDevice = await signUp(server.url, 'bob');
    const alice = await browserOf('alice', 'register');
    await startChat(alice, 'bob', { named: true });
    await alice.getByTestId('encryption').filter({ hasText: 'Not encrypted' }).waitFor();
    const bob = await browserOf('bob', 'login');

    // Edit, from the menu: bob sees the new text and the mark.
    await say(alice, 'lunch at noon tomorrow?');
    await menu(alice, 'lunch at noon tomorrow?', 'Edit');
    await alice.getByTestId('composer-banner').filter({ hasText: 'Editing' }).waitFor();
    const box = alice.getByLabel('Message', { exact: true });
    assert.equal(await box.inputValue(), 'lunch at noon tomorrow?');
    await box.fill('lunch at one tomorrow?');
    await alice.getByRole('button', { name: 'Save' }).click();
    await openChat(bob, 'alice');
    const edited = bubble(bob, 'lunch at one tomorrow?');
    await edited.locator('.edited').waitFor();
    assert.equal(await bubble(bob, 'noon').count(), 0);
    await bubble(alice, 'lunch at one tomorrow?').locator('.edited').waitFor();

    // The keyboard path: ↑ in the empty composer edits the last own message, Escape stops.
    await box.focus();
    await alice.keyboard.press('ArrowUp');
    await alice.getByTestId('composer-banner').filter({ hasText: 'Editing' }).waitFor();
    assert.equal(await box.inputValue(), 'lunch at one tomorrow?');
    await alice.keyboard.press('Escape');
    await alice.getByTestId('composer-banner').waitFor({ state: 'detached' });
    assert.equal(await box.inputValue(), '');

    // Reply (opened with a right click): alice sees the quote in bob's answer.
    await menu(bob, 'lunch at one tomorrow?', 'Reply', 'right-click');
    await bob.getByTestId('composer-banner').filter({ hasText: 'Replying to alice' }).waitFor();
    await say(bob, 'one works for me');
    await bubble(alice, 'one works for me').getByTestId('quote').filter({ hasText: 'lunch at one tomorrow?' }).waitFor();

    // Reactions: alice's 👍 from the picker shows on bob's side; bob adds his with the chip; alice takes hers back.
    await menu(alice, 'one works for me', 'React with 👍');
    const bobChip = bubble(bob, 'one works for me').locator('.chip[data-emoji="👍"]');
    await bobChip.filter({ hasText: '1' }).and(bob.locator('[aria-pressed=false]')).waitFor();
    await bobChip.click();
    const aliceChip = bubble(alice, 'one works for me').locator('.chip[data-emoji="👍"]');
    await aliceChip.filter({ hasText: '2' }).waitFor();
    await aliceChip.click();
    await bobChip.filter({ hasText: '1' }).and(bob.locator('[aria-pressed=true]')).waitFor();
    await aliceChip.filter({ hasText: '1' }).and(alice.locator('[aria-pressed=false]')).waitFor();

    // A mention chosen from the autocomplete: highlighted on alice's side as hers.
    const bobBox = bob.getByLabel('Message', { exact: true });
    await bobBox.pressSequentially('see you there @al');
    await bob.getByRole('listbox', { name: 'People to mention' }).getByRole('option', { name: /alice/ }).waitFor();
    await bob.keyboard.press('Enter');
    assert.equal(await bobBox.inputValue(), 'see you there @alice ');
    await bob.keyboard.press('Enter');
    const mention = bubble(alice, 'see you there').locator('.mention.me', { hasText: '@alice' });
    await mention.waitFor();
    assert.match((await bubble(alice, 'see you there').getAttribute('class')) ?? '', /mentions-me/);

    // Delete for everyone: alice sees the tombstone. Delete for me: gone for alice only.
    await say(bob, 'oops, wrong chat');
    await bubble(alice, 'oops, wrong chat').waitFor();
    await menu(bob, 'oops, wrong chat', 'Delete…');
    await bob.getByRole('menuitem', { name: 'Delete for everyone' }).click();
    await alice.locator('.messages .message.deleted', { hasText: 'This message was deleted' }).waitFor();
    assert.equal(await bubble(alice, 'oops, wrong chat').count(), 0);
    await bob.locator('.messages .message.deleted').waitFor();
    await menu(alice, 'see you there', 'Delete…');
    await alice.getByRole('menuitem', { name: 'Delete for me' }).click();
    await bubble(alice, 'see you there').waitFor({ state: 'detached' });
    assert.equal(await bubble(bob, 'see you there').count(), 1, 'delete for me leaves it for the others');
    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: join(ARTIFACTS, 'web-messages.png') });

    // Enough newer messages that the edited one is no longer among the loaded ones.
    const filler = new ChatClient({ server: server.url, token: bobDevice.token });
    clients.push(filler);
    await filler.start();
    await filler.whenOnline();
    const threadId = Number(await bob.locator('.thread-item', { hasText: 'alice' }).getAttribute('data-thread'));
    for (let i = 1; i <= 60; i++) await filler.send(threadId, { text: `filler ${i}` });
    await bubble(bob, 'filler 60').waitFor();
    await bob.reload();
    await bob.getByTestId('connection').filter({ hasText: 'Online' }).waitFor();
    await bubble(bob, 'filler 60').waitFor();
    assert.equal(await bubble(bob, 'lunch at one').count(), 0, 'the older message is not loaded');

    // Search from bob's browser finds alice's edited words, marked; the result opens the chat at the message.
    await bob.getByLabel('Search messages').fill('lunch');
    const results = bob.getByTestId('search-results');
    const result = results.locator('.search-result', { hasText: 'lunch at one' });
    await result.locator('mark', { hasText: /lunch/i }).waitFor();
    assert.equal(await results.locator('.search-result', { hasText: 'noon' }).count(), 0, 'the words edited away are not found');
    await result.click();
    const found = bob.locator('.messages .message.highlighted', { hasText: 'lunch at one tomorrow?' });
    await found.waitFor();
    await bob.waitForFunction(`(() => { const el = document.querySelector('.messages .message.highlighted'); const list = document.querySelector('.messages'); if (!el || !list) return false; const a = el.getBoundingClientRect(), b = list.getBoundingClientRect(); return a.top >= b.top && a.bottom <= b.bottom; })()`);
    // In context: the reply after it is there too; the newest ones load on demand.
    await bubble(bob, 'one works for me').waitFor();
    await bob.screenshot({ path: join(ARTIFACTS, 'web-search.png') });
    await bob.getByRole('button', { name: 'Go to the newest' }).click();
    await bubble(bob, 'filler 60').waitFor();

    // A reply's quote jumps to the message it answers, loaded in context when it is not on screen.
    await say(alice, 'filler 60 was a lot');
    await menu(bob, 'filler 60 was a lot', 'Reply');
    await say(bob, 'sorry');
    await bob.getByLabel('Search messages').fill('works for');
    await bob.getByTestId('search-results').locator('.search-result', { hasText: 'one works for me' }).click();
    await bob.locator('.messages .message.highlighted', { hasText: 'one works for me' }).getByTestId('quote').click();
    await bob.locator('.messages .message.highlighted', { hasText: 'lunch at one tomorrow?' }).waitFor();
  });

  it('group: the autocomplete lists the members, the one mentioned sees it as theirs; its owner deletes a member\'s message for everyone', async () => {
    const [gus, hal, ida] = [await browserOf('gus', 'register'), await browserOf('hal', 'register'), await browserOf('ida', 'register')];
    await gus.getByRole('button', { name: 'New group' }).click();
    await gus.getByLabel('Group name').fill('Hikers');
    await gus.getByLabel('Members').fill('hal ida');
    await gus.getByRole('button', { name: 'Create group' }).click();
    await gus.getByRole('heading', { level: 2, name: 'Hikers' }).waitFor();
    await openChat(hal, 'Hikers');
    await openChat(ida, 'Hikers');
    // Both others are offered for a bare "@"; ↓ moves to the second, Enter takes it.
    const box = gus.getByLabel('Message', { exact: true });
    await box.pressSequentially('bring water @');
    const options = gus.getByRole('listbox', { name: 'People to mention' }).getByRole('option');
    await options.nth(1).waitFor();
    assert.deepEqual((await options.allTextContents()).map((text) => text.replace(/\s+/g, ' ').trim()), ['hal @hal', 'ida @ida']);
    await gus.keyboard.press('ArrowDown');
    await gus.getByRole('option', { name: /ida/, selected: true }).waitFor();
    // The keys typed right after taking a mention go after it, whenever the next frame comes: frames are held
    // back here until the typing is done (the caret used to be set in a frame, behind what was typed by then).
    await gus.evaluate(`{
      const held = [];
      const original = window.requestAnimationFrame.bind(window);
      window.requestAnimationFrame = (callback) => (held.push(callback), 0);
      window.releaseFrames = () => {
        window.requestAnimationFrame = original;
        for (const callback of held.splice(0)) callback(performance.now());
      };
    }`);
    await gus.keyboard.press('Enter');
    await box.pressSequentially('please');
    await gus.evaluate('window.releaseFrames()');
    assert.equal(await box.inputValue(), 'bring water @ida please');
    assert.equal(await gus.evaluate('document.activeElement.selectionStart'), 'bring water @ida please'.length, 'the caret is after what was typed');
    await gus.keyboard.press('Enter');
    await bubble(ida, 'bring water').locator('.mention.me', { hasText: '@ida' }).waitFor();
    await bubble(hal, 'bring water').locator('.mention', { hasText: '@ida' }).waitFor();
    assert.equal(await bubble(hal, 'bring water').locator('.mention.me').count(), 0, 'hal is not the one mentioned');

    await say(hal, 'a message the owner removes');
    await bubble(gus, 'a message the owner removes').waitFor();
    await menu(gus, 'a message the owner removes', 'Delete…');
    await gus.getByRole('menuitem', { name: 'Delete for everyone' }).click();
    for (const page of [hal, ida]) await page.locator('.messages .message.deleted', { hasText: 'This message was deleted' }).waitFor();
    // A member has no such power over someone else's message: only "for me".
    await bubble(ida, 'bring water').hover();
    await bubble(ida, 'bring water').getByRole('button', { name: 'Message actions' }).click();
    await ida.getByRole('menuitem', { name: 'Delete…' }).waitFor();
    // The next step's first item has the focus as soon as it is drawn, before any frame, so that a key pressed
    // at once reaches the menu (Escape once reached no menu: the focused "Delete…" was gone).
    const focused = await ida.evaluate(`(async () => {
      [...document.querySelectorAll('[role=menuitem]')].find((item) => item.textContent.trim() === 'Delete…').click();
      for (let i = 0; i < 10; i++) await Promise.resolve();
      return document.activeElement?.getAttribute('role') + ': ' + document.activeElement?.textContent.trim();
    })()`);
    assert.equal(focused, 'menuitem: Delete for me');
    assert.equal(await ida.getByRole('menuitem', { name: 'Delete for everyone' }).count(), 0);
    await ida.keyboard.press('Escape');
    await ida.getByRole('menu').waitFor({ state: 'detached' });
  });

  it('group: Message info on one\'s own message lists who read it, whose device has it and who is still waiting; not offered on others\' messages', async () => {
    // otto and pia are SDK devices: otto reads, pia's device only receives (the SDK acks delivered by itself).
    const device = async (username: string): Promise<ChatClient> => {
      const client = new ChatClient({ server: server.url, token: (await signUp(server.url, username)).token });
      clients.push(client);
      await client.start();
      await client.whenOnline();
      return client;
    };
    const otto = await device('otto');
    const pia = await device('pia');
    const nora = await browserOf('nora', 'register');
    await nora.getByRole('button', { name: 'New group' }).click();
    await nora.getByLabel('Group name').fill('Readers');
    await nora.getByLabel('Members').fill('otto pia');
    await nora.getByRole('button', { name: 'Create group' }).click();
    await nora.getByRole('heading', { level: 2, name: 'Readers' }).waitFor();
    const ottoGot = otto.once('message', (message) => (message.body as { text?: string } | null)?.text === 'did you all see this?');
    await say(nora, 'did you all see this?');
    const message = await ottoGot;
    await otto.markRead(message.thread_id, message.seq);
    // otto's read receipt has reached nora's page.
    await bubble(nora, 'did you all see this?').locator('.ticks.read').waitFor();

    await menu(nora, 'did you all see this?', 'Message info');
    const info = nora.getByRole('dialog', { name: 'Message info' });
    await info.getByRole('region', { name: 'Read by' }).getByText('otto', { exact: true }).waitFor();
    // pia's ack may land after the panel asked: her receipt moves her to Delivered to.
    await info.getByRole('region', { name: 'Delivered to' }).getByText('pia', { exact: true }).waitFor();
    await info.getByRole('region', { name: 'Waiting' }).getByText('Nobody').waitFor();
    assert.equal(await info.getByRole('region', { name: 'Read by' }).getByRole('listitem').count(), 1, 'the author is not listed');
    // Asked once: pia's read while it is open moves her to Read by from her receipt alone.
    await pia.markRead(message.thread_id, message.seq);
    await info.getByRole('region', { name: 'Read by' }).getByText('pia', { exact: true }).waitFor();
    await info.getByRole('region', { name: 'Delivered to' }).getByText('Nobody').waitFor();
    // Escape closes it; the focus is back on the message's ⋯ button.
    await nora.keyboard.press('Escape');
    await info.waitFor({ state: 'detached' });
    await nora.waitForFunction(`document.activeElement?.getAttribute('aria-label') === 'Message actions'`);

    // Someone else's message has no Message info.
    await pia.send(message.thread_id, { text: 'seen it' });
    await bubble(nora, 'seen it').hover();
    await bubble(nora, 'seen it').getByRole('button', { name: 'Message actions' }).click();
    await nora.getByRole('menu', { name: 'Message actions' }).getByRole('menuitem', { name: 'Copy text' }).waitFor();
    assert.equal(await nora.getByRole('menuitem', { name: 'Message info' }).count(), 0);
    await nora.keyboard.press('Escape');
  });

  it('choosing Edit gives the composer the message\'s text in the same update that shows the editing bar', async () => {
    // Text typed right after choosing Edit, before the next frame, is the edit: it is not replaced by the old text.
    await signUp(server.url, 'finn');
    const erin = await browserOf('erin', 'register');
    await startChat(erin, 'finn', { named: true });
    await say(erin, 'see you at eight');
    const target = bubble(erin, 'see you at eight');
    await target.hover();
    await target.getByRole('button', { name: 'Message actions' }).click();
    await erin.getByRole('menu', { name: 'Message actions' }).getByRole('menuitem', { name: 'Edit', exact: true }).waitFor();
    // One task: choose Edit, let the update it starts run (microtasks only, no frame), read the box.
    const seen = (await erin.evaluate(`(async () => {
      [...document.querySelectorAll('.message-menu [role=menuitem]')].find((item) => item.textContent.trim() === 'Edit').click();
      for (let i = 0; i < 50 && !document.querySelector('[data-testid=composer-banner]'); i += 1) await Promise.resolve();
      return { banner: document.querySelector('[data-testid=composer-banner]')?.textContent ?? '', text: document.querySelector('textarea[aria-label=Message]').value };
    })()`)) as { banner: string; text: string };
    assert.match(seen.banner, /Editing/);
    assert.equal(seen.text, 'see you at eight');
    const box = erin.getByLabel('Message', { exact: true });
    await box.fill('see you at nine');
    await erin.keyboard.press('Enter');
    await bubble(erin, 'see you at nine').locator('.edited').waitFor();
  });

  it('encrypted chat: an edit, a reaction and a search (on the device) work the same', async () => {
    const carol = await browserOf('carol', 'register');
    const dave = await browserOf('dave', 'register');
    await startChat(carol, 'dave', { named: true });
    await carol.getByTestId('encryption').filter({ hasText: 'End-to-end encrypted' }).waitFor();
    await say(carol, 'the code word is heliotrope');
    await openChat(dave, 'carol');
    await bubble(dave, 'heliotrope').waitFor();
    await menu(carol, 'heliotrope', 'Edit');
    await carol.getByTestId('composer-banner').filter({ hasText: 'Editing' }).waitFor();
    const box = carol.getByLabel('Message', { exact: true });
    assert.equal(await box.inputValue(), 'the code word is heliotrope');
    await box.fill('the code word is marigold');
    await carol.keyboard.press('Enter');
    await bubble(dave, 'marigold').locator('.edited').waitFor();
    assert.equal(await bubble(dave, 'heliotrope').count(), 0);
    await menu(dave, 'marigold', 'React with ❤️');
    await bubble(carol, 'marigold').locator('.chip[data-emoji="❤️"]').filter({ hasText: '1' }).waitFor();
    await dave.getByLabel('Search messages').fill('marigold');
    const result = dave.getByTestId('search-results').locator('.search-result', { hasText: 'marigold' });
    await result.locator('mark').waitFor();
    await result.click();
    await dave.locator('.messages .message.highlighted', { hasText: 'marigold' }).waitFor();

    // The browser keeps its index of what it decrypted: after a reload with no chat open (nothing decrypted
    // anew) the message is still found, and the words the edit replaced are not.
    await dave.waitForFunction(`Object.keys(localStorage).some((key) => key.endsWith('.search') && localStorage.getItem(key).includes('marigold'))`);
    await dave.goto(origin);
    await dave.getByTestId('connection').filter({ hasText: 'Online' }).waitFor();
    assert.equal(await dave.locator('.messages').count(), 0, 'no chat is open');
    await dave.getByLabel('Search messages').fill('marigold');
    await dave.getByTestId('search-results').locator('.search-result', { hasText: 'marigold' }).click();
    await dave.locator('.messages .message.highlighted', { hasText: 'marigold' }).waitFor();
    await dave.getByLabel('Search messages').fill('heliotrope');
    await dave.getByTestId('search-results').getByText('No messages found').waitFor();
  });
});
