import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { reconnectDelay } from '../../src/client/backoff.js';
import { newClientMsgId } from '../../src/client/ids.js';
import { FileStore } from '../../src/client/file-store.js';
import { Pacer } from '../../src/client/pacer.js';
import { webSocketUrl } from '../../src/client/socket.js';
import { tempDir } from '../helpers/tmp.js';

describe('client reconnect backoff', () => {
  const options = { initialDelayMs: 100, maxDelayMs: 1000 };
  it('doubles the ceiling per attempt up to the maximum', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 10].map((attempt) => reconnectDelay(attempt, options, () => 1)), [100, 200, 400, 800, 1000, 1000]);
  });
  it('waits at least half the ceiling, so a lone client never hammers the server', () => {
    assert.deepEqual([0, 1, 4].map((attempt) => reconnectDelay(attempt, options, () => 0)), [50, 100, 500]);
  });
});

describe('client frame pacing', () => {
  it('sends one second’s worth of frames at once and the rest as the rate allows', () => {
    let now = 0;
    const sent: number[] = [];
    const pacer = new Pacer(3, () => now);
    for (let i = 0; i < 5; i++) pacer.run(() => sent.push(i));
    assert.deepEqual(sent, [0, 1, 2]);
    pacer.stop();
    now += 1000;
    pacer.run(() => sent.push(9));
    assert.deepEqual(sent, [0, 1, 2, 9], 'stop drops what was queued; a second later the bucket is full again');
    pacer.stop();
  });
  it('sends urgent frames (auth, heartbeats) first, then requests written again, then the rest, each in the order they came', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let now = 0;
    const sent: string[] = [];
    const pacer = new Pacer(1, () => now);
    pacer.run(() => sent.push('a'));
    pacer.run(() => sent.push('b'));
    pacer.run(() => sent.push('again 1'), 'again');
    pacer.run(() => sent.push('c'));
    pacer.run(() => sent.push('ping'), 'urgent');
    pacer.run(() => sent.push('again 2'), 'again');
    pacer.run(() => sent.push('auth'), 'urgent');
    assert.deepEqual(sent, ['a'], 'one frame a second');
    for (let i = 0; i < 6; i++) {
      now += 1000;
      t.mock.timers.tick(1000);
    }
    assert.deepEqual(sent, ['a', 'ping', 'auth', 'again 1', 'again 2', 'b', 'c']);
    pacer.stop();
  });
});

describe('client WebSocket URL', () => {
  it('maps http to ws and https to wss, keeping a path prefix', () => {
    assert.equal(webSocketUrl('http://localhost:8080'), 'ws://localhost:8080/v1/ws');
    assert.equal(webSocketUrl('https://example.org/chat/'), 'wss://example.org/chat/v1/ws');
  });
});

describe('FileStore', () => {
  it('keeps the outbox, cursors and identity across instances, in order', async () => {
    const path = join(tempDir(), 'nested', 'store.json');
    const first = new FileStore(path);
    assert.deepEqual((await first.load()).outbox, []);
    const entry = (id: string) => ({ client_msg_id: id, thread_id: 1, kind: 'text' as const, body: { text: id }, created_at: 1 });
    // Not awaited one by one: writes are coalesced but each promise means "durable".
    await Promise.all([first.putOutbox(entry('a')), first.putOutbox(entry('b')), first.setCursor(3, 7), first.putOutbox(entry('c'))]);
    await first.deleteOutbox('b');
    await first.setCursor(3, 5); // cursors only move forward
    await first.setIdentity({ epoch: 'e1', user_id: 1, device_id: 2 });
    const state = await new FileStore(path).load();
    assert.deepEqual(state.outbox.map((e) => e.client_msg_id), ['a', 'c']);
    assert.deepEqual([...state.cursors], [[3, 7]]);
    assert.deepEqual(state.identity, { epoch: 'e1', user_id: 1, device_id: 2 });
  });

  it('reset forgets cursors and identity but keeps unsent messages', async () => {
    const path = join(tempDir(), 'store.json');
    const store = new FileStore(path);
    await store.load();
    await store.putOutbox({ client_msg_id: 'x', thread_id: 1, kind: 'text', body: 1, created_at: 1 });
    await store.setCursor(1, 4);
    await store.setIdentity({ epoch: 'e1', user_id: 1, device_id: 2 });
    await store.reset();
    const state = await new FileStore(path).load();
    assert.equal(state.identity, undefined);
    assert.equal(state.cursors.size, 0);
    assert.equal(state.outbox.length, 1);
  });
});

describe('the browser entry of chatd/client', () => {
  it('reaches no Node module and no ws, through any import', () => {
    const root = fileURLToPath(new URL('../../src/client/browser.ts', import.meta.url));
    const seen = new Set<string>();
    const offending: string[] = [];
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const match of readFileSync(file, 'utf8').matchAll(/^(?:import|export)(?!\s+type\b)[^;]*?from '([^']+)'/gm)) {
        const target = match[1] as string;
        if (target.startsWith('.')) visit(resolve(dirname(file), target.replace(/\.js$/, '.ts')));
        else offending.push(`${file} imports ${target}`);
      }
      if (/\bprocess\.|\bBuffer\b|\brequire\(/.test(readFileSync(file, 'utf8'))) offending.push(`${file} uses a Node global`);
    };
    visit(root);
    assert.ok(seen.size > 5, 'the walk followed the imports');
    assert.deepEqual(offending, []);
    assert.ok(readdirSync(dirname(root)).includes('node.ts'));
  });
});

describe('newClientMsgId', () => {
  it('makes version-7 UUIDs that carry their time and sort in the order they were made', () => {
    const now = Date.UTC(2026, 10, 23, 12, 0, 0);
    const ids = [now, now + 1, now + 2, now + 1000, now + 86_400_000].map((t) => newClientMsgId(t));
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(Number.parseInt(ids[0]!.replace('-', '').slice(0, 12), 16), now, 'the first 48 bits are the Unix milliseconds');
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(Array.from({ length: 1000 }, () => newClientMsgId(now))).size, 1000, 'ids of one millisecond differ by their random bits');
  });
});
