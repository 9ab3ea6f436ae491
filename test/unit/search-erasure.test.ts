import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { checkpoint } from '../../src/storage/database.js';
import type { ChangeRequest } from '../../src/storage/ports/messaging.js';
import { SqliteSearchStorage } from '../../src/storage/sqlite/search.js';
import { openSqliteMessaging } from '../helpers/sqlite-messaging.js';

/**
 * A message deleted for everyone leaves no trace in the database file,
 * search index included. FTS5 keeps a deleted word in its segment b-tree
 * (only a delete marker is added) unless the table's 'secure-delete' option
 * is on when the deletion is flushed (migrations/0016_search.sql); PRAGMA
 * secure_delete then zeroes the freed bytes. Without the option this test
 * fails: the words stay, in the word index and in the trigram index.
 */
describe('search index erasure (SQLite)', () => {
  it('leaves no byte of a deleted message, nor of its edit, in the file after a checkpoint', async () => {
    const f = await openSqliteMessaging({ readDiffusionAbove: 50 }, { inFile: true });
    const { db } = f.store;
    assert.equal(db.pragma('secure_delete', { simple: true }), 1, 'openDatabase turns it on');
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
    const id = await send('the secret is qzxvmarker in the first version, 合言葉は鳩時計');
    for (let i = 0; i < 300; i++) await send(`more filler ${i}`);
    // An edit, by the edit unit: the target's new body, and a change row carrying it (the old text must go too).
    const change = (n: number, request: ChangeRequest) =>
      f.messaging.appendMessage({ threadId, senderUserId: alice, senderDeviceId: aliceDevice, clientMsgId: `x${n}`, now: 2, requireE2eEverywhere: false, change: request });
    assert.equal((await change(1, { type: 'edit', targetId: id, content: { kind: 'text' }, bodyJson: JSON.stringify({ text: 'edited: wkpjmarker now, 暗号は柿羊羹' }), editWindowMs: 0 })).kind, 'stored');
    assert.deepEqual((await search.search({ userId: bob, query: 'wkpjmarker', limit: 5 })).results.map((hit) => hit.message.id), [id]);
    assert.deepEqual((await search.search({ userId: bob, query: 'qzxvmarker', limit: 5 })).results, []);
    checkpoint(db);
    assert.deepEqual((await search.search({ userId: bob, query: '柿羊羹', limit: 5 })).results.map((hit) => hit.message.id), [id], 'in the trigram index');
    checkpoint(db);
    for (const marker of ['wkpjmarker', '柿羊羹']) assert.ok(readFileSync(db.name).includes(marker), `${marker} is in the file before the delete (the scan can see it)`);
    // Delete for everyone, by the delete unit.
    assert.equal((await change(2, { type: 'delete', targetId: id })).kind, 'stored');
    checkpoint(db);
    const bytes = readFileSync(db.name);
    for (const marker of ['qzxvmarker', 'wkpjmarker', 'qzx', 'zxv', 'xvm', 'wkp', 'kpj', 'pjm', '合言葉', '鳩時計', '柿羊羹', '暗号は']) assert.equal(bytes.includes(marker), false, `${marker} is still in the file`);
    assert.deepEqual(await search.check(), { ok: true, searchable: 600, indexed: 600, problems: [] });
    await f.close();
  });
});
