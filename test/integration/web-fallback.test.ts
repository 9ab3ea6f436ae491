import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, launchChromium, say, skipWithoutChromium, startChat, submitAccount, waitForKeys } from '../helpers/browser.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { TcpProxy } from '../helpers/proxy.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/**
 * The web client behind networks that break WebSockets (issue 22), in
 * headless Chromium against the real server through the test proxy
 * (test/helpers/proxy.ts): with upgrades refused the SDK falls back to the
 * stream, the connection badge says so, and two people chat both ways; when
 * the proxy lets WebSockets through again the pages switch back (the badge
 * says Online) with nothing lost and nothing twice. Behind a proxy that also
 * buffers responses, the stream never gets through and long poll carries
 * the chat.
 *
 * The pages try the WebSocket again every 1.5 s (the app's default is a
 * minute), set through the page's test-only injection point
 * window.chatdTestClientOptions.
 */

const skip = skipWithoutChromium;

describe('the web client falls back when WebSockets are blocked', { skip, timeout: 240_000 }, () => {
  let browser: Browser;
  let server: ServerProcess;
  const proxies: TcpProxy[] = [];

  before(async () => {
    const dir = tempDir();
    server = await startServer([
      '--data',
      join(dir, 'data'),
      '--config',
      writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n[limits]\nuser_sends_per_second = 1000\n'),
    ]);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    for (const proxy of proxies) await proxy.close();
    await server?.stop();
  });

  async function proxy(options: { bufferStreams?: boolean } = {}): Promise<TcpProxy> {
    const made = await TcpProxy.start(server.port, options);
    proxies.push(made);
    made.refuseUpgrades(true);
    return made;
  }

  /** A fresh browser profile on `url` that registers `username` and lands on the chat screen, online by `transport`. */
  async function person(url: string, username: string, badge: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    await context.addInitScript({ content: 'window.chatdTestClientOptions = { websocketRetryMs: 1500 };' });
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    await submitAccount(page, url, username, 'register');
    await badgeSays(page, badge);
    await waitForKeys(page);
    return page;
  }

  async function badgeSays(page: Page, text: string): Promise<void> {
    await page.getByTestId('connection').filter({ hasText: new RegExp(`^${text.replace(/[()]/g, '\\$&')}$`) }).waitFor();
  }

  /** The open chat's test messages (a1, b2…) in order, once there are `count` of them (a repeat would show twice). */
  async function messages(page: Page, count: number): Promise<string[]> {
    await page.waitForFunction(
      `[...document.querySelectorAll('.messages .message .body')].filter((b) => /^(a|b)\\d+$/.test(b.textContent)).length >= ${count}`,
    );
    return (await page.locator('.messages .message .body').allTextContents()).filter((text) => /^(a|b)\d+$/.test(text));
  }

  it('two people chat both ways on the stream, the badge says so; WebSockets allowed again, both switch back with nothing lost and nothing twice', async () => {
    const blocking = await proxy();
    const alice = await person(blocking.url, 'alice', 'Online (stream)');
    const bob = await person(blocking.url, 'bob', 'Online (stream)');
    assert.ok(blocking.upgradesRefused >= 2, 'the WebSocket was tried and refused');
    const badge = alice.getByTestId('connection');
    assert.equal(await badge.getAttribute('data-transport'), 'stream');
    assert.match((await badge.getAttribute('title')) ?? '', /blocks WebSockets.*tries WebSockets again/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: join(ARTIFACTS, 'web-fallback-stream.png') });

    await startChat(alice, 'bob');
    await say(alice, 'a1');
    await bob.locator('.thread-item', { hasText: 'alice' }).click();
    await messages(bob, 1);
    await say(bob, 'b1');
    await messages(alice, 2);
    await say(alice, 'a2');
    await say(bob, 'b2');

    // The proxy lets WebSockets through: both pages switch back by themselves; what is sent meanwhile arrives once.
    blocking.refuseUpgrades(false);
    await say(alice, 'a3');
    await say(bob, 'b3');
    await badgeSays(alice, 'Online');
    await badgeSays(bob, 'Online');
    assert.equal(await badge.getAttribute('data-transport'), 'websocket');
    assert.ok(!(await badge.getAttribute('title')), 'no fallback to explain'); // Preact leaves title="" behind
    await say(alice, 'a4');
    await say(bob, 'b4');
    const seenByAlice = await messages(alice, 8);
    const seenByBob = await messages(bob, 8);
    for (const seen of [seenByAlice, seenByBob]) assert.deepEqual([...seen].sort(), ['a1', 'a2', 'a3', 'a4', 'b1', 'b2', 'b3', 'b4'], `every message once: ${seen.join(' ')}`);
    // Each one's own messages in the order they were written, on both sides.
    for (const seen of [seenByAlice, seenByBob]) {
      assert.deepEqual(seen.filter((text) => text.startsWith('a')), ['a1', 'a2', 'a3', 'a4']);
      assert.deepEqual(seen.filter((text) => text.startsWith('b')), ['b1', 'b2', 'b3', 'b4']);
    }
  });

  it('behind a proxy that also buffers responses, long poll carries the chat and the badge says so', async () => {
    const buffering = await proxy({ bufferStreams: true });
    const carol = await person(buffering.url, 'carol', 'Online (long poll)');
    const dave = await person((await proxy()).url, 'dave', 'Online (stream)');
    assert.equal(await carol.getByTestId('connection').getAttribute('data-transport'), 'poll');
    await carol.screenshot({ path: join(ARTIFACTS, 'web-fallback-poll.png') });
    await startChat(carol, 'dave');
    await say(carol, 'a1');
    await dave.locator('.thread-item', { hasText: 'carol' }).click();
    await messages(dave, 1);
    await say(dave, 'b1');
    assert.deepEqual(await messages(carol, 2), ['a1', 'b1']);
  });
});
