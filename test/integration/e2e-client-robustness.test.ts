import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AccountApi, ChatClient, MemoryStore } from '../../src/client/node.js';
import { E2E_FIELDS } from '../../src/client/e2e-records.js';
import { ClientEvents } from '../helpers/client-events.js';
import { FrameMitm } from '../helpers/frame-mitm.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/**
 * The encrypting SDK where a first review of protocol 2 found it weak: sticky
 * encryption, held delivery, sends across dropped links, a restored store; over
 * the real server; flaky links are a frame man in the middle.
 */

/** Everything a client tells the app, waited on by event. */
class Watch extends ClientEvents {}

describe('the encrypting SDK over flaky links and with stored state', { timeout: 120_000 }, () => {
  let server: ServerProcess;
  const clients: ChatClient[] = [];
  const mitms: FrameMitm[] = [];
  let names = 0;

  before(async () => {
    const dir = tempDir();
    server = await startServer(['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n')]);
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    await Promise.all(mitms.map((mitm) => mitm.close()));
    await server.stop();
  });

  async function user(prefix: string): Promise<string> {
    const name = `${prefix}${++names}`;
    await new AccountApi(server.url).register({ username: name, password: 'correct horse' });
    return name;
  }

  type Device = Watch & { token: string; store: MemoryStore };

  async function device(username: string, options: { store?: MemoryStore; token?: string; via?: string; online?: boolean; encryption?: boolean | 'always'; requestTimeoutMs?: number } = {}): Promise<Device> {
    const token = options.token ?? (await new AccountApi(server.url).login({ username, password: 'correct horse', device_name: 'review', platform: 'bot' })).token;
    const store = options.store ?? new MemoryStore();
    const client = new ChatClient({ server: options.via ?? server.url, token, encryption: options.encryption ?? true, store, reconnect: { initialDelayMs: 50, maxDelayMs: 200 }, requestTimeoutMs: options.requestTimeoutMs ?? 3000 });
    clients.push(client);
    const watch = new Watch(client);
    await client.start();
    if (options.online !== false) {
      await client.whenOnline();
      await watch.until(() => watch.standings[0], 'the account standing');
    }
    return Object.assign(watch, { token, store });
  }

  async function mitm(): Promise<FrameMitm> {
    const made = await FrameMitm.start(server.wsUrl);
    mitms.push(made);
    return made;
  }

  it('a send right after an encrypted one is encrypted too; the server never sees its text', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const watcher = await mitm();
    const a = await device(alice, { via: watcher.url });
    const b = await device(bob);
    const thread = (await a.client.openDirect(bob)).id;
    await Promise.all([
      a.client.send(thread, { text: 'first, encrypted' }, { encrypted: true }),
      a.client.send(thread, { text: 'second, sticky' }),
    ]);
    const second = await b.text(thread, 'second, sticky');
    assert.equal(second.kind, 'e2e');
    assert.equal(second.e2e?.status, 'ok');
    assert.ok(!watcher.seen.some((frame) => frame.includes('second, sticky')), 'the follow-up never passed in the clear');
  });

  it('a plaintext entry stored before the thread became encrypted fails with encryption_required at the next start', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a0 = await device(alice);
    const b = await device(bob);
    const thread = (await a0.client.openDirect(bob)).id;
    await a0.client.send(thread, { text: 'sealed' }, { encrypted: true });
    await a0.client.close();
    // Queued in plaintext (an older client, or before the thread was seen encrypted) and still in the store.
    await a0.store.putOutbox({ client_msg_id: 'queued-clear', thread_id: thread, kind: 'text', body: { text: 'queued in the clear' }, created_at: Date.now() });
    const a = await device(alice, { store: a0.store, token: a0.token });
    const failed = await a.until(() => a.statuses.find((s) => s.client_msg_id === 'queued-clear' && s.status === 'failed'), 'queued-clear to fail');
    assert.equal(failed.error?.code, 'encryption_required');
    assert.equal(a.client.pending().length, 0);
    await a.client.send(thread, { text: 'after' });
    await b.text(thread, 'after');
    assert.ok(!b.messages.some((m) => (m.body as { text?: string })?.text === 'queued in the clear'));
  });

  it('a plaintext entry stored before `encryption: \'always\'` was turned on fails with encryption_required', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a0 = await device(alice);
    const b = await device(bob);
    const thread = (await a0.client.openDirect(bob)).id;
    await a0.client.close();
    await a0.store.putOutbox({ client_msg_id: 'before-always', thread_id: thread, kind: 'text', body: { text: 'queued before always' }, created_at: Date.now() });
    const a = await device(alice, { store: a0.store, token: a0.token, encryption: 'always' });
    const failed = await a.until(() => a.statuses.find((s) => s.client_msg_id === 'before-always' && s.status === 'failed'), 'before-always to fail');
    assert.equal(failed.error?.code, 'encryption_required');
    await a.client.send(thread, { text: 'under always' });
    assert.equal((await b.text(thread, 'under always')).kind, 'e2e');
    assert.ok(!b.messages.some((m) => (m.body as { text?: string })?.text === 'queued before always'));
  });

  it('an encrypted send waiting through several dropped connections is sent once keys settle, not failed', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a0 = await device(alice);
    const b = await device(bob);
    const thread = (await a0.client.openDirect(bob)).id;
    await a0.client.send(thread, { text: 'm1' }, { encrypted: true });
    await a0.client.close();
    const flaky = await mitm();
    let drops = 0;
    flaky.rewrite = (frame, link, direction) => {
      if (direction === 'up' && frame.type === 'keys_get' && drops < 5) {
        drops++;
        setImmediate(() => link.close());
        return null;
      }
      return frame;
    };
    const a = await device(alice, { store: a0.store, token: a0.token, via: flaky.url, online: false });
    await a.client.send(thread, { text: 'through a flaky minute' });
    assert.equal(drops, 5);
    assert.equal((await b.text(thread, 'through a flaky minute')).e2e?.status, 'ok');
  });

  it('a message that arrives while the connection drops as keys settle is held and given again, never unknown_sender', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a = await device(alice);
    const b0 = await device(bob);
    const thread = (await a.client.openDirect(bob)).id;
    await a.client.send(thread, { text: 'm1' }, { encrypted: true });
    await b0.text(thread, 'm1');
    await b0.client.close();
    await a.client.send(thread, { text: 'm2 while bob was away' }, { encrypted: true });
    const flaky = await mitm();
    let dropped = 0;
    flaky.rewrite = (frame, link, direction) => {
      if (direction === 'up' && frame.type === 'keys_get' && dropped === 0) {
        dropped++;
        setImmediate(() => link.close());
        return null;
      }
      return frame;
    };
    const b = await device(bob, { store: b0.store, token: b0.token, via: flaky.url, online: false });
    const m2 = await b.text(thread, 'm2 while bob was away');
    assert.equal(dropped, 1);
    assert.equal(m2.e2e?.status, 'ok');
    await a.client.send(thread, { text: 'm3' }, { encrypted: true });
    await b.text(thread, 'm3');
    assert.deepEqual(b.messages.filter((m) => m.thread_id === thread).map((m) => [m.seq, m.e2e?.status]), [[2, 'ok'], [3, 'ok']]);
  });

  it('a server that answers every key fetch for a sender with an error: the message is marked at once, no reconnect storm, other threads delivered', async () => {
    const [alice, bob, carol] = [await user('alice'), await user('bob'), await user('carol')];
    const a = await device(alice);
    const b0 = await device(bob);
    const c = await device(carol);
    const withAlice = (await a.client.openDirect(bob)).id;
    const withCarol = (await c.client.openDirect(bob)).id;
    await c.client.send(withCarol, { text: 'carol-1' }, { encrypted: true });
    await b0.text(withCarol, 'carol-1');
    await b0.client.close();
    // Alice is new to bob (never pinned) and writes while bob is away; so does carol, whom bob knows.
    await a.client.send(withAlice, { text: 'from alice' }, { encrypted: true });
    await c.client.send(withCarol, { text: 'carol-2' }, { encrypted: true });
    const aliceId = a.client.user?.id;
    assert.ok(aliceId);
    const failing = await mitm();
    let connects = 0;
    let refused = 0;
    failing.rewrite = (frame, link, direction) => {
      if (direction === 'down' && frame.type === 'welcome') connects++;
      // Alice's keys never come: not in a reply that lists several users, and an `internal` error for a fetch of hers.
      if (direction === 'down' && link.answers(frame) === 'keys_get' && Array.isArray(frame.accounts)) {
        const strip = <T extends { user_id?: number }>(list: T[]): T[] => list.filter((x) => x.user_id !== aliceId);
        return { ...frame, accounts: strip(frame.accounts as { user_id?: number }[]), devices: strip((frame.devices ?? []) as { user_id?: number }[]) };
      }
      if (direction === 'up' && frame.type === 'keys_get' && Array.isArray(frame.user_ids) && frame.user_ids.includes(aliceId)) {
        refused++;
        link.toClient({ type: 'error', id: frame.id, error: { code: 'internal', message: 'boom', retryable: true } });
        return null;
      }
      return frame;
    };
    const b = await device(bob, { store: b0.store, token: b0.token, via: failing.url, online: false });
    // Not opened: the app gets it as it came (the envelope), marked.
    const fromAlice = await b.until(() => b.messages.find((m) => m.thread_id === withAlice), "alice's message");
    assert.equal(fromAlice.e2e?.status, 'unknown_sender', 'marked at once, not held for a server error');
    assert.equal((await b.text(withCarol, 'carol-2')).e2e?.status, 'ok');
    await c.client.send(withCarol, { text: 'carol-3' }, { encrypted: true });
    assert.equal((await b.text(withCarol, 'carol-3')).e2e?.status, 'ok');
    assert.ok(refused >= 1);
    assert.equal(connects, 1, 'one connection: nothing was dropped to redeliver');
    assert.equal(b.messages.filter((m) => m.thread_id === withAlice).length, 1, 'given once');
  });

  it('a connection dropped to redeliver a held message does not reset the reconnect backoff', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a = await device(alice);
    const b0 = await device(bob);
    await b0.client.close();
    // Bob has never seen alice's keys: the thread is new to him.
    const thread = (await a.client.openDirect(bob)).id;
    await a.client.send(thread, { text: 'from alice' }, { encrypted: true });
    const aliceId = a.client.user?.id;
    const silent = await mitm();
    // Every fetch that could bring alice's keys (hers, or all contacts') goes unanswered: it times out on each
    // connection, which is then dropped to try again.
    silent.rewrite = (frame, _link, direction) =>
      direction === 'up' && frame.type === 'keys_get' && (!Array.isArray(frame.user_ids) || frame.user_ids.includes(aliceId)) ? null : frame;
    const delays: number[] = [];
    const b = await device(bob, { store: b0.store, token: b0.token, via: silent.url, online: false, requestTimeoutMs: 200 });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`waited 15 s for four reconnects: ${delays.join(', ')}`)), 15_000);
      b.client.on('state', (change) => {
        if (change.state !== 'offline' || change.retry_in_ms === undefined) return;
        delays.push(change.retry_in_ms);
        if (delays.length < 4) return;
        clearTimeout(timer);
        resolve();
      });
    });
    await b.client.close();
    // Backoff 50 ms doubling up to 200 (each delay between half and all of it): the fourth is at least 100 ms; reset each time, at most 50.
    assert.ok(delays[3]! >= 100, `the backoff grew: ${delays.join(', ')}`);
    assert.equal(b.messages.filter((m) => m.thread_id === thread).length, 0, 'held, never marked');
  });

  it('a device whose store is restored from before a rotation rotates past the server\'s counter and reads what is sent next', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const a = await device(alice);
    const b0 = await device(bob);
    const thread = (await a.client.openDirect(bob)).id;
    await a.client.send(thread, { text: 'before' }, { encrypted: true });
    await b0.text(thread, 'before');
    const backup = (await b0.store.load()).e2e;
    const fingerprint = b0.client.ownFingerprint();
    await b0.client.rotateKeys();
    await b0.client.rotateKeys();
    // Alice has heard of both rotations: what she hears after this is the restored device's.
    await a.until(() => (a.keys.filter((change) => change.reason === 'rotated').length >= 2 ? true : undefined), "alice hearing of bob's two rotations");
    const heard = a.keys.length;
    await b0.client.close();
    const restored = new MemoryStore();
    for (const field of E2E_FIELDS) if (backup[field] !== undefined) await restored.setE2e(field, backup[field] as never);
    const errors: unknown[] = [];
    const b = await device(bob, { store: restored, token: b0.token, online: false });
    b.client.on('error', (error) => errors.push(error));
    await b.client.whenOnline();
    assert.equal(b.client.ownFingerprint(), fingerprint, 'the same identity');
    assert.equal((await restored.load()).e2e.deviceSecrets?.counter, 4);
    // Sealed to the key of counter 3 (lost with the restore), it would be undecryptable: alice must know counter 4 first.
    await a.until(() => a.keys.slice(heard).find((change) => change.reason === 'rotated'), "alice hearing of the restored device's rotation past the server's counter");
    await a.client.send(thread, { text: 'after the restore' }, { encrypted: true });
    assert.equal((await b.text(thread, 'after the restore')).e2e?.status, 'ok');
    assert.deepEqual(errors.filter((e) => (e as { code?: string }).code === 'key_conflict'), []);
  });
});
