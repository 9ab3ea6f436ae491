import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { checkpoint } from '../../src/storage/database.js';
import type { AppendOutcome } from '../../src/storage/ports/messaging.js';
import { openSqliteMessaging } from '../helpers/sqlite-messaging.js';

/**
 * A message deleted for everyone is erased from the SQLite file itself, not
 * only from what reads return (MSG-SPEC §1): secure_delete zeroes the bytes
 * an update frees, and after a checkpoint neither the original body nor an
 * edit of it is anywhere in the database file or its WAL.
 */
async function deleteAndLook(options: { secureDelete: boolean }): Promise<{ inFile: string[] }> {
  const f = await openSqliteMessaging({ readDiffusionAbove: 50 }, { inFile: true });
  try {
    if (!options.secureDelete) f.store.db.pragma('secure_delete = OFF');
    const [alice, bob] = [await f.user('alice'), await f.user('bob')];
    const device = await f.device(alice);
    const { threadId } = await f.threads.openDirect({ userIds: [alice, bob], createdBy: alice, now: 1 });
    const common = { threadId, senderUserId: alice, senderDeviceId: device, now: 2, requireE2eEverywhere: false };
    const stored = (outcome: AppendOutcome) => {
      assert.equal(outcome.kind, 'stored');
      return outcome.kind === 'stored' ? outcome.message : assert.fail();
    };
    // Long bodies: a shorter row written over a longer one takes the end of its old space, so without
    // secure_delete the start of the old body is left behind in the page, where the markers are.
    const padding = ' '.repeat(600);
    const original = stored(
      await f.messaging.appendMessage({ ...common, clientMsgId: 'm', content: { kind: 'text' }, bodyJson: `{"text":"MARKER-ORIGINAL-7f3a${padding}"}` }),
    );
    const editBody = `{"text":"MARKER-EDITED-9c1d${padding}"}`;
    stored(await f.messaging.appendMessage({ ...common, clientMsgId: 'e', change: { type: 'edit', targetId: original.id, content: { kind: 'text' }, bodyJson: editBody, editWindowMs: 0 } }));
    // Later messages, so that the pages of the erased rows are written again after the delete.
    for (let i = 0; i < 3; i++) stored(await f.messaging.appendMessage({ ...common, clientMsgId: `later${i}`, content: { kind: 'text' }, bodyJson: '{"text":"later"}' }));
    stored(await f.messaging.appendMessage({ ...common, clientMsgId: 'd', change: { type: 'delete', targetId: original.id } }));
    checkpoint(f.store.db);
    const bytes = readFileSync(f.file).toString('latin1') + readFileSync(`${f.file}-wal`, { flag: 'a+' }).toString('latin1');
    return { inFile: ['MARKER-ORIGINAL-7f3a', 'MARKER-EDITED-9c1d'].filter((marker) => bytes.includes(marker)) };
  } finally {
    await f.close();
  }
}

describe('a message deleted for everyone on SQLite', () => {
  it('leaves neither its body nor its edits in the database file after a checkpoint', async () => {
    assert.deepEqual((await deleteAndLook({ secureDelete: true })).inFile, []);
  });

  it('would leave them without secure_delete (the check above can fail)', async () => {
    assert.notDeepEqual((await deleteAndLook({ secureDelete: false })).inFile, []);
  });
});
