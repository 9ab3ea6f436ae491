import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Connection } from '../../src/client/connection.js';
import { ClientError } from '../../src/client/errors.js';
import { Outbox, type StatusChange } from '../../src/client/outbox.js';
import type { RequestJson } from '../../src/client/requests.js';
import { MemoryStore, type OutboxEntry } from '../../src/client/store.js';

/** The outbox stored an entry (the `pending` status follows the store write). */
function storedCount(statuses: StatusChange[], count: number): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (statuses.filter((s) => s.status === 'pending').length >= count) resolve();
      else setImmediate(check);
    };
    check();
  });
}

/** A connection that records what the outbox sends and lets the test answer each request. */
function fakeConnection(): { connection: Connection; sent: Array<{ frame: RequestJson; reply: (frame: unknown) => void; fail: (error: ClientError) => void }> } {
  const sent: Array<{ frame: RequestJson; reply: (frame: unknown) => void; fail: (error: ClientError) => void }> = [];
  const connection = {
    welcome: undefined,
    send: (frame: RequestJson, reply: (frame: unknown) => void, fail: (error: ClientError) => void) => sent.push({ frame, reply, fail }),
  } as unknown as Connection;
  return { connection, sent };
}

const ack = (entry: Pick<OutboxEntry, 'thread_id' | 'client_msg_id'>, seq: number) => ({
  type: 'ack', id: 'x', thread_id: entry.thread_id, seq, message_id: 100 + seq, client_msg_id: entry.client_msg_id, created_at: 5, duplicate: false,
});

function outbox(store = new MemoryStore()): { outbox: Outbox; statuses: StatusChange[]; store: MemoryStore } {
  const statuses: StatusChange[] = [];
  return { outbox: new Outbox({ store, statusChanged: (change) => statuses.push(change), maxInFlight: 8, reportError: (error) => assert.fail(String(error)) }), statuses, store };
}

describe('the outbox with changes', () => {
  it('sends edits, deletes for everyone and reactions as their frames, in the thread\'s turn after its sends', async () => {
    const { outbox: box, store, statuses } = outbox();
    const { connection, sent } = fakeConnection();
    const base = { thread_id: 3, created_at: 1 };
    const sendDone = box.add({ ...base, client_msg_id: 's1', kind: 'text', body: { text: 'hi' }, reply_to: 40, mentions: [7] });
    const editDone = box.addChange({ ...base, client_msg_id: 'e1', kind: 'text', body: { text: 'hi!' }, mentions: [7, 8], change: { type: 'edit', message_id: 41 } });
    const deleteDone = box.addChange({ ...base, client_msg_id: 'd1', kind: 'text', body: null, change: { type: 'delete', message_id: 42 } });
    const reactDone = box.addChange({ ...base, client_msg_id: 'r1', kind: 'text', body: null, change: { type: 'reaction', message_id: 41, emoji: '👍', on: false } });
    await storedCount(statuses, 4);
    assert.equal((await store.load()).outbox.length, 4, 'every change is stored before it is sent');
    box.attach(connection);
    assert.deepEqual(sent.map((item) => item.frame), [
      { type: 'send', thread_id: 3, client_msg_id: 's1', kind: 'text', body: { text: 'hi' }, reply_to: 40, mentions: [7] },
      { type: 'edit', message_id: 41, client_msg_id: 'e1', kind: 'text', body: { text: 'hi!' }, mentions: [7, 8] },
      { type: 'delete', message_id: 42, for: 'everyone', client_msg_id: 'd1' },
      { type: 'react', message_id: 41, emoji: '👍', on: false, client_msg_id: 'r1' },
    ]);
    sent[0]?.reply(ack({ thread_id: 3, client_msg_id: 's1' }, 1));
    sent[1]?.reply(ack({ thread_id: 3, client_msg_id: 'e1' }, 2));
    sent[2]?.reply({ type: 'ok', id: 'x' });
    sent[3]?.reply(ack({ thread_id: 3, client_msg_id: 'r1' }, 3));
    assert.equal((await sendDone).seq, 1);
    assert.equal((await editDone)?.seq, 2);
    assert.equal(await deleteDone, undefined, 'ok: nothing was stored (deleted already)');
    assert.equal((await reactDone)?.seq, 3);
    assert.equal((await store.load()).outbox.length, 0);
  });

  it('sends a change again on the next connection until it is acked, and fails it for good on a refusal', async () => {
    const { outbox: box, statuses } = outbox();
    const first = fakeConnection();
    const edit = box.addChange({ thread_id: 3, created_at: 1, client_msg_id: 'e1', kind: 'text', body: { text: 'x' }, change: { type: 'edit', message_id: 41 } });
    const react = box.addChange({ thread_id: 4, created_at: 1, client_msg_id: 'r1', kind: 'text', body: null, change: { type: 'reaction', message_id: 50, emoji: '🎉', on: true } });
    await storedCount(statuses, 2);
    box.attach(first.connection);
    assert.equal(first.sent.length, 2);
    box.detach(); // the connection dropped before any reply
    const second = fakeConnection();
    box.attach(second.connection);
    assert.deepEqual(second.sent.map((item) => item.frame.type), ['edit', 'react']);
    second.sent[0]?.fail(new ClientError('edit_window_passed', 'too late', false));
    second.sent[1]?.reply(ack({ thread_id: 4, client_msg_id: 'r1' }, 9));
    await assert.rejects(edit, { code: 'edit_window_passed' });
    assert.equal((await react)?.seq, 9);
    assert.deepEqual(statuses.filter((s) => s.client_msg_id === 'e1').map((s) => s.status), ['pending', 'failed']);
  });

  it('fails a plaintext edit queued for a thread that must now be encrypted, but not a reaction (it carries no body)', async () => {
    const store = new MemoryStore();
    const statuses: StatusChange[] = [];
    const box = new Outbox({ store, statusChanged: (change) => statuses.push(change), maxInFlight: 8, reportError: () => undefined, mustEncrypt: () => true });
    const { connection, sent } = fakeConnection();
    const edit = box.addChange({ thread_id: 3, created_at: 1, client_msg_id: 'e1', kind: 'text', body: { text: 'x' }, change: { type: 'edit', message_id: 41 } });
    const react = box.addChange({ thread_id: 3, created_at: 1, client_msg_id: 'r1', kind: 'text', body: null, change: { type: 'reaction', message_id: 41, emoji: '👍', on: true } });
    await storedCount(statuses, 2);
    box.attach(connection);
    await assert.rejects(edit, { code: 'encryption_required' });
    assert.deepEqual(sent.map((item) => item.frame.type), ['react']);
    sent[0]?.reply({ type: 'ok', id: 'x' });
    assert.equal(await react, undefined);
  });
});
