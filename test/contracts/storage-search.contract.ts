import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { MessagingStorage } from '../../src/storage/ports/messaging.js';
import type { SearchInput, SearchStorage } from '../../src/storage/ports/search.js';
import type { ThreadStorage } from '../../src/storage/ports/threads.js';

/**
 * The ports under test over one fresh database, and what the contract seeds
 * with that no port of this branch writes yet (deleting for everyone and for
 * me are the message-change units': the fixture does what they do, in SQL).
 */
export interface SearchFixture {
  readonly search: SearchStorage;
  readonly messaging: MessagingStorage;
  readonly threads: ThreadStorage;
  user(name: string): Promise<number>;
  device(userId: number): Promise<number>;
  /** As delete-for-everyone leaves the row: body 'null', attachments NULL, deleted_at set. */
  deleteForEveryone(messageId: number): Promise<void>;
  /** As delete-for-me: a hidden_messages row. */
  hide(userId: number, messageId: number): Promise<void>;
  /** As an edit leaves the target: the new body. */
  editBody(messageId: number, bodyJson: string): Promise<void>;
  /** A row as the change units store one (an edit change row with its new body), searchable text and all. */
  changeRow(threadId: number, senderUserId: number, senderDeviceId: number, targetId: number, bodyJson: string): Promise<void>;
  /** Damages the index: the message's entry goes, the message stays (what `db check` must notice). */
  dropFromIndex(messageId: number): Promise<void>;
  /** A message stored as an e2e row, body as given (the engine never reads e2e bodies). */
  e2eRow(threadId: number, senderUserId: number, senderDeviceId: number, bodyJson: string): Promise<void>;
  close(): Promise<void>;
}

const NOW = 1_700_000_000_000;

