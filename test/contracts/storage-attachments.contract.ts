import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { AttachmentStorage, CompletedBlob, NewUpload } from '../../src/storage/ports/attachments.js';
import type { MessagingStorage, StoredMessage } from '../../src/storage/ports/messaging.js';
import type { ThreadStorage } from '../../src/storage/ports/threads.js';

/**
 * The ports under test over one fresh database, and seeding helpers each
 * engine implements its own way (they are not part of any port).
 */
export interface AttachmentsFixture {
  readonly attachments: AttachmentStorage;
  readonly messaging: MessagingStorage;
  readonly threads: ThreadStorage;
  /** AttachmentStorage of a second node (process) on the same database: for races and the shared secret. */
  otherNode(): Promise<AttachmentStorage>;
  user(name: string): Promise<number>;
  device(userId: number): Promise<number>;
  /**
   * TEST FIXTURE, not the message path: the attachment_refs row appendMessage
   * will write in the message's own unit (branch att-messages). Until that
   * lands, the cases send a real message and add its ref with this raw insert.
   */
  insertRefForTest(uploadId: string, threadId: number, seq: number): Promise<void>;
  close(): Promise<void>;
}

const NOW = 1_000_000;
const HOUR = 3_600_000;
const QUOTA = 100;

const sha = (n: number): string => n.toString(16).padStart(64, '0');

/**
 * The contract of attachments' storage: run on SQLite and on PostgreSQL by
 * their runners. What the port promises (quota, who may read, collection and
 * orphans, the shared secret), not how.
 */
