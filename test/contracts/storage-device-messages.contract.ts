import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccountsStorage } from '../../src/storage/ports/accounts.js';
import type { DeviceMessagesStorage } from '../../src/storage/ports/device-messages.js';
import type { KeysStorage } from '../../src/storage/ports/keys.js';
import { seedUser } from './storage-accounts.contract.js';

export interface DeviceMessagesFixture {
  readonly deviceMessages: DeviceMessagesStorage;
  readonly accounts: AccountsStorage;
  readonly keys: KeysStorage;
  /** Another device messages storage on the same database, as another node opens it; close() closes it too. */
  anotherDeviceMessages(): Promise<DeviceMessagesStorage>;
  /** Async: a networked engine closes its pool. */
  close(): Promise<void>;
}

const NOW = 3_000_000;
const limits = { maxQueueBytes: 10, maxQueueMessages: 3 };

/** A user with three devices, the first and third approved (they may send). */
async function family(fixture: DeviceMessagesFixture): Promise<{ userId: number; a: number; b: number; c: number }> {
  const { userId, deviceIds } = await seedUser(fixture.accounts, 'alice', 3);
  const [a, b, c] = deviceIds as [number, number, number];
  await fixture.keys.publishAccountKey({ userId, deviceId: a, accountKey: 'K', signature: 's', reset: false, passwordConfirmed: false, now: NOW });
  for (const [i, deviceId] of [a, c].entries()) {
    const keys = { encKey: `e${i}`, signKey: `s${i}`, counter: 1, signature: 'sig' };
    await fixture.keys.publishDeviceKeys({ userId, deviceId, keys, certification: { accountSignature: `cert${i}`, verified: true, accountKey: 'K' }, now: NOW });
  }
  return { userId, a, b, c };
}

/** The per-sender bounded queue between a user's devices. */
export function deviceMessagesStorageContract(name: string, open: () => Promise<DeviceMessagesFixture>): void {
  describe(`device messages storage contract: ${name}`, () => {
    it('queues per sender within the bounds, pages by growing id and deletes on ack', async () => {
      const fixture = await open();
      const { deviceMessages } = fixture;
      const { userId, a, b, c } = await family(fixture);
      const send = (from: number, bytes: number) => deviceMessages.sendDeviceMessage({ userId, fromDevice: from, toDevice: b, payload: Buffer.alloc(bytes, from), now: NOW, limits });
      const first = await send(a, 6);
      assert.equal(first.kind, 'stored');
      assert.deepEqual(await send(a, 5), { kind: 'refused', reason: 'queue_bytes', queued: { bytes: 6, count: 1 } });
      for (let i = 0; i < 3; i++) assert.equal((await send(c, 1)).kind, 'stored', 'another sender has its own queue');
      assert.deepEqual(await send(c, 1), { kind: 'refused', reason: 'queue_messages', queued: { bytes: 3, count: 3 } });
      const page = await deviceMessages.deviceMessages(b, 0, 10);
      assert.deepEqual(page.map((message) => message.fromDevice), [a, c, c, c]);
      assert.deepEqual(page.map((row) => row.id), [...page.map((row) => row.id)].sort((x, y) => x - y));
      assert.deepEqual(page[0]?.payload, Buffer.alloc(6, a));
      assert.deepEqual((await deviceMessages.deviceMessages(b, page[1]!.id, 1)).map((row) => row.id), [page[2]!.id]);
      assert.equal(await deviceMessages.ackDeviceMessages(b, page[1]!.id), 2);
      assert.deepEqual((await deviceMessages.deviceMessages(b, 0, 10)).map((row) => row.id), [page[2]!.id, page[3]!.id]);
      assert.equal((await send(a, 10)).kind, 'stored', "the ack made room in a's queue");
      fixture.close();
    });

    it('refuses a pending sender, a target that is not another current device of the user, and a signed-out sender, storing nothing', async () => {
      const fixture = await open();
      const { deviceMessages, accounts } = fixture;
      const { userId, a, b, c } = await family(fixture);
      const other = await seedUser(accounts, 'bob', 1);
      const send = (fromDevice: number, toDevice: number) => deviceMessages.sendDeviceMessage({ userId, fromDevice, toDevice, payload: Buffer.from('x'), now: NOW, limits });
      assert.deepEqual(await send(b, a), { kind: 'refused', reason: 'not_approved' });
      assert.deepEqual(await send(a, a), { kind: 'refused', reason: 'no_target' });
      assert.deepEqual(await send(a, other.deviceIds[0] as number), { kind: 'refused', reason: 'no_target' });
      await accounts.revokeDevices({ userId, deviceIds: [b], now: NOW });
      assert.deepEqual(await send(a, b), { kind: 'refused', reason: 'no_target' });
      await accounts.revokeDevices({ userId, deviceIds: [c], now: NOW });
      assert.equal((await send(c, a)).kind, 'signed_out');
      assert.deepEqual(await deviceMessages.deviceMessages(a, 0, 10), []);
      assert.deepEqual(await deviceMessages.deviceMessages(b, 0, 10), []);
      fixture.close();
    });

    it('keeps each sender within the bounds when storages send at once', async () => {
      const fixture = await open();
      const other = await fixture.anotherDeviceMessages();
      const { userId, a, b, c } = await family(fixture);
      const send = (storage: DeviceMessagesStorage, from: number) =>
        storage.sendDeviceMessage({ userId, fromDevice: from, toDevice: b, payload: Buffer.from('x'), now: NOW, limits });
      const outcomes = await Promise.all([a, a, c, c, a, a, c, c].map((from, i) => send(i % 2 === 0 ? fixture.deviceMessages : other, from)));
      assert.equal(outcomes.filter((outcome) => outcome.kind === 'stored').length, 6, 'three from each sender: the bound');
      const page = await fixture.deviceMessages.deviceMessages(b, 0, 10);
      const storedIds = outcomes.flatMap((outcome) => (outcome.kind === 'stored' ? [outcome.id] : [])).sort((x, y) => x - y);
      assert.deepEqual(page.map((row) => row.id), storedIds, 'every message stored is queued');
      fixture.close();
    });

    it('expires messages stored before the cut-off, and only those', async () => {
      const fixture = await open();
      const { deviceMessages } = fixture;
      const { userId, a, b } = await family(fixture);
      await deviceMessages.sendDeviceMessage({ userId, fromDevice: a, toDevice: b, payload: Buffer.from('old'), now: NOW, limits });
      await deviceMessages.sendDeviceMessage({ userId, fromDevice: a, toDevice: b, payload: Buffer.from('new'), now: NOW + 10, limits });
      assert.equal(await deviceMessages.expireDeviceMessages(NOW), 0, 'exactly at the cut-off: kept');
      assert.equal(await deviceMessages.expireDeviceMessages(NOW + 1), 1);
      assert.deepEqual((await deviceMessages.deviceMessages(b, 0, 10)).map((row) => row.payload.toString()), ['new']);
      fixture.close();
    });
  });
}