/** The search contract: run on SQLite and on PostgreSQL by their runners. */
export function searchStorageContract(name: string, open: () => Promise<SearchFixture>): void {
  describe(`search storage contract: ${name}`, () => {
    const opened: SearchFixture[] = [];
    after(async () => {
      for (const fixture of opened) await fixture.close();
    });

    /** Alice, bob and carol; a group of alice and bob; a direct thread of alice and carol. */
    async function world() {
      const f = await open();
      opened.push(f);
      const [alice, bob, carol] = [await f.user('alice'), await f.user('bob'), await f.user('carol')];
      const [aliceDevice, bobDevice, carolDevice] = [await f.device(alice), await f.device(bob), await f.device(carol)];
      const { threadId: group } = await f.threads.createGroup({
        title: 'g',
        actor: { userId: alice, deviceId: aliceDevice },
        memberIds: [bob],
        e2eRequired: false,
        event: { event: 'group_created' },
        now: NOW,
      });
      const { threadId: direct } = await f.threads.openDirect({ userIds: [alice, carol], createdBy: alice, now: NOW });
      let n = 0;
      let clock = NOW;
      const send = async (threadId: number, senderUserId: number, senderDeviceId: number, body: unknown, attachments?: string): Promise<number> => {
        const outcome = await f.messaging.appendMessage({
          threadId,
          senderUserId,
          senderDeviceId,
          clientMsgId: `c${++n}`,
          content: { kind: 'text' },
          bodyJson: JSON.stringify(body),
          ...(attachments === undefined ? {} : { attachments: { json: attachments, uploadIds: [] } }),
          now: ++clock,
          requireE2eEverywhere: false,
        });
        assert.equal(outcome.kind, 'stored');
        return (outcome as { message: { id: number } }).message.id;
      };
      const ids = async (userId: number, query: string, more: Partial<SearchInput> = {}): Promise<number[]> =>
        (await f.search.search({ userId, query, limit: 50, ...more })).results.map((hit) => hit.message.id);
      return { f, alice, bob, carol, aliceDevice, bobDevice, carolDevice, group, direct, send, ids, time: () => clock };
    }

    it('finds words with and without diacritics, by prefix, case-insensitively', async () => {
      const w = await world();
      const cafe = await w.send(w.group, w.alice, w.aliceDevice, { text: 'Meet me at the Café tomorrow' });
      const anger = await w.send(w.group, w.bob, w.bobDevice, { text: 'So much Ärger with the build' });
      const plain = await w.send(w.group, w.bob, w.bobDevice, 'meeting notes are in the doc');
      assert.deepEqual(await w.ids(w.alice, 'cafe'), [cafe]);
      assert.deepEqual(await w.ids(w.alice, 'CAFÉ'), [cafe]);
      assert.deepEqual(await w.ids(w.alice, 'arger'), [anger]);
      assert.deepEqual(await w.ids(w.alice, 'Ärger'), [anger]);
      assert.deepEqual(new Set(await w.ids(w.alice, 'meet')), new Set([cafe, plain]), 'the last word is a prefix');
      assert.deepEqual(await w.ids(w.alice, 'meet tomorrow'), [cafe], 'every word must be there');
      assert.deepEqual(await w.ids(w.alice, 'tomorrow meet'), [cafe, plain].filter((id) => id === cafe), 'only the last word is a prefix');
      assert.deepEqual(await w.ids(w.alice, 'meetings'), []);
    });

    it("finds a Chinese or Japanese substring: 東京タワー by タワー and 東京, and 1-2 character queries", async () => {
      const w = await world();
      const tower = await w.send(w.group, w.alice, w.aliceDevice, { text: '東京タワーに行きました' });
      const meeting = await w.send(w.group, w.bob, w.bobDevice, { text: '我们明天开会' });
      await w.send(w.group, w.bob, w.bobDevice, { text: 'nothing here' });
      assert.deepEqual(await w.ids(w.alice, 'タワー'), [tower]);
      assert.deepEqual(await w.ids(w.alice, '東京タワー'), [tower]);
      assert.deepEqual(await w.ids(w.alice, '東京'), [tower], 'two characters: scanned');
      assert.deepEqual(await w.ids(w.alice, '明天'), [meeting]);
      assert.deepEqual(await w.ids(w.alice, '京'), [tower], 'one character');
      assert.deepEqual(await w.ids(w.alice, '大阪'), []);
      const hit = (await w.f.search.search({ userId: w.alice, query: 'タワー', limit: 5 })).results[0];
      assert.equal(hit?.snippet, '東京タワーに行きました');
      assert.deepEqual(hit?.highlights, [[2, 5]]);
    });

    it('finds attachment names, and bodies that are a plain string', async () => {
      const w = await world();
      const report = await w.send(w.group, w.alice, w.aliceDevice, null, JSON.stringify([{ id: 'u1', name: 'quarterly-report.pdf', size: 3 }]));
      const string = await w.send(w.group, w.alice, w.aliceDevice, 'just a string body');
      await w.send(w.group, w.alice, w.aliceDevice, { other: 'quarterly' });
      assert.deepEqual(await w.ids(w.alice, 'quarterly'), [report]);
      assert.deepEqual(await w.ids(w.alice, 'string body'), [string]);
    });

    it('reads query syntax literally and never throws', async () => {
      const w = await world();
      const near = await w.send(w.group, w.alice, w.aliceDevice, { text: 'near the body: "quoted" and not (this) or that - x^2 *star*' });
      for (const query of ['"', '""', '"quoted', 'NEAR(quoted this)', 'near', 'body:', 'body:near', 'quoted*', '*', '(', ')', '(this)', 'AND', 'OR', 'NOT', 'not this', '-', '^', 'x^2', '- this', "it's", '\\', '%', '_', '%_%', "'; DROP TABLE messages; --", 'a OR b', 'NEAR', '{body}: x', ':', '+']) {
        await assert.doesNotReject(w.f.search.search({ userId: w.alice, query, limit: 20 }), `query ${query}`);
      }
      assert.deepEqual(await w.ids(w.alice, 'NEAR(quoted this)'), [near]);
      assert.deepEqual(await w.ids(w.alice, 'not this'), [near], 'NOT is a word');
      assert.deepEqual(await w.ids(w.alice, 'body:'), [near]);
      assert.deepEqual(await w.ids(w.alice, '"quoted'), [near]);
      assert.deepEqual(await w.ids(w.alice, '"'), [near], 'punctuation alone is looked for as it is');
      assert.deepEqual(await w.ids(w.alice, '%'), [], 'LIKE wildcards are literal');
      assert.deepEqual(await w.ids(w.alice, '_'), []);
      assert.deepEqual(await w.ids(w.alice, 'OR'), [near]);
      assert.deepEqual(await w.ids(w.alice, 'a OR b'), [], 'OR is a word that must be there too');
    });

    it("never finds a message of a thread the searcher is not in, nor e2e, change, deleted or hidden ones", async () => {
      const w = await world();
      const secret = await w.send(w.direct, w.alice, w.aliceDevice, { text: 'zebra in the direct thread' });
      const shared = await w.send(w.group, w.alice, w.aliceDevice, { text: 'zebra in the group' });
      assert.deepEqual(await w.ids(w.bob, 'zebra'), [shared], 'bob is not in the direct thread');
      assert.deepEqual(await w.ids(w.carol, 'zebra'), [secret]);
      await w.f.e2eRow(w.group, w.alice, w.aliceDevice, JSON.stringify({ text: 'zebra sealed' }));
      await w.f.changeRow(w.group, w.alice, w.aliceDevice, shared, JSON.stringify({ text: 'zebra edited' }));
      assert.deepEqual(await w.ids(w.alice, 'zebra sealed'), [], 'e2e rows are not searched');
      assert.deepEqual(await w.ids(w.alice, 'edited'), [], 'change rows are not searched');
      await w.f.hide(w.bob, shared);
      assert.deepEqual(await w.ids(w.bob, 'zebra'), [], 'hidden for bob');
      assert.deepEqual(new Set(await w.ids(w.alice, 'zebra')), new Set([secret, shared]), 'not for alice');
      await w.f.deleteForEveryone(secret);
      assert.deepEqual(await w.ids(w.alice, 'zebra'), [shared]);
      assert.deepEqual(await w.ids(w.carol, 'zebra'), []);
      assert.deepEqual(await w.ids(w.alice, 'direct'), [], 'no word of it is left');
      assert.deepEqual(await w.ids(w.alice, 'dir'), []);
    });

    it('follows edits: the new text is found, the old is not', async () => {
      const w = await world();
      const id = await w.send(w.group, w.alice, w.aliceDevice, { text: 'first draft' });
      await w.f.editBody(id, JSON.stringify({ text: 'final version' }));
      assert.deepEqual(await w.ids(w.bob, 'draft'), []);
      assert.deepEqual(await w.ids(w.bob, 'final'), [id]);
    });

    it('finds nothing a removed member did not see: messages after their removal stay out, earlier ones stay in', async () => {
      const w = await world();
      const before = await w.send(w.group, w.alice, w.aliceDevice, { text: 'walrus one' });
      const removed = await w.f.threads.changeGroup({
        threadId: w.group,
        actor: { userId: w.alice, deviceId: w.aliceDevice },
        expect: { actorRole: 'owner', members: [{ userId: w.bob, role: 'member' }] },
        change: { kind: 'end', userId: w.bob, newOwner: null, event: { event: 'member_removed' } },
        now: w.time() + 1,
      });
      assert.equal(removed.kind, 'changed');
      const later = await w.send(w.group, w.alice, w.aliceDevice, { text: 'walrus two' });
      assert.deepEqual(await w.ids(w.bob, 'walrus'), [before]);
      assert.deepEqual(await w.ids(w.alice, 'walrus'), [later, before]);
      assert.deepEqual(await w.ids(w.bob, 'walrus two'), []);
    });

    it('filters by thread, sender and date', async () => {
      const w = await world();
      const a = await w.send(w.group, w.alice, w.aliceDevice, { text: 'otter a' });
      const b = await w.send(w.group, w.bob, w.bobDevice, { text: 'otter b' });
      const c = await w.send(w.direct, w.alice, w.aliceDevice, { text: 'otter c' });
      assert.deepEqual(new Set(await w.ids(w.alice, 'otter')), new Set([a, b, c]));
      assert.deepEqual(new Set(await w.ids(w.alice, 'otter', { threadId: w.group })), new Set([a, b]));
      assert.deepEqual(new Set(await w.ids(w.alice, 'otter', { senderId: w.alice })), new Set([a, c]));
      assert.deepEqual(await w.ids(w.alice, 'otter', { senderId: w.bob, threadId: w.direct }), []);
      assert.deepEqual(new Set(await w.ids(w.alice, 'otter', { after: NOW + 1 })), new Set([b, c]), 'after is exclusive');
      assert.deepEqual(await w.ids(w.alice, 'otter', { after: NOW + 1, before: NOW + 3 }), [b]);
      assert.deepEqual(await w.ids(w.alice, '東京', { threadId: w.group }), []);
    });

    it('ranks equally good hits newest first and pages through them without duplicates or gaps', async () => {
      const w = await world();
      const sent: number[] = [];
      for (let i = 0; i < 23; i++) sent.push(await w.send(w.group, w.alice, w.aliceDevice, { text: `heron number ${i}` }));
      const seen: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await w.f.search.search({ userId: w.bob, query: 'heron', limit: 10, cursor });
        seen.push(...page.results.map((hit) => hit.message.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor !== undefined);
      assert.equal(pages, 3);
      assert.deepEqual(seen, [...sent].reverse(), 'newest first, each once');
      const exact = await w.f.search.search({ userId: w.bob, query: 'heron', limit: 23 });
      assert.equal(exact.nextCursor, null, 'no cursor when nothing is left');
    });

    it('ranks a message with more of the words above newer ones with fewer', async () => {
      const w = await world();
      const rich = await w.send(w.group, w.alice, w.aliceDevice, { text: 'lynx lynx lynx' });
      const poor = await w.send(w.group, w.alice, w.aliceDevice, { text: 'a lynx among many other words in a long message about other things entirely' });
      assert.deepEqual(await w.ids(w.bob, 'lynx'), [rich, poor]);
    });

    it('returns the stored message with a snippet around the first hit and its highlights', async () => {
      const w = await world();
      const long = `${'lorem ipsum '.repeat(30)}the Café opens at nine ${'dolor sit amet '.repeat(20)}`;
      const id = await w.send(w.group, w.alice, w.aliceDevice, { text: long });
      const [hit] = (await w.f.search.search({ userId: w.bob, query: 'cafe', limit: 5 })).results;
      assert.equal(hit?.message.id, id);
      assert.equal(hit?.message.bodyJson, JSON.stringify({ text: long }));
      assert.ok(hit && hit.snippet.length <= 162, `snippet of ${hit?.snippet.length}`);
      assert.ok(hit?.snippet.startsWith('…') && hit.snippet.endsWith('…'));
      const [start, end] = hit?.highlights[0] as [number, number];
      assert.equal(hit?.snippet.slice(start, end), 'Café');
    });
    it('stores any body: a body the index cannot read is not searchable, and the send still succeeds', async () => {
      const w = await world();
      await w.send(w.group, w.alice, w.aliceDevice, { text: 'nul\u0000inside' });
      await w.send(w.group, w.alice, w.aliceDevice, [1, 2, 3]);
      await w.send(w.group, w.alice, w.aliceDevice, { text: 42 });
      const ok = await w.send(w.group, w.alice, w.aliceDevice, { text: 'plain pelican' });
      assert.deepEqual(await w.ids(w.bob, 'pelican'), [ok]);
    });

    it('checks the index against the messages, and rebuilds it with progress', async () => {
      const w = await world();
      for (let i = 0; i < 6; i++) await w.send(w.group, w.alice, w.aliceDevice, { text: `ibis ${i}` });
      const japanese = await w.send(w.group, w.alice, w.aliceDevice, { text: 'ibis は東京の鳥です' });
      const deleted = await w.send(w.group, w.alice, w.aliceDevice, { text: 'ibis gone' });
      await w.f.deleteForEveryone(deleted);
      assert.deepEqual(await w.f.search.check(), { ok: true, searchable: 7, indexed: 7, problems: [] });
      const first = (await w.ids(w.bob, 'ibis')).at(-1) as number;
      await w.f.dropFromIndex(first);
      const broken = await w.f.search.check();
      assert.equal(broken.ok, false);
      assert.ok(broken.problems.length > 0, 'says what is wrong');
      const progress: Array<[number, number]> = [];
      assert.deepEqual(await w.f.search.rebuild((done, total) => progress.push([done, total])), { indexed: 7 });
      assert.ok(progress.length >= 2, 'progress from 0 to the end');
      assert.deepEqual(progress[0]?.[0], 0);
      const [done, total] = progress.at(-1) as [number, number];
      assert.equal(done, total);
      assert.deepEqual(await w.f.search.check(), { ok: true, searchable: 7, indexed: 7, problems: [] });
      assert.equal((await w.ids(w.bob, 'ibis')).length, 7);
      assert.deepEqual(await w.ids(w.bob, '東京の鳥'), [japanese]);
      assert.deepEqual(await w.ids(w.bob, 'gone'), []);
    });
  });
}
