import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { notificationFor, previewOf } from '../../src/push/content.js';
import { retryDelay, skipReason } from '../../src/push/dispatcher.js';

const message = {
  thread_id: 7,
  message_id: 70,
  seq: 3,
  kind: 'text' as const,
  body: JSON.stringify({ text: 'see you at 9' }),
  sender_name: 'Alice',
  thread_kind: 'direct' as const,
  thread_title: null,
  created_at: 1_000,
};
const settings = { preview: true, maxAgeMs: 60_000 };

describe('push notification content', () => {
  it('direct: titled with the sender, the text as body; group: titled with the group, the sender before the text', () => {
    const direct = notificationFor(message, 4, settings);
    assert.deepEqual([direct.title, direct.body, direct.badge, direct.collapseKey, direct.expiresAt], ['Alice', 'see you at 9', 4, 'thread-7', 61_000]);
    assert.deepEqual(direct.data, { thread_id: '7', seq: '3', message_id: '70', encrypted: 'false' });
    const group = notificationFor({ ...message, thread_kind: 'group', thread_title: 'Climbing' }, 1, settings);
    assert.deepEqual([group.title, group.body], ['Climbing', 'Alice: see you at 9']);
  });

  it('says only "New message" for end-to-end encrypted messages and with previews off', () => {
    for (const n of [notificationFor({ ...message, kind: 'e2e' }, 1, settings), notificationFor(message, 1, { ...settings, preview: false })]) {
      assert.equal(n.title, undefined);
      assert.equal(n.body, 'New message');
      assert.doesNotMatch(JSON.stringify(n), /see you|Alice/);
    }
  });

  it('previews: one line, at most 180 characters, none for bodies without text', () => {
    const table: Array<[string, string | undefined]> = [
      [JSON.stringify({ text: 'a\n\n b' }), 'a b'],
      [JSON.stringify({ text: '   ' }), undefined],
      [JSON.stringify({ image: 'x' }), undefined],
      [JSON.stringify(null), undefined],
      ['not json', undefined],
      [JSON.stringify({ text: '😀'.repeat(200) }), `${'😀'.repeat(179)}…`],
    ];
    for (const [body, expected] of table) assert.equal(previewOf(body), expected, body.slice(0, 40));
  });
});

describe('push queue decisions', () => {
  const row: Parameters<typeof skipReason>[0] = { device_revoked: 0, push_token: 't', device_live: 0, delivered_seq: 1, read_seq: 2, seq: 3, muted: 0, left: 0, created_at: 1_000 };
  it('skips a notification the device no longer needs, and says why', () => {
    const table: Array<[Partial<typeof row>, number, string | undefined]> = [
      [{}, 2_000, undefined],
      [{ device_revoked: 1 }, 2_000, 'revoked'],
      [{ push_token: null }, 2_000, 'no_token'],
      [{ device_live: 1 }, 2_000, 'online'],
      [{ delivered_seq: 3 }, 2_000, 'delivered'],
      [{ left: 1 }, 2_000, 'left'],
      [{ read_seq: 3 }, 2_000, 'read'],
      [{ muted: 1 }, 2_000, 'muted'],
      [{}, 1_000 + 60_001, 'expired'],
    ];
    for (const [change, now, expected] of table) assert.equal(skipReason({ ...row, ...change }, now, 60_000), expected, JSON.stringify(change));
  });

  it('backs off exponentially with jitter between half and all of the step, capped at 5 minutes', () => {
    assert.equal(retryDelay(1_000, 1, () => 0), 500);
    assert.equal(retryDelay(1_000, 1, () => 1), 1_000);
    assert.equal(retryDelay(1_000, 4, () => 1), 8_000);
    assert.equal(retryDelay(1_000, 30, () => 1), 300_000);
  });
});
