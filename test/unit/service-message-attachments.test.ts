import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isChatError } from '../../src/errors.js';
import { serviceWorld } from '../helpers/service-world.js';

// Uploads are seeded with raw SQL (test/helpers/seeded-attachments.ts); attachable is the SQLite engine's.

async function refused(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isChatError(error), String(error));
    assert.equal(error.code, code, error.message);
    assert.equal(error.field, 'attachments');
    if (message) assert.match(error.message, message);
    return true;
  });
}

async function direct(options: Parameters<typeof serviceWorld>[0] = {}) {
  const world = await serviceWorld(options);
  const alice = await world.principal('alice');
  const bob = await world.principal('bob');
  const carol = await world.principal('carol');
  const { thread } = await world.threads.openDirect(alice, { userId: bob.user.id });
  const refs = () => world.fixture.store.db.prepare('SELECT upload_id, seq FROM attachment_refs ORDER BY seq, upload_id').all();
  const count = () => (world.fixture.store.db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
  return { ...world, alice, bob, carol, threadId: thread.id, refs, count };
}

const send = (threadId: number, clientMsgId: string, attachments: readonly string[], bodyJson = 'null') => ({ threadId, clientMsgId, kind: 'text' as const, bodyJson, attachments });

describe('MessagingService: messages with attachments', () => {
  it('stores a plaintext message with the server\'s own description of each upload, in the order sent, and references them', async () => {
    const w = await direct();
    const photo = w.attachments.seed(w.alice.user.id, w.alice.deviceId, 'photo-upload-000000001');
    const other = w.attachments.seed(w.alice.user.id, w.alice.deviceId, 'other-upload-000000002');
    w.fixture.store.db.prepare("UPDATE uploads SET name = 'voice.ogg', mime = 'audio/ogg', width = NULL, height = NULL, thumb_sha256 = NULL, thumb_width = NULL, thumb_height = NULL, duration_ms = 4200 WHERE id = ?").run(other);
    const { message } = await w.messaging.send(w.alice, send(w.threadId, 'c1', [photo, other]));
    assert.equal(message.bodyJson, 'null');
    assert.deepEqual(JSON.parse(message.attachmentsJson ?? 'null'), [
      { id: photo, name: 'photo.jpg', size: 1000, mime: 'image/jpeg', sha256: 'a'.repeat(64), width: 640, height: 480, thumbnail: { width: 320, height: 240 } },
      { id: other, name: 'voice.ogg', size: 1000, mime: 'audio/ogg', sha256: 'a'.repeat(64), duration: 4200 },
    ]);
    assert.deepEqual(w.refs(), [
      { upload_id: other, seq: 1 },
      { upload_id: photo, seq: 1 },
    ]);
    // Bob may forward what he can read: a reference in the new message too.
    const { thread } = await w.threads.openDirect(w.bob, { userId: w.carol.user.id });
    const forwarded = await w.messaging.send(w.bob, send(thread.id, 'f1', [photo], '{"text":"look"}'));
    assert.equal(JSON.parse(forwarded.message.attachmentsJson ?? '[]')[0].sha256, 'a'.repeat(64));
    assert.equal(forwarded.message.bodyJson, '{"text":"look"}');
  });

  it('refuses an id the sender may not attach — someone else\'s upload they cannot read, a made-up id, an incomplete upload — naming it, storing nothing', async () => {
    const w = await direct();
    const mine = w.attachments.seed(w.alice.user.id, w.alice.deviceId, 'mine-upload-0000000001');
    const carols = w.attachments.seed(w.carol.user.id, w.carol.deviceId, 'carol-upload-000000001');
    const unfinished = w.attachments.seed(w.alice.user.id, w.alice.deviceId, 'half-upload-0000000001', { complete: false });
    for (const [id, ids] of [
      [carols, [mine, carols]],
      ['made-up-id', ['made-up-id']],
      [unfinished, [unfinished]],
    ] as const) {
      await refused(w.messaging.send(w.alice, send(w.threadId, `c-${id}`, ids)), 'attachment_not_found', new RegExp(`attachment ${id} is not an upload you may attach`));
    }
    assert.equal(w.count(), 0);
    assert.deepEqual(w.refs(), []);
  });

  it('refuses with attachment_not_found, storing nothing, when the upload is deleted between the check and the unit', async () => {
    const w = await direct();
    const photo = w.attachments.seed(w.alice.user.id, w.alice.deviceId, 'photo-upload-000000001');
    const check = w.attachments.attachable.bind(w.attachments);
    // The upload's owner terminates it (or collection takes it) just after the service read it.
    w.attachments.attachable = async (userId, ids) => {
      const found = await check(userId, ids);
      w.fixture.store.db.prepare('DELETE FROM uploads WHERE id = ?').run(photo);
      return found;
    };
    await refused(w.messaging.send(w.alice, send(w.threadId, 'c1', [photo])), 'attachment_not_found', /attachment photo-upload-000000001 .*deleted/);
    assert.equal(w.count(), 0);
    assert.deepEqual(w.refs(), []);
  });

  it('stores only the ids of an end-to-end message: the description is inside the envelope', async () => {
    const w = await direct();
    const a = { ...w.alice, deviceId: await w.fixture.device(w.alice.user.id, { approved: true }) };
    const b = await w.fixture.device(w.bob.user.id, { approved: true });
    const file = w.attachments.seed(w.alice.user.id, a.deviceId, 'cipher-upload-00000001', { encrypted: true });
    const thumb = w.attachments.seed(w.alice.user.id, a.deviceId, 'cipher-thumb-000000001', { encrypted: true });
    const b64 = (bytes: number) => Buffer.alloc(bytes, 1).toString('base64');
    const envelope = JSON.stringify({
      v: 2,
      sender_device: a.deviceId,
      nonce: b64(24),
      commit: b64(32),
      ciphertext: b64(40),
      keys: Object.fromEntries([a.deviceId, b].map((id) => [String(id), b64(80)])),
      signature: b64(64),
    });
    const { message } = await w.messaging.send(a, { threadId: w.threadId, clientMsgId: 'e1', kind: 'e2e', bodyJson: envelope, attachments: [file, thumb] });
    assert.equal(message.attachmentsJson, JSON.stringify([{ id: file }, { id: thumb }]));
    assert.equal(w.refs().length, 2);

    // Each kind of message takes its kind of upload: a plaintext file in an end-to-end message would be
    // readable by the server, and ciphertext in a plaintext one would pass allowed_types unsniffed.
    const plain = w.attachments.seed(w.alice.user.id, a.deviceId, 'plain-upload-000000001');
    const before = w.count();
    await refused(
      w.messaging.send(a, { threadId: w.threadId, clientMsgId: 'e2', kind: 'e2e', bodyJson: envelope, attachments: [plain] }),
      'attachment_mismatch',
      /uploaded in plaintext/,
    );
    await refused(w.messaging.send(a, send(w.threadId, 't1', [file])), 'attachment_mismatch', /uploaded encrypted/);
    assert.equal(w.count(), before);
    assert.equal(w.refs().length, 2);
  });

  it('with attachments disabled refuses a send that carries any (attachments_disabled), and takes plain messages as before', async () => {
    const w = await direct({ attachments: false });
    const photo = w.attachments.seed(w.alice.user.id, w.alice.deviceId, 'photo-upload-000000001');
    await refused(w.messaging.send(w.alice, send(w.threadId, 'c1', [photo])), 'attachments_disabled', /attachments\.enabled is false/);
    assert.equal(w.count(), 0);
    const { message } = await w.messaging.send(w.alice, { threadId: w.threadId, clientMsgId: 'c2', kind: 'text', bodyJson: '{"text":"hi"}' });
    assert.equal(message.attachmentsJson, null);
  });

  it('answers a resend as its duplicate, with the same attachments and no second reference', async () => {
    const w = await direct();
    const photo = w.attachments.seed(w.alice.user.id, w.alice.deviceId, 'photo-upload-000000001');
    const first = await w.messaging.send(w.alice, send(w.threadId, 'c1', [photo]));
    const again = await w.messaging.send(w.alice, send(w.threadId, 'c1', [photo]));
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.message, first.message);
    assert.equal(w.refs().length, 1);
  });
});
