import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, launchChromium, messageBody as message, onChatScreen, openOnArrival, say, skipWithoutChromium, startChat, waitForKeys } from '../helpers/browser.js';
import { TestDevice, deviceBytes, envelope, loadSodium, sealEnvelope } from '../helpers/e2e.js';
import { logIn } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { connectAuthenticated } from '../helpers/ws.js';

/**
 * The web client's end-to-end encryption in headless Chromium against the real
 * server (like web.test.ts): two people chat in an encrypted direct thread
 * whose words the server's database never holds, compare equal safety
 * numbers and mark each other verified; a device keeps its identity across a
 * reload; a second browser of the same user waits for approval, is approved
 * after the codes were compared, reads what is sent next and gets the
 * history it missed; a contact's new account key shows as a warning and holds
 * sends to a verified contact; an encrypted group; forged and misdirected
 * envelopes show their explanation. Screenshots go to artifacts/.
 */

/** The page's localStorage, as the test's functions that run in the page use it. */
interface PageStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** An account key's certificate of a device (its account_signature), made with the account's secret key (base64, libsodium's 64 bytes). */
function certify(device: TestDevice, accountSecret: string): string {
  const raw = Buffer.from(accountSecret, 'base64');
  const jwk = { kty: 'OKP', crv: 'Ed25519', d: raw.subarray(0, 32).toString('base64url'), x: raw.subarray(32).toString('base64url') };
  return sign(null, deviceBytes('chatd-device-cert-v2', device.statement()), createPrivateKey({ key: jwk, format: 'jwk' })).toString('base64');
}

/** A new account key for `userId` and its self-signature (account_publish's fields), made with node:crypto. */
function accountPublication(userId: number): { account_key: string; signature: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const key = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url').toString('base64');
  return { account_key: key, signature: sign(null, Buffer.from(JSON.stringify(['chatd-account-v2', userId, key])), privateKey).toString('base64') };
}

const skip = skipWithoutChromium;

describe('the web client encrypts', { skip, timeout: 240_000 }, () => {
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
      writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n'),
    ]);
    origin = `http://127.0.0.1:${server.port}/`;
    await loadSodium();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** A fresh browser profile on the chat screen, logged in (or registered first) as `username`. */
  async function browserOf(username: string, mode: 'register' | 'login'): Promise<Page> {
    return onChatScreen(browser, origin, username, mode, { viewport: { width: 1100, height: 760 } });
  }

  /** A new user whose first device made the account key (so others can encrypt to them). */
  async function person(username: string): Promise<Page> {
    const page = await browserOf(username, 'register');
    await waitForKeys(page);
    return page;
  }

  const digits = async (page: Page, testId: string): Promise<string> => ((await page.getByTestId(testId).textContent()) ?? '').replace(/\s+/g, '');

  async function safetyNumber(page: Page): Promise<string> {
    await page.getByRole('button', { name: 'Verify safety number' }).click();
    await page.getByTestId('safety-number').waitFor();
    await page.locator('.qr svg').waitFor();
    return digits(page, 'safety-number');
  }

  /** Every message body the server stored, and the database files' raw bytes (WAL included). */
  function stored(): { bodies: { kind: string; body: string }[]; raw: string } {
    const path = join(dir, 'data', 'chatd.db');
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      const bodies = db.prepare('SELECT kind, body FROM messages ORDER BY id').all() as { kind: string; body: string }[];
      const raw = ['', '-wal'].map((suffix) => (existsSync(path + suffix) ? readFileSync(path + suffix).toString('latin1') : '')).join('');
      return { bodies, raw };
    } finally {
      db.close();
    }
  }

  it('two people chat in an encrypted direct thread: the lock shows, the server holds no plaintext, the safety numbers match, verified shows', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    await startChat(alice, 'bob', { named: true });
    await alice.getByTestId('encryption').filter({ hasText: 'End-to-end encrypted' }).waitFor();
    await alice.locator('.thread .heading').getByTestId('lock').waitFor();
    const said = ['the meeting point is the old mill', 'bring the blue folder'];
    await say(alice, said[0] as string);
    await openOnArrival(bob, 'alice', said[0] as string);
    await message(bob, said[0] as string).waitFor();
    await bob.getByTestId('encryption').filter({ hasText: 'End-to-end encrypted' }).waitFor();
    await bob.locator('.thread-item', { hasText: 'alice' }).getByTestId('lock').waitFor();
    await say(bob, said[1] as string);
    await message(alice, said[1] as string).waitFor();
    // Both sent: neither the messages table nor the database files hold the words.
    await alice.locator('.message.own .ticks').first().waitFor();
    const { bodies, raw } = stored();
    const encrypted = bodies.filter((row) => row.kind === 'e2e');
    assert.equal(encrypted.length, 2, `two encrypted messages stored: ${JSON.stringify(bodies.map((row) => row.kind))}`);
    for (const text of said) {
      assert.ok(!bodies.some((row) => row.body.includes(text)), `the server stored "${text}" in plaintext`);
      assert.ok(!raw.includes(text), `"${text}" is in the database files`);
    }
    // The safety numbers: 60 digits, the same on both sides.
    const [seenByAlice, seenByBob] = [await safetyNumber(alice), await safetyNumber(bob)];
    assert.match(seenByAlice, /^\d{60}$/);
    assert.equal(seenByAlice, seenByBob);
    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: join(ARTIFACTS, 'web-e2e-safety-number.png') });
    assert.equal(await alice.getByTestId('verified').count(), 0, 'nobody is verified before it is marked');
    await alice.getByRole('button', { name: 'Mark as verified' }).click();
    await alice.locator('.thread .heading').getByTestId('verified').waitFor();
    await alice.locator('.thread-item', { hasText: 'bob' }).getByTestId('verified').waitFor();
    await alice.getByRole('button', { name: 'Unverify' }).waitFor();

    // A reload keeps the device's keys (they live in localStorage with the rest of the store): the same
    // standing, the same safety number, the old messages still open, bob still verified.
    const thisBrowser = async (): Promise<string> => {
      await alice.getByRole('button', { name: 'Devices' }).click();
      const row = alice.getByRole('list', { name: 'Your devices' }).locator('li', { hasText: 'this browser' });
      const code = ((await row.locator('.code-inline').textContent()) ?? '').replace(/\s+/g, '');
      await alice.getByRole('button', { name: 'Devices' }).click();
      return code;
    };
    const deviceCode = await thisBrowser();
    assert.match(deviceCode, /^\d{60}$/);
    await alice.reload();
    await alice.getByTestId('connection').filter({ hasText: 'Online' }).waitFor();
    // (A device that made the account key says `approved` after a restart: it holds the key, as any approved one.)
    await alice.locator('.shell[data-standing=approved]').waitFor();
    for (const text of said) await message(alice, text).waitFor();
    await alice.locator('.thread-item', { hasText: 'bob' }).getByTestId('verified').waitFor();
    assert.equal(await safetyNumber(alice), seenByAlice);
    assert.equal(await thisBrowser(), deviceCode, "the device's own keys are the same after the reload");
    await say(bob, 'still there after the reload?');
    await message(alice, 'still there after the reload?').waitFor();
    for (const page of [alice, bob]) assert.equal(await page.locator('.banner.alarm').count(), 0, 'no security warning on an ordinary chat');
  });

  it('a second browser of the same user waits for approval, is approved after comparing its code, reads new messages, and can be removed; a device whose code does not match is rejected', async () => {
    const carol = await person('carol');
    const dan = await person('dan');
    await startChat(carol, 'dan', { named: true });
    await carol.getByTestId('encryption').filter({ hasText: 'End-to-end encrypted' }).waitFor();
    await say(carol, 'before the new device');
    await openOnArrival(dan, 'carol', 'before the new device');
    await message(dan, 'before the new device').waitFor();

    const laptop = await browserOf('carol', 'login');
    await laptop.locator('.shell[data-standing=pending]').waitFor();
    await laptop.getByText('This device waits for approval: open chatd on one of your other devices and compare this code').waitFor();
    const shown = await digits(laptop, 'own-fingerprint');
    assert.match(shown, /^\d{60}$/);
    // On the first device: the request, with the same code.
    const request = carol.getByTestId('device-request');
    await request.getByText('A new device wants to join your account').waitFor();
    assert.equal(await digits(carol, 'request-fingerprint'), shown);
    await carol.screenshot({ path: join(ARTIFACTS, 'web-e2e-device-request.png') });
    await laptop.screenshot({ path: join(ARTIFACTS, 'web-e2e-pending-device.png') });
    await request.getByRole('button', { name: 'Approve' }).click();
    await request.waitFor({ state: 'detached' });
    await carol.getByTestId('history-offer').waitFor();
    await laptop.locator('.shell[data-standing=approved]').waitFor();
    assert.equal(await laptop.getByTestId('own-fingerprint').count(), 0, 'the approval banner is gone');

    // What was sent before it joined is explained, not shown raw; what is sent now, it reads.
    await laptop.locator('.thread-item', { hasText: 'dan' }).click();
    await laptop.locator('.message.e2e-problem', { hasText: 'Not readable on this device' }).waitFor();
    assert.equal(await laptop.getByText('ciphertext').count(), 0);
    await say(dan, 'welcome, new device');
    await message(laptop, 'welcome, new device').waitFor();
    await message(carol, 'welcome, new device').waitFor();
    await say(laptop, 'hello from the laptop');
    await message(dan, 'hello from the laptop').waitFor();
    await message(carol, 'hello from the laptop').waitFor();
    for (const page of [carol, laptop, dan]) assert.equal(await page.locator('.banner.alarm').count(), 0, 'no security warning around an approval');

    // The device list: this browser and the approved laptop; removing the laptop logs it out.
    await carol.getByRole('button', { name: 'Devices' }).click();
    const devices = carol.getByRole('list', { name: 'Your devices' });
    await devices.locator('li', { hasText: 'this browser' }).waitFor();
    assert.equal(await devices.locator('li.device').count(), 2);
    await devices.locator('li', { hasText: 'approved' }).getByRole('button', { name: 'Remove' }).click();
    await laptop.getByRole('button', { name: 'Log in' }).waitFor();
    await devices.locator('li', { hasText: 'approved' }).waitFor({ state: 'detached' });

    // A device whose code does not match is rejected: it is revoked and ends on the login screen.
    const stranger = await browserOf('carol', 'login');
    await stranger.locator('.shell[data-standing=pending]').waitFor();
    await carol.getByTestId('device-request').getByRole('button', { name: 'Reject' }).click();
    await stranger.getByRole('button', { name: 'Log in' }).waitFor();
    await carol.getByTestId('device-request').waitFor({ state: 'detached' });
  });

  it("a contact's safety number changes: the thread warns, and sends to a verified contact wait until the new number is accepted", async () => {
    const erin = await person('erin');
    const fay = await person('fay');
    await startChat(erin, 'fay', { named: true });
    await erin.getByTestId('encryption').filter({ hasText: 'End-to-end encrypted' }).waitFor();
    await say(erin, 'first words');
    await openOnArrival(fay, 'erin', 'first words');
    await message(fay, 'first words').waitFor();
    await erin.getByRole('button', { name: 'Verify safety number' }).click();
    await erin.getByRole('button', { name: 'Mark as verified' }).click();
    await erin.locator('.thread .heading').getByTestId('verified').waitFor();
    await erin.getByRole('button', { name: 'Close' }).click();

    // fay starts over with a new account key (she lost her devices, say): erin's page must not take it quietly.
    const phone = await logIn(server.url, 'fay', 'correct horse', 'new phone');
    const raw = await connectAuthenticated(server.wsUrl, phone.token);
    // (A device that is not approved resets only with the password.)
    await raw.socket.expect({ type: 'account_publish', ...accountPublication(phone.userId), reset: true, password: 'correct horse' }, 'ok');
    await erin.getByTestId('identity-warning').filter({ hasText: "fay's safety number changed" }).waitFor();
    const held = erin.getByTestId('held');
    await held.filter({ hasText: 'Your messages wait' }).waitFor();
    assert.equal(await erin.locator('.thread .heading').getByTestId('verified').count(), 0, 'no longer verified');
    await say(erin, 'is this still you?');
    await erin.getByTestId('pending').filter({ hasText: 'is this still you?' }).waitFor();
    await erin.screenshot({ path: join(ARTIFACTS, 'web-e2e-identity-changed.png') });
    await held.getByRole('button', { name: 'Accept the new safety number' }).click();
    await held.waitFor({ state: 'detached' });
    await erin.getByTestId('pending').waitFor({ state: 'detached' });
    await erin.locator('.message.own', { hasText: 'is this still you?' }).locator('.ticks').waitFor();
    raw.socket.close();

    // A damaged key store stops the page rather than make a new identity behind erin's back; it is left as it was.
    // (These functions run in the page: its localStorage, typed here without the DOM library.)
    const damage = (): string => {
      const storage = (globalThis as unknown as { localStorage: PageStorage }).localStorage;
      // The store's document, not the search index beside it (`<key>.search`, there once a message was decrypted).
      const key = Object.keys(storage).find((name) => /^chatd\.store\.\d+\.\d+$/.test(name)) as string;
      const document = JSON.parse(storage.getItem(key) as string) as { deviceSecrets: { sign_secret: string } };
      document.deviceSecrets.sign_secret = 'not a key';
      storage.setItem(key, JSON.stringify(document));
      return key;
    };
    const read = (name: string): string | null => (globalThis as unknown as { localStorage: PageStorage }).localStorage.getItem(name);
    const key = await erin.evaluate(damage);
    const damaged = await erin.evaluate(read, key);
    await erin.reload();
    await erin.getByText('chatd cannot start on this device').waitFor();
    assert.equal(await erin.evaluate(read, key), damaged);
  });

  it('a group whose members all have approved devices is created encrypted; every member reads it, the server does not', async () => {
    const [ian, joan, kira] = [await person('ian'), await person('joan'), await person('kira')];
    await ian.getByRole('button', { name: 'New group' }).click();
    await ian.getByLabel('Group name').fill('Night train');
    await ian.getByLabel('Members').fill('joan kira');
    await ian.getByRole('button', { name: 'Create group' }).click();
    await ian.getByRole('heading', { name: 'Night train' }).waitFor();
    await ian.getByTestId('encryption').filter({ hasText: 'End-to-end encrypted' }).waitFor();
    await say(ian, 'platform nine, bring snacks');
    for (const page of [joan, kira]) {
      await page.locator('.thread-item', { hasText: 'Night train' }).getByTestId('lock').waitFor();
      await openOnArrival(page, 'Night train', 'platform nine, bring snacks');
      await message(page, 'platform nine, bring snacks').waitFor();
    }
    await say(kira, 'snacks: yes');
    await message(ian, 'snacks: yes').waitFor();
    const { bodies, raw } = stored();
    for (const text of ['platform nine', 'snacks: yes']) {
      assert.ok(!bodies.some((row) => row.body.includes(text)), `the server stored "${text}" in plaintext`);
      assert.ok(!raw.includes(text));
    }
  });

  it('after approving a new device, its owner shares the message history: the new device reads what came before it', async () => {
    const gus = await person('gus');
    const hal = await person('hal');
    await startChat(gus, 'hal', { named: true });
    await gus.getByTestId('encryption').filter({ hasText: 'End-to-end encrypted' }).waitFor();
    await say(gus, 'old news from gus');
    await openOnArrival(hal, 'gus', 'old news from gus');
    await message(hal, 'old news from gus').waitFor();
    await say(hal, 'old news from hal');
    await message(gus, 'old news from hal').waitFor();

    const tablet = await browserOf('gus', 'login');
    await tablet.locator('.shell[data-standing=pending]').waitFor();
    assert.equal(await digits(gus, 'request-fingerprint'), await digits(tablet, 'own-fingerprint'));
    await gus.getByTestId('device-request').getByRole('button', { name: 'Approve' }).click();
    await tablet.locator('.shell[data-standing=approved]').waitFor();
    await gus.getByRole('button', { name: 'Share your message history with this device' }).click();
    await gus.getByTestId('history-shared').filter({ hasText: /History shared: [1-9]\d* messages/ }).waitFor();
    await tablet.getByTestId('history-incoming').filter({ hasText: 'Message history received' }).waitFor();
    await tablet.locator('.thread-item', { hasText: 'hal' }).click();
    await message(tablet, 'old news from gus').waitFor();
    await message(tablet, 'old news from hal').waitFor();
    assert.equal(await tablet.locator('.message.e2e-problem').count(), 0, 'every earlier message opens');
  });

  it('messages that do not open show why (forged, not encrypted for this device), never the envelope', async () => {
    const lou = await person('lou');
    const max = await person('max');
    await startChat(lou, 'max', { named: true });
    await lou.getByTestId('encryption').filter({ hasText: 'End-to-end encrypted' }).waitFor();
    await say(lou, 'the real one');
    await openOnArrival(max, 'lou', 'the real one');
    await message(max, 'the real one').waitFor();

    // A device of max's that he approves with his account key (taken from his browser's store here) writes
    // to the thread: a forged envelope (random bytes), and one well signed but whose key is sealed for
    // another device than lou's. The server takes both (it cannot tell); lou's page must not show them as text.
    const accountSecret = await max.evaluate(() => {
      const storage = (globalThis as unknown as { localStorage: PageStorage }).localStorage;
      // The store's document, not the search index beside it (`<key>.search`, there once a message was decrypted).
      const key = Object.keys(storage).find((name) => /^chatd\.store\.\d+\.\d+$/.test(name)) as string;
      return (JSON.parse(storage.getItem(key) as string) as { account: { account_secret: string } }).account.account_secret;
    });
    const login = await logIn(server.url, 'max', 'correct horse', 'forger');
    const { socket } = await connectAuthenticated(server.wsUrl, login.token);
    const forger = new TestDevice(login.userId, login.deviceId);
    await socket.expect({ type: 'keys_publish', ...forger.publication(certify(forger, accountSecret)) }, 'ok');
    const { threads } = (await socket.expect({ type: 'threads' }, 'threads')) as unknown as { threads: { id: number; peer: { id: number } }[] };
    const thread = threads[0] as { id: number; peer: { id: number } };
    const keys = (await socket.expect({ type: 'keys_get', user_ids: [login.userId, thread.peer.id] }, 'keys')) as unknown as {
      devices: { user_id: number; device_id: number; enc_key: string; account_signature: string | null; revoked: boolean }[];
    };
    const approved = keys.devices.filter((device) => device.account_signature !== null && !device.revoked);
    await socket.expect({ type: 'send', thread_id: thread.id, client_msg_id: 'forged-1', kind: 'e2e', body: envelope(login.deviceId, approved.map((d) => d.device_id)) }, 'ack');
    const notLou = approved.find((device) => device.user_id === login.userId) as { enc_key: string };
    const recipients = approved.map((d) => ({ deviceId: d.device_id, encKey: d.user_id === thread.peer.id ? notLou.enc_key : d.enc_key }));
    const misdirected = sealEnvelope(forger, { threadId: thread.id, clientMsgId: 'misdirected-1', senderUserId: login.userId }, { text: 'for other eyes' }, recipients);
    await socket.expect({ type: 'send', thread_id: thread.id, client_msg_id: 'misdirected-1', kind: 'e2e', body: misdirected }, 'ack');
    socket.close();

    await lou.locator('.message.e2e-problem[data-e2e=bad_signature]', { hasText: 'failed its authenticity check (forged or altered)' }).waitFor();
    await lou.locator('.message.e2e-problem[data-e2e=undecryptable]', { hasText: 'Not readable on this device' }).waitFor();
    assert.equal(await lou.getByText('for other eyes').count(), 0);
    assert.equal(await lou.getByText('ciphertext').count(), 0, 'never the raw envelope');
    await message(lou, 'the real one').waitFor();
  });

  it('a waiting device whose other devices are lost starts over with a new account key: the old device is warned, the contact sees a new safety number', async () => {
    const olga = await person('olga');
    const pia = await person('pia');
    await startChat(olga, 'pia', { named: true });
    await olga.getByTestId('encryption').filter({ hasText: 'End-to-end encrypted' }).waitFor();
    await say(olga, 'from the old phone');
    await openOnArrival(pia, 'olga', 'from the old phone');
    await message(pia, 'from the old phone').waitFor();

    const newPhone = await browserOf('olga', 'login');
    await newPhone.locator('.shell[data-standing=pending]').waitFor();
    await newPhone.getByRole('button', { name: 'I no longer have any of my other devices' }).click();
    // The password is asked (a device that is not approved resets only with it); a wrong one changes nothing.
    await newPhone.getByLabel('Your password').fill('wrong horse');
    await newPhone.getByRole('button', { name: 'Start over with a new account key' }).click();
    await newPhone.locator('.reset .error').waitFor();
    assert.equal(await newPhone.locator('.shell[data-standing=pending]').count(), 1);
    await newPhone.getByLabel('Your password').fill('correct horse');
    await newPhone.getByRole('button', { name: 'Start over with a new account key' }).click();
    await newPhone.locator('.shell[data-standing=created]').waitFor();
    assert.equal(await newPhone.getByTestId('own-fingerprint').count(), 0, 'no longer waiting');

    // The old device did not make the reset: it says so, and waits for approval like a new one.
    await olga.locator('.banner.alarm', { hasText: 'Your account key was reset on another of your devices' }).waitFor();
    await olga.locator('.shell[data-standing=pending]').waitFor();
    await pia.getByTestId('identity-warning').filter({ hasText: "olga's safety number changed" }).waitFor();
    // The new phone writes in the encrypted chat, and pia reads it.
    await newPhone.locator('.thread-item', { hasText: 'pia' }).click();
    await say(newPhone, 'from the new phone');
    await message(pia, 'from the new phone').waitFor();
  });
});
