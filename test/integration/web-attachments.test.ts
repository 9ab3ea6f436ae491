import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, JSHandle, Page } from 'playwright-core';
import sharp from 'sharp';
import { ARTIFACTS, launchChromium, onChatScreen, openChat, skipWithoutChromium, startChat, waitForKeys } from '../helpers/browser.js';
import { signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/**
 * The web client's attachments in headless Chromium against the real server
 * (as web.test.ts): a photo dropped onto a plaintext chat shows inline on the
 * other side (loaded from its signed thumbnail link) and opens in the viewer;
 * a PDF chosen with the attach button shows as a card whose download saves it
 * under its name; in an encrypted chat the photo is decrypted in the page
 * into an object URL; a file over the server's limit says so on its card; a
 * voice message is recorded (Chromium's fake microphone) and plays on the
 * other side from its signed link; a refused microphone is said in words. Screenshots go to
 * artifacts/.
 */

const skip = skipWithoutChromium;
/** The server's largest file in this test: small, so the refusal is quick to provoke. */
const MAX_FILE_BYTES = 2_000_000;

describe('the web client sends and shows attachments', { skip, timeout: 240_000 }, () => {
  let browser: Browser;
  let server: ServerProcess;
  let dir: string;
  let origin: string;

  before(async () => {
    dir = tempDir();
    server = await startServer([
      '--data',
      join(dir, 'data'),
      '--config',
      writeConfig(dir, `[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n[attachments]\nmax_file_bytes = ${MAX_FILE_BYTES}\n`),
    ]);
    origin = `http://127.0.0.1:${server.port}/`;
    // A fake microphone (a beep) for the contexts granted one; the others are refused.
    browser = await launchChromium(['--use-fake-device-for-media-stream']);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** A browser on the chat screen as `username`: registered through the page, or logging in to an account made over HTTP. */
  async function browserOf(username: string, mode: 'register' | 'login', options: { microphone?: boolean; viewport?: { width: number; height: number } } = {}): Promise<Page> {
    const page = await onChatScreen(browser, origin, username, mode, { viewport: options.viewport ?? { width: 1100, height: 760 }, ...(options.microphone ? { permissions: ['microphone'] } : {}) });
    await waitForKeys(page);
    return page;
  }

  /** A DataTransfer in the page carrying one file, as a drag from the desktop has. */
  function fileTransfer(page: Page, bytes: Buffer, name: string, type: string): Promise<JSHandle> {
    // A string, evaluated in the page: this file is type-checked without the DOM's types.
    return page.evaluateHandle(
      `(() => { const t = new DataTransfer(); t.items.add(new File([Uint8Array.from(atob(${JSON.stringify(bytes.toString('base64'))}), (c) => c.charCodeAt(0))], ${JSON.stringify(name)}, { type: ${JSON.stringify(type)} })); return t; })()`,
    );
  }

  /** Waits until the image matched has loaded real pixels (naturalWidth > 0); returns its natural width. */
  async function loadedWidth(page: Page, selector: string): Promise<number> {
    const handle = await page.waitForFunction(
      `(() => { const img = document.querySelector(${JSON.stringify(selector)}); return img && img.complete && img.naturalWidth > 0 ? img.naturalWidth : 0; })()`,
    );
    return (await handle.jsonValue()) as number;
  }

  const photo = (width: number, height: number): Promise<Buffer> =>
    sharp({ create: { width, height, channels: 3, background: { r: 200, g: 90, b: 40 } } })
      .composite([{ input: { create: { width: Math.floor(width / 2), height: Math.floor(height / 2), channels: 3, background: { r: 20, g: 60, b: 200 } } } }])
      .png()
      .toBuffer();
  const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

  it('a photo dropped onto a plaintext chat shows inline on the other side and opens in the viewer; a PDF shows as a card that downloads', async () => {
    // bob has no device with keys yet when alice starts the chat: it is plain, and stays plain.
    await signUp(server.url, 'bob');
    const alice = await browserOf('alice', 'register');
    await startChat(alice, 'bob', { named: true });
    await alice.getByTestId('encryption').filter({ hasText: 'Not encrypted' }).waitFor();
    const bob = await browserOf('bob', 'login');

    const transfer = await fileTransfer(alice, await photo(640, 480), 'harbour.png', 'image/png');
    await alice.locator('.messages').dispatchEvent('dragenter', { dataTransfer: transfer });
    await alice.getByTestId('drop-zone').waitFor();
    await alice.locator('.messages').dispatchEvent('dragover', { dataTransfer: transfer });
    await alice.locator('.messages').dispatchEvent('drop', { dataTransfer: transfer });
    await alice.getByTestId('drop-zone').waitFor({ state: 'detached' });
    const card = alice.getByTestId('upload').filter({ hasText: 'harbour.png' });
    await card.waitFor();
    await card.and(alice.locator('[data-state=done]')).waitFor();
    await alice.getByLabel('Message', { exact: true }).fill('the harbour this morning');
    await alice.keyboard.press('Enter');
    await card.waitFor({ state: 'detached' });

    await openChat(bob, 'alice');
    await bob.locator('.messages .message .body', { hasText: 'the harbour this morning' }).waitFor();
    // The thumbnail, through a signed link; its box was reserved at the photo's shape (no jump when it loads).
    const inline = '.messages .att-image img';
    assert.ok((await loadedWidth(bob, inline)) > 0);
    assert.deepEqual(
      [await bob.locator(inline).getAttribute('width'), await bob.locator(inline).getAttribute('height')],
      ['280', '210'],
    );
    assert.match((await bob.locator(inline).getAttribute('src')) ?? '', /\/v1\/attachments\/[^/]+\/thumbnail\?exp=\d+&sig=/);
    await bob.getByRole('button', { name: 'Open harbour.png' }).click();
    const viewer = bob.getByRole('dialog', { name: 'harbour.png' });
    await viewer.waitFor();
    // The full image, at its own size.
    assert.equal(await loadedWidth(bob, '.viewer .viewer-image'), 640);
    assert.equal(await viewer.getByRole('link', { name: 'Download' }).getAttribute('download'), 'harbour.png');
    mkdirSync(ARTIFACTS, { recursive: true });
    await bob.screenshot({ path: join(ARTIFACTS, 'web-attachment-viewer.png') });
    await bob.keyboard.press('Escape');
    await viewer.waitFor({ state: 'detached' });

    // A PDF with the attach button, sent without words.
    await alice.getByTestId('file-input').setInputFiles({ name: 'report.pdf', mimeType: 'application/pdf', buffer: PDF });
    await alice.getByTestId('upload').and(alice.locator('[data-state=done]')).waitFor();
    await alice.getByRole('button', { name: 'Send' }).click();
    const fileCard = bob.getByTestId('file-card').filter({ hasText: 'report.pdf' });
    await fileCard.waitFor();
    const [download] = await Promise.all([bob.waitForEvent('download'), fileCard.getByRole('button', { name: 'Download report.pdf' }).click()]);
    assert.equal(download.suggestedFilename(), 'report.pdf');
    assert.deepEqual(await streamBytes(await download.createReadStream()), PDF);
    // The chat list says what came.
    await alice.locator('.thread-item', { hasText: 'bob' }).locator('.preview', { hasText: 'File: report.pdf' }).waitFor();
    await bob.screenshot({ path: join(ARTIFACTS, 'web-attachments.png') });
  });

  it('in an encrypted chat the photo is decrypted in the page and shown from an object URL', async () => {
    const carol = await browserOf('carol', 'register');
    const dave = await browserOf('dave', 'register', { viewport: { width: 390, height: 740 } });
    await startChat(carol, 'dave', { named: true });
    await carol.getByTestId('encryption').filter({ hasText: 'End-to-end encrypted' }).waitFor();
    await carol.getByTestId('file-input').setInputFiles({ name: 'secret.png', mimeType: 'image/png', buffer: await photo(300, 200) });
    await carol.getByTestId('upload').and(carol.locator('[data-state=done]')).waitFor();
    await carol.getByRole('button', { name: 'Send' }).click();
    // dave is on a phone-sized screen.
    await openChat(dave, 'carol');
    const inline = '.messages .att-image img';
    assert.equal(await loadedWidth(dave, inline), 300);
    assert.match((await dave.locator(inline).getAttribute('src')) ?? '', /^blob:/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await dave.screenshot({ path: join(ARTIFACTS, 'web-attachments-phone.png') });
    await dave.getByRole('button', { name: 'Open secret.png' }).click();
    await dave.getByRole('dialog', { name: 'secret.png' }).waitFor();
    await dave.getByRole('button', { name: 'Close the image' }).click();
    await dave.getByRole('dialog').waitFor({ state: 'detached' });
  });

  it('a file over the server limit says so on its card and is not sent; a refused microphone is said in words', async () => {
    const erin = await browserOf('erin', 'register');
    await signUp(server.url, 'frank');
    await startChat(erin, 'frank', { named: true });
    await erin.getByTestId('file-input').setInputFiles({ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(MAX_FILE_BYTES + 1, 7) });
    const card = erin.getByTestId('upload').filter({ hasText: 'huge.bin' });
    await card.and(erin.locator('[data-state=failed]')).waitFor();
    await card.getByRole('alert').filter({ hasText: /Too large/ }).waitFor();
    assert.equal(await erin.getByRole('button', { name: 'Send' }).isDisabled(), true);
    await card.getByRole('button', { name: 'Remove huge.bin' }).click();
    await card.waitFor({ state: 'detached' });
    // This context was not given the microphone: the browser refuses it.
    await erin.getByRole('button', { name: 'Record a voice message' }).click();
    await erin.getByRole('alert').filter({ hasText: 'Microphone access was refused' }).waitFor();
  });

  it('a voice message is recorded, sent with its duration and plays on the other side from its signed link', async () => {
    // A plaintext chat (as in the first case): the server sniffs the recording, and names WebM video/webm.
    await signUp(server.url, 'hank');
    const gina = await browserOf('gina', 'register', { microphone: true });
    await startChat(gina, 'hank', { named: true });
    await gina.getByTestId('encryption').filter({ hasText: 'Not encrypted' }).waitFor();
    const hank = await browserOf('hank', 'login');
    await gina.getByRole('button', { name: 'Record a voice message' }).click();
    // The clock runs while recording.
    await gina.getByLabel('Recording time').filter({ hasText: '0:01' }).waitFor();
    await gina.getByRole('button', { name: 'Stop and send the voice message' }).click();
    await openChat(hank, 'gina');
    const audio = hank.locator('.messages .att-audio audio');
    await audio.waitFor();
    await hank.locator('.messages .att-audio', { hasText: /Voice message · 0:0[1-9]/ }).waitFor();
    // Decoded far enough to know its length: the recording arrived whole and playable.
    await hank.waitForFunction(`(() => { const a = document.querySelector('.messages .att-audio audio'); return a && a.readyState >= 1; })()`);
    assert.match((await audio.getAttribute('src')) ?? '', /\/v1\/attachments\/[^/?]+\?exp=\d+&sig=/);
    await hank.locator('.thread-item', { hasText: 'gina' }).locator('.preview', { hasText: 'Voice message' }).waitFor();
  });
});

async function streamBytes(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}
