import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { checkpoint } from '../../src/storage/database.js';
import { SqliteSearchStorage } from '../../src/storage/sqlite/search.js';
import { openSqliteMessaging } from '../helpers/sqlite-messaging.js';

/**
 * A message deleted for everyone leaves no trace in the database file,
 * search index included. FTS5 keeps a deleted word in its segment b-tree
 * (only a delete marker is added) unless the table's 'secure-delete' option
 * is on (migrations/0016_search.sql); PRAGMA secure_delete then zeroes the
 * freed bytes. Without the option this test fails: the marker stays.
 */
describe('search index erasure (SQLite)', () => {
  it('leaves no byte of a deleted message, nor of its edit, in the file after a checkpoint', async () => {
    const f = await openSqliteMessaging({ readDiffusionAbove: 50 }, { inFile: true });
    const { db } = f.store;
    // openDatabase turns this on with the message changes (MSG-SPEC §1); set here too so that this test checks the index alone.
    db.pragma('secure_delete = ON');
    const search = new SqliteSearchStorage(f.store);
    const [alice, bob] = [await f.user('alice'), await f.user('bob')];
    const aliceDevice = await f.device(alice);
    const { threadId } = await f.threads.openDirect({ userIds: [alice, bob], createdBy: alice, now: 1 });
    let n = 0;
    const send = async (text: string) => {
      const outcome = await f.messaging.appendMessage({
        threadId,
        senderUserId: alice,
        senderDeviceId: aliceDevice,
        clientMsgId: `c${++n}`,
        content: { kind: 'text' },
        bodyJson: JSON.stringify({ text }),
        now: 1 + n,
        requireE2eEverywhere: false,
      });
      assert.equal(outcome.kind, 'stored');
      return (outcome as { message: { id: number } }).message.id;
    };
    // Enough messages around it that the index has real segments, before and after.
    for (let i = 0; i < 300; i++) await send(`filler message ${i} about lunch and the weather`);
    const id = await send('the secret is qzxvmarker in the first version');
    for (let i = 0; i < 300; i++) await send(`more filler ${i}`);
    // An edit, as the edit unit leaves the target: its new body (the old one must go too).
    db.prepare('UPDATE messages SET body = ?, edited_at = 2 WHERE id = ?').run(JSON.stringify({ text: 'edited: wkpjmarker now' }), id);
    assert.deepEqual((await search.search({ userId: bob, query: 'wkpjmarker', limit: 5 })).results.map((hit) => hit.message.id), [id]);
    assert.deepEqual((await search.search({ userId: bob, query: 'qzxvmarker', limit: 5 })).results, []);
    checkpoint(db);
    assert.ok(readFileSync(db.name).includes('wkpjmarker'), 'the marker is in the file before the delete (the scan can see it)');
    // Delete for everyone, as the delete unit leaves the row.
    db.prepare(`UPDATE messages SET body = 'null', attachments = NULL, deleted_at = 3 WHERE id = ?`).run(id);
    checkpoint(db);
    const bytes = readFileSync(db.name);
    for (const marker of ['qzxvmarker', 'wkpjmarker', 'qzx', 'zxv', 'xvm', 'wkp', 'kpj', 'pjm']) assert.equal(bytes.includes(marker), false, `${marker} is still in the file`);
    assert.deepEqual(await search.check(), { ok: true, searchable: 600, indexed: 600, problems: [] });
    await f.close();
  });
});