export function attachmentsStorageContract(name: string, open: () => Promise<AttachmentsFixture>): void {
  describe(`attachments storage contract: ${name}`, () => {
    const opened: AttachmentsFixture[] = [];
    after(async () => {
      for (const fixture of opened) await fixture.close();
    });

    /** Alice (the uploader) and bob, each with a device, in a group alice owns; carol and dave outside it. */
    async function world() {
      const f = await open();
      opened.push(f);
      const [alice, bob, carol, dave] = [await f.user('alice'), await f.user('bob'), await f.user('carol'), await f.user('dave')];
      const [aliceDevice, bobDevice] = [await f.device(alice), await f.device(bob)];
      const { threadId } = await f.threads.createGroup({
        title: 'g',
        actor: { userId: alice, deviceId: aliceDevice },
        memberIds: [bob],
        e2eRequired: false,
        event: { event: 'group_created' },
        now: NOW,
      });
      let uploads = 0;
      let messages = 0;
      const newUpload = (input: Partial<NewUpload> = {}): NewUpload => ({
        id: `upload-${++uploads}`,
        userId: alice,
        deviceId: aliceDevice,
        length: 10,
        name: 'photo.jpg',
        declaredType: 'image/jpeg',
        encrypted: false,
        keepMetadata: false,
        durationMs: null,
        now: NOW,
        expiresAt: NOW + HOUR,
        ...input,
      });
      const blob = (n: number, thumbnail?: number): CompletedBlob => ({
        sha256: sha(n),
        size: 10,
        mime: 'image/jpeg',
        width: 640,
        height: 480,
        thumbnail: thumbnail === undefined ? null : { sha256: sha(thumbnail), width: 64, height: 48 },
      });
      /** A complete upload of alice's, `n` its blob. */
      const complete = async (n: number, input: Partial<NewUpload> = {}, thumbnail?: number, completedAt = NOW): Promise<string> => {
        const upload = newUpload(input);
        assert.deepEqual(await f.attachments.createUpload(upload, Number.MAX_SAFE_INTEGER), { kind: 'created' });
        assert.equal(await f.attachments.completeUpload(upload.id, blob(n, thumbnail), completedAt), true);
        return upload.id;
      };
      /** An incomplete upload of alice's. */
      const createPending = async (): Promise<NewUpload> => {
        const upload = newUpload();
        assert.deepEqual(await f.attachments.createUpload(upload, Number.MAX_SAFE_INTEGER), { kind: 'created' });
        return upload;
      };
      /** Alice sends a message carrying the uploads into `thread`; its seq. */
      const send = async (uploadIds: readonly string[], thread = threadId): Promise<number> => {
        const outcome = await f.messaging.appendMessage({
          threadId: thread,
          senderUserId: alice,
          senderDeviceId: aliceDevice,
          clientMsgId: `m${++messages}`,
          content: { kind: 'text' },
          bodyJson: 'null',
          now: NOW,
          requireE2eEverywhere: false,
        });
        assert.equal(outcome.kind, 'stored', JSON.stringify(outcome));
        const { seq } = (outcome as { message: StoredMessage }).message;
        for (const id of uploadIds) await f.insertRefForTest(id, thread, seq);
        return seq;
      };
      const change = (change: Parameters<ThreadStorage['changeGroup']>[0]['change'], members: Array<{ userId: number; role: 'member' }> = []) =>
        f.threads.changeGroup({ threadId, actor: { userId: alice, deviceId: aliceDevice }, expect: { actorRole: 'owner', members }, change, now: NOW });
      return { f, alice, bob, carol, dave, aliceDevice, bobDevice, threadId, newUpload, blob, complete, createPending, send, change };
    }

    it('refuses an upload that would pass the quota, storing nothing, and takes one that fills it exactly', async () => {
      const w = await world();
      const first = w.newUpload({ length: 60 });
      assert.deepEqual(await w.f.attachments.createUpload(first, QUOTA), { kind: 'created' });
      const over = w.newUpload({ length: 41 });
      assert.deepEqual(await w.f.attachments.createUpload(over, QUOTA), { kind: 'over_quota', usedBytes: 60 });
      assert.equal(await w.f.attachments.upload(over.id), undefined, 'nothing stored');
      assert.equal(await w.f.attachments.usedBytes(w.alice, NOW), 60);
      assert.deepEqual(await w.f.attachments.createUpload(w.newUpload({ length: 40 }), QUOTA), { kind: 'created' });
      assert.equal(await w.f.attachments.usedBytes(w.alice, NOW), 100);
      assert.equal(await w.f.attachments.usedBytes(w.bob, NOW), 0, "one user's uploads are not another's");
      assert.deepEqual(await w.f.attachments.createUpload(w.newUpload({ userId: w.bob, deviceId: w.bobDevice, length: 100 }), QUOTA), { kind: 'created' });
    });

    it('counts an incomplete upload by its length until it expires, a complete one by its size', async () => {
      const w = await world();
      const pending = w.newUpload({ length: 80, expiresAt: NOW + HOUR });
      await w.f.attachments.createUpload(pending, QUOTA);
      assert.equal(await w.f.attachments.usedBytes(w.alice, NOW + HOUR - 1), 80);
      assert.deepEqual(await w.f.attachments.createUpload(w.newUpload({ length: 30, now: NOW + HOUR - 1 }), QUOTA), { kind: 'over_quota', usedBytes: 80 });
      assert.equal(await w.f.attachments.usedBytes(w.alice, NOW + HOUR), 0, 'expired: no longer counted, though not collected yet');
      const done = w.newUpload({ length: 80, now: NOW + HOUR, expiresAt: NOW + 2 * HOUR });
      assert.deepEqual(await w.f.attachments.createUpload(done, QUOTA), { kind: 'created' });
      // Stored smaller than announced (its location data stripped): what is stored counts, also past its expiry.
      assert.equal(await w.f.attachments.completeUpload(done.id, { ...w.blob(1), size: 50 }, NOW + HOUR), true);
      assert.equal(await w.f.attachments.usedBytes(w.alice, NOW + 10 * HOUR), 50);
    });

    it('lets only one of two creates racing from two nodes pass the quota', async () => {
      const w = await world();
      const other = await w.f.otherNode();
      const users = await Promise.all(Array.from({ length: 8 }, (_, i) => w.f.user(`racer${i}`)));
      const devices = await Promise.all(users.map((userId) => w.f.device(userId)));
      const outcomes = await Promise.all(
        users.map((userId, i) => {
          const upload = (n: number) => w.newUpload({ id: `race-${i}-${n}`, userId, deviceId: devices[i] as number, length: 60 });
          return Promise.all([w.f.attachments.createUpload(upload(1), QUOTA), other.createUpload(upload(2), QUOTA)]);
        }),
      );
      for (const [i, pair] of outcomes.entries()) {
        assert.deepEqual(pair.map((outcome) => outcome.kind).sort(), ['created', 'over_quota'], `user ${i}: ${JSON.stringify(pair)}`);
        assert.equal(await w.f.attachments.usedBytes(users[i] as number, NOW), 60);
      }
    });

    it('returns an upload as created and completed, with its blob and thumbnail', async () => {
      const w = await world();
      const upload = w.newUpload({ name: 'voice.ogg', declaredType: 'audio/ogg', encrypted: true, keepMetadata: true, durationMs: 4_200, length: 33 });
      await w.f.attachments.createUpload(upload, QUOTA);
      const created = {
        id: upload.id,
        userId: w.alice,
        deviceId: w.aliceDevice,
        length: 33,
        name: 'voice.ogg',
        declaredType: 'audio/ogg',
        encrypted: true,
        keepMetadata: true,
        durationMs: 4_200,
        createdAt: NOW,
        expiresAt: NOW + HOUR,
        completedAt: null,
        blob: null,
      };
      assert.deepEqual(await w.f.attachments.upload(upload.id), created);
      const blob = w.blob(7, 8);
      assert.equal(await w.f.attachments.completeUpload(upload.id, blob, NOW + 5), true);
      assert.deepEqual(await w.f.attachments.upload(upload.id), { ...created, completedAt: NOW + 5, blob });
      assert.equal(await w.f.attachments.upload('no-such-upload'), undefined);
    });

    it('lets the owner read an upload, and members the messages they may see: joined before it, or left after it', async () => {
      const w = await world();
      // seq 1: the group was created (alice, bob).
      const [early, middle, late] = [await w.complete(1), await w.complete(2), await w.complete(3)];
      assert.equal(await w.send([early]), 2);
      const added = await w.change({ kind: 'add', userIds: [w.carol], maxMembers: 10, event: { event: 'members_added' } });
      assert.equal(added.kind, 'changed');
      assert.equal(await w.send([middle]), 4);
      const removed = await w.change({ kind: 'end', userId: w.bob, newOwner: null, event: { event: 'member_removed' } }, [{ userId: w.bob, role: 'member' }]);
      assert.equal((removed as { message: StoredMessage }).message.seq, 5);
      assert.equal(await w.send([late]), 6);
      const readable = async (userId: number) => [await w.f.attachments.canRead(userId, early), await w.f.attachments.canRead(userId, middle), await w.f.attachments.canRead(userId, late)];
      assert.deepEqual(await readable(w.alice), [true, true, true], 'the owner');
      assert.deepEqual(await readable(w.bob), [true, true, false], 'a former member: up to where he left');
      assert.deepEqual(await readable(w.carol), [false, true, true], 'a member added after the first message');
      assert.deepEqual(await readable(w.dave), [false, false, false], 'never a member');
      assert.equal(await w.f.attachments.canRead(w.alice, 'no-such-upload'), false);
      // Another user's upload that was never sent: only its owner reads it.
      const bobs = w.newUpload({ userId: w.bob, deviceId: w.bobDevice });
      await w.f.attachments.createUpload(bobs, QUOTA);
      assert.equal(await w.f.attachments.canRead(w.bob, bobs.id), true);
      assert.equal(await w.f.attachments.canRead(w.alice, bobs.id), false);
    });

    it('lets a user attach their own complete uploads and those they may read (forwarding), never an incomplete one', async () => {
      const w = await world();
      const sent = await w.complete(1);
      await w.send([sent]);
      const unsent = await w.complete(2);
      const incomplete = w.newUpload();
      await w.f.attachments.createUpload(incomplete, QUOTA);
      const ids = [sent, unsent, incomplete.id, 'no-such-upload'];
      const mine = await w.f.attachments.attachable(w.alice, ids);
      assert.deepEqual([...mine.keys()].sort(), [sent, unsent].sort());
      assert.deepEqual(mine.get(sent), await w.f.attachments.upload(sent));
      assert.deepEqual([...(await w.f.attachments.attachable(w.bob, ids)).keys()], [sent], 'bob forwards what he was sent');
      assert.equal((await w.f.attachments.attachable(w.carol, ids)).size, 0);
      assert.equal((await w.f.attachments.attachable(w.alice, [])).size, 0);
    });

    it('completes an upload only while it exists', async () => {
      const w = await world();
      const upload = w.newUpload();
      await w.f.attachments.createUpload(upload, QUOTA);
      assert.equal(await w.f.attachments.deleteUpload(upload.id, NOW), 'deleted');
      assert.equal(await w.f.attachments.completeUpload(upload.id, w.blob(1), NOW), false);
      assert.equal(await w.f.attachments.upload(upload.id), undefined);
      assert.equal(await w.f.attachments.blobNamed(sha(1)), false);
    });

    it('refuses to delete an upload a message references, and deletes an unreferenced one, recording its blobs no other upload names as orphans', async () => {
      const w = await world();
      const sent = await w.complete(1);
      await w.send([sent]);
      assert.equal(await w.f.attachments.deleteUpload(sent, NOW), 'referenced');
      assert.equal((await w.f.attachments.upload(sent))?.completedAt, NOW, 'unchanged');
      assert.equal(await w.f.attachments.canRead(w.bob, sent), true);
      const shared = await w.complete(1, {}, 3); // the same content as `sent`, with a thumbnail of its own
      assert.equal(await w.f.attachments.deleteUpload(shared, NOW + 1), 'deleted');
      assert.equal(await w.f.attachments.deleteUpload(shared, NOW + 1), 'missing');
      assert.equal(await w.f.attachments.deleteUpload('no-such-upload', NOW), 'missing');
      assert.deepEqual(await w.f.attachments.orphansDue(NOW + 2, 0), [sha(3)], 'its thumbnail is left unnamed; its file is still named by `sent`');
    });

    it('collects expired incomplete uploads and, after the grace, unreferenced complete ones; a dry run changes nothing', async () => {
      const w = await world();
      const grace = HOUR;
      const expired = w.newUpload({ expiresAt: NOW + 10 });
      const fresh = w.newUpload({ expiresAt: NOW + 2 * HOUR });
      await w.f.attachments.createUpload(expired, QUOTA);
      await w.f.attachments.createUpload(fresh, QUOTA);
      const unsent = await w.complete(1, {}, 2);
      const sent = await w.complete(3, {}, 4);
      await w.send([sent]);
      const dedup = await w.complete(5);
      const keeper = await w.complete(5, {}, undefined, NOW + grace); // names the same blob, completed later
      const empty = { incomplete: [], unreferenced: [], orphanedBlobs: [] };

      assert.deepEqual(await w.f.attachments.collect(NOW + 5, grace, false), empty, 'nothing expired, nothing past the grace');
      const due = NOW + grace + 1;
      const expected = { incomplete: [expired.id], unreferenced: [unsent, dedup].sort(), orphanedBlobs: [sha(1), sha(2)].sort() };
      const dry = await w.f.attachments.collect(due, grace, true);
      assert.deepEqual({ ...dry, unreferenced: [...dry.unreferenced].sort() }, expected);
      for (const id of [expired.id, unsent, dedup]) assert.notEqual(await w.f.attachments.upload(id), undefined, `the dry run kept ${id}`);
      assert.deepEqual(await w.f.attachments.orphansDue(due + 10 * grace, grace), [], 'the dry run recorded no orphan');

      const pass = await w.f.attachments.collect(due, grace, false);
      assert.deepEqual({ ...pass, unreferenced: [...pass.unreferenced].sort() }, expected);
      for (const id of [expired.id, unsent, dedup]) assert.equal(await w.f.attachments.upload(id), undefined, `${id} collected`);
      for (const id of [fresh.id, sent, keeper]) assert.notEqual(await w.f.attachments.upload(id), undefined, `${id} kept`);
      assert.equal(await w.f.attachments.blobNamed(sha(1)), false);
      assert.equal(await w.f.attachments.blobNamed(sha(5)), true, 'deduplicated content another upload names');
      assert.equal(await w.f.attachments.blobNamed(sha(4)), true, 'a thumbnail names its blob too');
      assert.deepEqual(
        [...(await w.f.attachments.namedBlobs([sha(1), sha(4), sha(5), sha(5), sha(9)]))].sort(),
        [sha(4), sha(5)].sort(),
        'namedBlobs: a file, a thumbnail; not what no upload names',
      );
      assert.equal((await w.f.attachments.namedBlobs([])).size, 0);
      assert.deepEqual(await w.f.attachments.collect(due, grace, false), empty, 'a second pass finds nothing');
      // The orphans wait for the grace, from when they were left unnamed.
      assert.deepEqual(await w.f.attachments.orphansDue(due + grace - 1, grace), []);
      assert.deepEqual(await w.f.attachments.orphansDue(due + grace + 1, grace), [sha(1), sha(2)].sort());
    });

    it('takes a blob out of the orphans when an upload names it again, and forgets orphans the caller deleted', async () => {
      const w = await world();
      const [first, second] = [await w.complete(1, {}, 2), await w.complete(3, {}, 4)];
      assert.equal(await w.f.attachments.deleteUpload(first, NOW), 'deleted');
      assert.equal(await w.f.attachments.deleteUpload(second, NOW), 'deleted');
      const later = NOW + 10 * HOUR;
      assert.deepEqual(await w.f.attachments.orphansDue(later, HOUR), [sha(1), sha(2), sha(3), sha(4)]);
      // The same content uploaded again (its file and, as another upload's file, the first one's thumbnail).
      await w.complete(1);
      await w.complete(2);
      assert.deepEqual(await w.f.attachments.orphansDue(later, HOUR), [sha(3), sha(4)]);
      assert.equal(await w.f.attachments.blobNamed(sha(2)), true);
      await w.f.attachments.forgetOrphans([sha(3)]);
      await w.f.attachments.forgetOrphans([]);
      assert.deepEqual(await w.f.attachments.orphansDue(later, HOUR), [sha(4)]);
    });

    it('counts uploads, distinct blobs and bytes', async () => {
      const w = await world();
      assert.deepEqual(await w.f.attachments.stats(), { uploads: 0, incompleteUploads: 0, blobs: 0, blobBytes: 0, uploadedBytes: 0 });
      await w.complete(1, {}, 2);
      await w.complete(1);
      await w.f.attachments.completeUpload((await w.createPending()).id, { ...w.blob(3), size: 25 }, NOW);
      await w.createPending();
      assert.deepEqual(await w.f.attachments.stats(), { uploads: 4, incompleteUploads: 1, blobs: 3, blobBytes: 35, uploadedBytes: 45 });
    });

    it('creates a secret once and gives every node the same one, also when their first calls race', async () => {
      const w = await world();
      const other = await w.f.otherNode();
      let made = 0;
      const make = (fill: number) => () => {
        made++;
        return new Uint8Array(32).fill(fill);
      };
      const [here, there] = await Promise.all([w.f.attachments.secret('attachment_links', make(1)), other.secret('attachment_links', make(2))]);
      assert.equal(here.length, 32);
      assert.deepEqual(there, here, 'both nodes agree');
      assert.ok(made >= 1 && made <= 2);
      assert.deepEqual(await w.f.attachments.secret('attachment_links', make(3)), here, 'stored, not made again');
      assert.deepEqual(await other.secret('attachment_links', make(4)), here);
      const another = await w.f.attachments.secret('another', make(5));
      assert.deepEqual(another, new Uint8Array(32).fill(5), 'each name its own');
    });
  });
}
