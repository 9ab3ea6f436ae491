import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attachmentsPreview, notificationFor, previewOf } from '../../src/push/content.js';
import { retryDelay, skipReason } from '../../src/push/dispatcher.js';

const message = {
  threadId: 7,
  messageId: 70,
  seq: 3,
  kind: 'text' as const,
  body: JSON.stringify({ text: 'see you at 9' }),
  attachments: null,
  senderName: 'Alice',
  threadKind: 'direct' as const,
  threadTitle: null,
  createdAt: 1_000,
};
const settings = { preview: true, maxAgeMs: 60_000 };

describe('push notification content', () => {
  it('a plaintext message with attachments and no text says what the first one is, counting the others; with text, the text', () => {
    const photo = { id: 'p', name: 'beach.jpg', size: 10, mime: 'image/jpeg', sha256: 'x' };
    const video = { id: 'v', name: 'clip.mp4', size: 10, mime: 'video/mp4', sha256: 'x' };
    const voice = { id: 'a', name: 'voice.ogg', size: 10, mime: 'audio/ogg', sha256: 'x', duration: 4200 };
    const pdf = { id: 'f', name: 'Q3   report.pdf', size: 10, mime: 'application/pdf', sha256: 'x' };
    const table: Array<[unknown[], string]> = [
      [[photo], 'Photo'],
      [[video], 'Video'],
      [[voice], 'Voice message'],
      [[pdf], 'File: Q3 report.pdf'],
      [[photo, pdf, video], 'Photo (+2)'],
      [[pdf, photo], 'File: Q3 report.pdf (+1)'],
      [[{ id: 'only-an-id' }], 'File'],
    ];
    for (const [attachments, expected] of table) {
      const n = notificationFor({ ...message, body: 'null', attachments: JSON.stringify(attachments) }, 1, settings);
      assert.deepEqual([n.title, n.body], ['Alice', expected], JSON.stringify(attachments));
    }
    const group = notificationFor({ ...message, threadKind: 'group', threadTitle: 'Climbing', body: 'null', attachments: JSON.stringify([photo]) }, 1, settings);
    assert.equal(group.body, 'Alice: Photo');
    const withText = notificationFor({ ...message, attachments: JSON.stringify([photo]) }, 1, settings);
    assert.equal(withText.body, 'see you at 9');
    // An encrypted one still says only that there is a message, and previews off hide the file name.
    assert.equal(notificationFor({ ...message, kind: 'e2e', attachments: JSON.stringify([{ id: 'p' }]) }, 1, settings).body, 'New message');
    assert.equal(notificationFor({ ...message, body: 'null', attachments: JSON.stringify([pdf]) }, 1, { ...settings, preview: false }).body, 'New message');
    assert.equal(attachmentsPreview(null), undefined);
    assert.equal(attachmentsPreview('[]'), undefined);
  });

  it('direct: titled with the sender, the text as body; group: titled with the group, the sender before the text', () => {
    const direct = notificationFor(message, 4, settings);
    assert.deepEqual([direct.title, direct.body, direct.badge, direct.collapseKey, direct.expiresAt], ['Alice', 'see you at 9', 4, 'thread-7', 61_000]);
    assert.deepEqual(direct.data, { thread_id: '7', seq: '3', message_id: '70', encrypted: 'false' });
    const group = notificationFor({ ...message, threadKind: 'group', threadTitle: 'Climbing' }, 1, settings);
    assert.deepEqual([group.title, group.body], ['Climbing', 'Alice: see you at 9']);
  });

  it('says only "New message" for end-to-end encrypted messages and with previews off', () => {
    for (const n of [notificationFor({ ...message, kind: 'e2e' }, 1, settings), notificationFor(message, 1, { ...settings, preview: false })]) {
      assert.equal(n.title, undefined);
      assert.equal(n.body, 'New message');
      assert.doesNotMatch(JSON.stringify(n), /see you|Alice/);
    }
  });

  it('a mention says so: sender and "mentioned you" before the text; without plaintext only "You were mentioned"', () => {
    const group = notificationFor({ ...message, threadKind: 'group', threadTitle: 'Climbing', mentioned: true }, 1, settings);
    assert.deepEqual([group.title, group.body], ['Climbing', 'Alice mentioned you: see you at 9']);
    assert.equal(group.data.mentioned, 'true');
    const direct = notificationFor({ ...message, mentioned: true }, 1, settings);
    assert.deepEqual([direct.title, direct.body], ['Alice', 'Alice mentioned you: see you at 9']);
    for (const n of [notificationFor({ ...message, kind: 'e2e', mentioned: true }, 1, settings), notificationFor({ ...message, mentioned: true }, 1, { ...settings, preview: false })]) {
      assert.deepEqual([n.title, n.body, n.data.mentioned], [undefined, 'You were mentioned', 'true']);
      assert.doesNotMatch(JSON.stringify(n), /see you|Alice/);
    }
    assert.equal(notificationFor(message, 1, settings).data.mentioned, undefined, 'no mention: no key');
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
  const row: Parameters<typeof skipReason>[0] = { deviceRevoked: false, pushToken: 't', deviceLive: false, deliveredSeq: 1, readSeq: 2, seq: 3, deleted: false, muted: false, mentioned: false, left: false, createdAt: 1_000 };
  it('skips a notification the device no longer needs, and says why', () => {
    const table: Array<[Partial<typeof row>, number, string | undefined]> = [
      [{}, 2_000, undefined],
      [{ deviceRevoked: true }, 2_000, 'revoked'],
      [{ pushToken: null }, 2_000, 'no_token'],
      [{ deviceLive: true }, 2_000, 'online'],
      [{ deliveredSeq: 3 }, 2_000, 'delivered'],
      [{ left: true }, 2_000, 'left'],
      [{ readSeq: 3 }, 2_000, 'read'],
      [{ muted: true }, 2_000, 'muted'],
      [{ muted: true, mentioned: true }, 2_000, undefined],
      [{ deleted: true }, 2_000, 'deleted'],
      [{ muted: true, mentioned: true, readSeq: 3 }, 2_000, 'read'],
      [{ muted: true, mentioned: true, left: true }, 2_000, 'left'],
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
