import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { logIn, signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type Connected, type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * Receipts in protocol 4 over the real server (issue 23): a cursor move's
 * `receipt` goes to the authors of the messages it passed and, for a read, to
 * the reader's own devices — nobody else — coalesced per turn; `receipts`
 * answers who has read, received, or not yet received a message.
 */

// writeConfig makes password hashes cheap: a hundred people sign up.
const CONFIG = `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[limits]
connections_per_address_per_minute = 100000
auth_per_address_per_minute = 100000
auth_per_user_per_minute = 100000
auth_per_device_per_minute = 100000
`;

let server: ServerProcess;
before(async () => {
  const dir = tempDir();
  server = await startServer(['--data', `${dir}/data`, '--config', writeConfig(dir, CONFIG)]);
});
after(() => server.stop());

let names = 0;
interface Person {
  readonly id: number;
  /** One live connection per device. */
  readonly devices: TestSocket[];
}

/** A new user with `devices` devices, each connected. */
async function person(prefix: string, devices = 1): Promise<Person> {
  const name = `${prefix}${++names}`;
  const first = await signUp(server.url, name, 'correct horse', 'device-0');
  const tokens = [first.token];
  for (let i = 1; i < devices; i++) tokens.push((await logIn(server.url, name, 'correct horse', `device-${i}`)).token);
  const connected: Connected[] = [];
  for (const token of tokens) connected.push(await connectAuthenticated(server.wsUrl, token));
  return { id: first.userId, devices: connected.map((c) => c.socket) };
}

/** `count` people, a few signing up at a time. */
async function people(prefix: string, count: number): Promise<Person[]> {
  const made: Person[] = [];
  while (made.length < count) made.push(...(await Promise.all(Array.from({ length: Math.min(8, count - made.length) }, () => person(prefix)))));
  return made;
}

let sends = 0;
const send = (socket: TestSocket, threadId: number, text: string): Promise<any> =>
  socket.expect({ type: 'send', thread_id: threadId, client_msg_id: `c${++sends}`, body: { text } }, 'ack');

const isReceipt = (frame: any): boolean => frame.type === 'receipt';
const receiptsOf = (socket: TestSocket): any[] => socket.arrivals.filter(isReceipt);

/** Waits until the socket has received `count` receipt frames (counting those already come). */
async function receiptsArrived(socket: TestSocket, count: number): Promise<void> {
  while (receiptsOf(socket).length < count) await socket.nextEvent(isReceipt);
}

/** A reply without its request id. */
function withoutId(frame: any): any {
  const { id, ...rest } = frame;
  assert.equal(typeof id, 'string');
  return rest;
}

/** A ping round trip on each socket: every frame the server wrote to it before the pong has arrived. */
const drained = (sockets: readonly TestSocket[]): Promise<unknown> => Promise.all(sockets.map((socket) => socket.expect({ type: 'ping' }, 'pong')));

describe('receipts in protocol 4', { timeout: 120_000 }, () => {
  it("a group of 100, all online: a member's delivered and read receipts reach only the author's devices, and the read also the reader's own devices", async () => {
    const author = await person('author', 2);
    const reader = await person('reader', 2);
    const others = await people('member', 98);
    const members = [reader, ...others];
    const everyone = [author, ...members];
    const created = await author.devices[0]!.expect({ type: 'group_create', title: 'Hundred', members: members.map((m) => m.id) }, 'thread');
    const group = created.thread.id;
    assert.equal(created.members.length, 100);
    const sent = await send(author.devices[0]!, group, 'hello, hundred');
    // Every device of every other member receives it, then acks it as a client does.
    await Promise.all(
      members.flatMap((m) =>
        m.devices.map(async (socket) => {
          await socket.nextEvent((f) => f.type === 'message' && f.message.seq === sent.seq);
          await socket.expect({ type: 'delivered', thread_id: group, seq: sent.seq }, 'delivered');
        }),
      ),
    );
    await reader.devices[0]!.expect({ type: 'read', thread_id: group, seq: sent.seq }, 'read_state');

    // The author: one delivered receipt per other member, one read receipt; the reader's devices: their read.
    await Promise.all([...author.devices.map((socket) => receiptsArrived(socket, 100)), ...reader.devices.map((socket) => receiptsArrived(socket, 1))]);
    await drained(everyone.flatMap((p) => p.devices));

    for (const socket of author.devices) {
      const got = receiptsOf(socket);
      assert.equal(got.length, 100, 'one per cursor move');
      const delivered = got.filter((f) => f.kind === 'delivered');
      assert.deepEqual(
        delivered.map((f) => f.user_id).sort((a, b) => a - b),
        members.map((m) => m.id).sort((a, b) => a - b),
        'a delivered receipt from each other member, once',
      );
      assert.ok(delivered.every((f) => f.thread_id === group && f.seq === sent.seq));
      assert.deepEqual(
        got.filter((f) => f.kind === 'read'),
        [{ type: 'receipt', thread_id: group, user_id: reader.id, kind: 'read', seq: sent.seq }],
      );
    }
    for (const socket of reader.devices) {
      assert.deepEqual(receiptsOf(socket), [{ type: 'receipt', thread_id: group, user_id: reader.id, kind: 'read', seq: sent.seq }], "the reader's own devices: their read only");
    }
    const bystanders = others.flatMap((m) => m.devices.map((socket) => receiptsOf(socket).length));
    assert.deepEqual(bystanders, others.map(() => 0), 'nobody else gets any receipt');
    for (const p of everyone) for (const socket of p.devices) socket.close();
  });

  it("coalesces a member's acks that come together: the author's receipts never go back, and end at the highest seq", async () => {
    const [author, member, onlooker] = [await person('author'), await person('member'), await person('onlooker')];
    const group = (await author.devices[0]!.expect({ type: 'group_create', title: 'Three', members: [member.id, onlooker.id] }, 'thread')).thread.id;
    const seqs: number[] = [];
    for (let i = 1; i <= 6; i++) seqs.push((await send(author.devices[0]!, group, `m${i}`)).seq);
    const socket = member.devices[0]!;
    await socket.nextEvent((f) => f.type === 'message' && f.message.seq === seqs.at(-1));
    // Back-to-back frames, sent before any reply: the server reads them together.
    await Promise.all(seqs.map((seq) => socket.request({ type: 'delivered', thread_id: group, seq })));
    const highest = seqs.at(-1) as number;
    const authorSocket = author.devices[0]!;
    await authorSocket.nextEvent((f) => isReceipt(f) && f.seq === highest);
    await drained([authorSocket, socket, onlooker.devices[0]!]);
    const got = receiptsOf(authorSocket);
    assert.ok(got.length >= 1 && got.length <= seqs.length, JSON.stringify(got));
    assert.ok(got.every((f) => f.kind === 'delivered' && f.user_id === member.id && f.thread_id === group));
    for (let i = 1; i < got.length; i++) assert.ok(got[i].seq > got[i - 1].seq, `no receipt goes back: ${JSON.stringify(got)}`);
    assert.equal(got.at(-1).seq, highest);
    assert.deepEqual(receiptsOf(socket), [], 'the acking member hears nothing of its own acks');
    assert.deepEqual(receiptsOf(onlooker.devices[0]!), [], 'nor does a member who wrote none of it');
    for (const p of [author, member, onlooker]) p.devices[0]!.close();
  });

  it('receipts: who has read, received, or not yet received a message, the author and later members left out; not_found and invalid_field as for read', async () => {
    const [author, reader, receiver, waiting, later, outsider] = [
      await person('author'),
      await person('reader'),
      await person('receiver'),
      await person('waiting'),
      await person('later'),
      await person('outsider'),
    ];
    const a = author.devices[0]!;
    const group = (await a.expect({ type: 'group_create', title: 'Four', members: [reader.id, receiver.id, waiting.id] }, 'thread')).thread.id;
    const { seq } = await send(a, group, 'who has it?');
    await reader.devices[0]!.expect({ type: 'read', thread_id: group, seq }, 'read_state');
    await receiver.devices[0]!.expect({ type: 'delivered', thread_id: group, seq }, 'delivered');
    await a.expect({ type: 'group_add', thread_id: group, members: [later.id] }, 'thread');

    const expected = { type: 'receipts', thread_id: group, seq, read: [reader.id], delivered: [receiver.id], pending: [waiting.id] };
    assert.deepEqual(withoutId(await a.expect({ type: 'receipts', thread_id: group, seq }, 'receipts')), expected);
    assert.deepEqual(withoutId(await waiting.devices[0]!.expect({ type: 'receipts', thread_id: group, seq }, 'receipts')), expected, 'any current member may ask');
    // The "added" message: the later member may see it, its author (the owner who added them) is left out.
    const added = withoutId(await later.devices[0]!.expect({ type: 'receipts', thread_id: group, seq: seq + 1 }, 'receipts'));
    assert.deepEqual(added, { type: 'receipts', thread_id: group, seq: seq + 1, read: [], delivered: [], pending: [reader.id, receiver.id, waiting.id, later.id] });

    const notFound = async (socket: TestSocket, frame: Record<string, unknown>, message: string) => {
      const reply = await socket.request({ type: 'receipts', ...frame });
      assert.equal(reply.error?.code, 'not_found', JSON.stringify(reply));
      assert.equal(reply.error.message, message);
    };
    await notFound(later.devices[0]!, { thread_id: group, seq }, `no message ${seq} in thread ${group}`);
    await notFound(a, { thread_id: group, seq: 99 }, `no message 99 in thread ${group}`);
    await notFound(outsider.devices[0]!, { thread_id: group, seq }, `no thread ${group}`);
    await waiting.devices[0]!.expect({ type: 'group_leave', thread_id: group }, 'ok');
    await notFound(waiting.devices[0]!, { thread_id: group, seq }, `no thread ${group}`);
    const afterLeaving = withoutId(await a.expect({ type: 'receipts', thread_id: group, seq }, 'receipts'));
    assert.deepEqual(afterLeaving, { ...expected, pending: [] }, 'a former member is left out');

    for (const [frame, field] of [
      [{ thread_id: group }, 'seq'],
      [{ thread_id: group, seq: -1 }, 'seq'],
      [{ thread_id: 'x', seq: 1 }, 'thread_id'],
      [{ seq: 1 }, 'thread_id'],
    ] as const) {
      const reply = await a.request({ type: 'receipts', ...frame });
      assert.equal(reply.error?.code, 'invalid_field', JSON.stringify(reply));
      assert.equal(reply.error.field, field);
    }
    for (const p of [author, reader, receiver, waiting, later, outsider]) p.devices[0]!.close();
  });

  it('a former member who wrote in the range a member acks and reads past gets no receipt; the authors still in the group do', async () => {
    const [author, leaver, reader] = [await person('author'), await person('leaver'), await person('reader')];
    const a = author.devices[0]!;
    const [l, r] = [leaver.devices[0]!, reader.devices[0]!];
    const group = (await a.expect({ type: 'group_create', title: 'Leaving', members: [leaver.id, reader.id] }, 'thread')).thread.id;
    await send(l, group, 'from the one who leaves');
    const { seq } = await send(a, group, 'from the one who stays');
    await l.expect({ type: 'group_leave', thread_id: group }, 'ok');
    await r.nextEvent((f) => f.type === 'message' && f.message.seq === seq);
    await r.expect({ type: 'delivered', thread_id: group, seq }, 'delivered');
    await r.expect({ type: 'read', thread_id: group, seq }, 'read_state');
    // The author's read receipt: the server has published the receipts of both moves.
    await a.nextEvent((f) => isReceipt(f) && f.kind === 'read');
    await drained([a, l, r]);
    assert.deepEqual(
      receiptsOf(a).map((f) => [f.kind, f.user_id, f.seq]),
      [
        ['delivered', reader.id, seq],
        ['read', reader.id, seq],
      ],
    );
    assert.deepEqual(receiptsOf(l), [], 'the former member learns nothing of how far the group got');
    for (const socket of [a, l, r]) socket.close();
  });

  it("1-1: the peer's delivered and read receipts reach the author; the read also the reader's other device; the acking device gets no delivered receipt", async () => {
    const alice = await person('alice');
    const bob = await person('bob', 2);
    const a = alice.devices[0]!;
    const [b0, b1] = bob.devices as [TestSocket, TestSocket];
    const thread = (await a.expect({ type: 'direct_open', user_id: bob.id }, 'thread')).thread.id;
    const { seq } = await send(a, thread, 'hi bob');
    await b0.nextEvent((f) => f.type === 'message' && f.message.seq === seq);
    await b0.expect({ type: 'delivered', thread_id: thread, seq }, 'delivered');
    assert.deepEqual(await a.nextEvent(isReceipt), { type: 'receipt', thread_id: thread, user_id: bob.id, kind: 'delivered', seq });
    await b0.expect({ type: 'read', thread_id: thread, seq }, 'read_state');
    const read = { type: 'receipt', thread_id: thread, user_id: bob.id, kind: 'read', seq };
    assert.deepEqual(await a.nextEvent(isReceipt), read);
    assert.deepEqual(await b1.nextEvent(isReceipt), read, "the reader's other device: read sync");
    assert.deepEqual(await b0.nextEvent(isReceipt), read);
    await drained([a, b0, b1]);
    assert.deepEqual(receiptsOf(a), [{ ...read, kind: 'delivered' }, read]);
    for (const socket of [b0, b1]) assert.deepEqual(receiptsOf(socket), [read], "bob's devices: no delivered receipt of his own");
    for (const socket of [a, b0, b1]) socket.close();
  });
});
