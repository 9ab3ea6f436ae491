import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccountEventsStorage } from '../../src/storage/ports/account-events.js';
import type { AccountsStorage } from '../../src/storage/ports/accounts.js';
import type { AdminStorage } from '../../src/storage/ports/admin.js';

/** The accounts' storage under test, with what the tests seed through engine-specific means. */
export interface AccountsFixture {
  readonly accounts: AccountsStorage;
  readonly admin: AdminStorage;
  readonly events: AccountEventsStorage;
  /** Stores an invite usable `maxUses` times until `expiresAt` (null: never). */
  seedInvite(codeHash: Buffer, maxUses: number, expiresAt: number | null): Promise<number>;
  /** Another accounts storage on the same database, as another node opens it; close() closes it too. */
  anotherAccounts(): Promise<AccountsStorage>;
  /** Async: a networked engine closes its pool. */
  close(): Promise<void>;
}

const NOW = 1_000_000;

/** A user with `devices` devices, made through the port (tokens are `username-i`). */
export async function seedUser(accounts: AccountsStorage, username: string, devices: number): Promise<{ userId: number; deviceIds: number[] }> {
  const created = await accounts.createUser({ username, displayName: username, passwordHash: 'hash', inviteHash: null, now: NOW });
  assert.equal(created.kind, 'created');
  const userId = (created as { userId: number }).userId;
  const deviceIds: number[] = [];
  for (let i = 0; i < devices; i++) {
    const added = await accounts.addDevice({ userId, name: `d${i}`, platform: 'cli', tokenHash: Buffer.from(`${username}-${i}`), now: NOW });
    assert.equal(added.kind, 'added');
    deviceIds.push((added as { deviceId: number }).deviceId);
  }
  return { userId, deviceIds };
}

/**
 * What every AccountsStorage / AdminStorage / AccountEventsStorage must do,
 * whatever engine keeps the rows: run on SQLite here, on PostgreSQL later.
 */
export function accountsStorageContract(name: string, open: () => Promise<AccountsFixture>): void {
  describe(`accounts storage contract: ${name}`, () => {
    it('keeps usernames unique whatever their case, deleted users included, and a taken name creates nothing', async () => {
      const { accounts, admin, close } = await open();
      await seedUser(accounts, 'alice', 0);
      const again = await accounts.createUser({ username: 'ALICE', displayName: 'x', passwordHash: 'h', inviteHash: null, now: NOW });
      assert.deepEqual(again, { kind: 'refused', reason: 'username_taken' });
      const bob = await seedUser(accounts, 'bob', 0);
      await admin.deleteUser({ userId: bob.userId, now: NOW });
      assert.deepEqual(await accounts.createUser({ username: 'bob', displayName: 'x', passwordHash: 'h', inviteHash: null, now: NOW }), {
        kind: 'refused',
        reason: 'username_taken',
      });
      assert.deepEqual((await admin.listUsers()).map((user) => user.username), ['alice']);
      assert.equal((await accounts.userByUsername('Alice'))?.username, 'alice');
      await close();
    });

    it('uses an invite in the same unit as the user it creates: a taken name leaves it unused, an unusable one creates nobody', async () => {
      const { accounts, admin, seedInvite, close } = await open();
      await seedUser(accounts, 'carol', 0);
      const hash = Buffer.from('invite-1');
      const inviteId = await seedInvite(hash, 1, null);
      assert.deepEqual(await accounts.createUser({ username: 'carol', displayName: 'c', passwordHash: 'h', inviteHash: hash, now: NOW }), {
        kind: 'refused',
        reason: 'username_taken',
      });
      assert.equal((await admin.invite({ id: inviteId }))?.uses, 0, 'not used up by the refusal');
      const created = await accounts.createUser({ username: 'dave', displayName: 'd', passwordHash: 'h', inviteHash: hash, now: NOW });
      assert.equal(created.kind === 'created' && created.inviteId, inviteId);
      assert.deepEqual(await accounts.createUser({ username: 'erin', displayName: 'e', passwordHash: 'h', inviteHash: hash, now: NOW }), {
        kind: 'refused',
        reason: 'invite_invalid',
      });
      assert.equal(await accounts.userByUsername('erin'), undefined);
      const expired = Buffer.from('invite-2');
      await seedInvite(expired, 5, NOW);
      assert.equal((await accounts.createUser({ username: 'fay', displayName: 'f', passwordHash: 'h', inviteHash: expired, now: NOW })).kind, 'refused');
      await close();
    });

    it("admits one user with an invite's last use, however many storages redeem it at once", async () => {
      const { accounts, admin, seedInvite, anotherAccounts, close } = await open();
      const other = await anotherAccounts();
      const hash = Buffer.from('invite-last');
      const inviteId = await seedInvite(hash, 2, null);
      assert.equal((await accounts.createUser({ username: 'first', displayName: 'f', passwordHash: 'h', inviteHash: hash, now: NOW })).kind, 'created');
      const redeem = (storage: AccountsStorage, username: string) => storage.createUser({ username, displayName: username, passwordHash: 'h', inviteHash: hash, now: NOW });
      const outcomes = await Promise.all([redeem(accounts, 'amy'), redeem(other, 'ben'), redeem(accounts, 'cy'), redeem(other, 'di')]);
      assert.equal(outcomes.filter((outcome) => outcome.kind === 'created').length, 1, 'the last use admits one');
      assert.deepEqual(
        outcomes.filter((outcome) => outcome.kind === 'refused'),
        [1, 2, 3].map(() => ({ kind: 'refused', reason: 'invite_invalid' })),
      );
      assert.equal((await admin.invite({ id: inviteId }))?.uses, 2);
      assert.equal((await admin.listUsers()).length, 2);
      await close();
    });

    it('finds a device by its token hash only while it is not revoked, and reports its token state', async () => {
      const { accounts, close } = await open();
      const gus = await seedUser(accounts, 'gus', 2);
      const [first, second] = gus.deviceIds as [number, number];
      const found = await accounts.deviceByTokenHash(Buffer.from('gus-1'));
      assert.deepEqual([found?.device.id, found?.user.username], [second, 'gus']);
      const change = await accounts.revokeDevices({ userId: gus.userId, deviceIds: [second, second], now: NOW });
      assert.deepEqual(change.deviceIds, [second]);
      assert.equal(await accounts.deviceByTokenHash(Buffer.from('gus-1')), undefined);
      assert.deepEqual(await accounts.tokenState(second), { revoked: true, disabled: false, deleted: false });
      assert.deepEqual(await accounts.tokenState(first), { revoked: false, disabled: false, deleted: false });
      assert.equal(await accounts.tokenState(9_999), undefined);
      assert.deepEqual((await accounts.revokeDevices({ userId: gus.userId, deviceIds: [second], now: NOW })).deviceIds, [], 'already revoked: not again');
      assert.deepEqual((await accounts.devicesOfUser(gus.userId, { includeRevoked: false })).map((row) => row.id), [first]);
      assert.deepEqual((await accounts.devicesOfUser(gus.userId, { includeRevoked: true })).map((row) => row.id), [first, second]);
      await close();
    });

    it('refuses a new device to a user disabled or deleted meanwhile', async () => {
      const { accounts, admin, close } = await open();
      const hal = await seedUser(accounts, 'hal', 0);
      await admin.disableUser({ userId: hal.userId, now: NOW });
      const added = await accounts.addDevice({ userId: hal.userId, name: 'x', platform: 'cli', tokenHash: Buffer.from('t'), now: NOW });
      assert.deepEqual(added, { kind: 'refused', reason: 'account_disabled' });
      await admin.enableUser(hal.userId);
      assert.equal((await accounts.addDevice({ userId: hal.userId, name: 'x', platform: 'cli', tokenHash: Buffer.from('t'), now: NOW })).kind, 'added');
      await close();
    });

    it('records an account event with every revocation, in the unit that revokes, ids growing in commit order', async () => {
      const { accounts, admin, events, close } = await open();
      const start = await events.latestAccountEventId();
      const ida = await seedUser(accounts, 'ida', 3);
      const [a, b, c] = ida.deviceIds as [number, number, number];
      const revoked = await accounts.revokeDevices({ userId: ida.userId, deviceIds: [a], now: NOW });
      const changed = await accounts.changePassword({ userId: ida.userId, passwordHash: 'new', revoke: { keepDeviceId: b }, now: NOW });
      assert.deepEqual(changed.deviceIds, [c], 'every live device but the one kept');
      const unchanged = await accounts.changePassword({ userId: ida.userId, passwordHash: 'newer', revoke: null, now: NOW });
      assert.deepEqual(unchanged, { deviceIds: [], events: [] });
      assert.equal((await accounts.userById(ida.userId))?.passwordHash, 'newer');
      const disabled = await admin.disableUser({ userId: ida.userId, now: NOW });
      assert.deepEqual(disabled.deviceIds, [b]);
      const again = await admin.disableUser({ userId: ida.userId, now: NOW });
      assert.deepEqual(again.events, [], 'already disabled: no connection to close, no event');
      const deleted = await admin.deleteUser({ userId: ida.userId, now: NOW });
      const returned = [revoked, changed, disabled, deleted].flatMap((change) => change.events);
      const stored = await events.accountEventsAfter(start, 100);
      assert.deepEqual(stored, returned, 'what the units return is what was stored');
      assert.deepEqual(
        stored.map((event) => [event.deviceId, event.reason]),
        [
          [a, 'device_revoked'],
          [c, 'password_changed'],
          [null, 'user_disabled'],
          [null, 'user_deleted'],
        ],
      );
      assert.deepEqual(stored.map((row) => row.id), [...stored.map((row) => row.id)].sort((x, y) => x - y));
      assert.equal(await events.latestAccountEventId(), stored.at(-1)?.id);
      assert.deepEqual(await events.accountEventsAfter(stored[1]!.id, 1), [stored[2]], 'paged by id');
      assert.deepEqual(await accounts.tokenState(b), { revoked: true, disabled: true, deleted: true });
      await close();
    });

    it('resolves each write only once what it wrote is there for any read', async () => {
      const { accounts, admin, close } = await open();
      const jo = await seedUser(accounts, 'jo', 1);
      const device = jo.deviceIds[0] as number;
      await accounts.touchDevice(device, NOW + 5);
      assert.equal((await accounts.deviceById(device))?.lastSeenAt, NOW + 5);
      const writes = [accounts.setPasswordHash(jo.userId, 'p2'), admin.createInvite({ codeHash: Buffer.from('i'), codePrefix: 'ABCD', now: NOW, expiresAt: null, maxUses: 1, note: 'n' })];
      const [, inviteId] = await Promise.all(writes);
      assert.equal((await accounts.userById(jo.userId))?.passwordHash, 'p2');
      assert.equal((await admin.listInvites()).find((row) => row.id === inviteId)?.codePrefix, 'ABCD');
      assert.equal(await admin.revokeInvite(inviteId as number, NOW), true);
      assert.equal(await admin.revokeInvite(inviteId as number, NOW), false, 'once');
      assert.equal((await admin.invite({ codeHash: Buffer.from('i') }))?.revokedAt, NOW);
      await close();
    });

    it('counts users, devices and open invites for the admin', async () => {
      const { accounts, admin, seedInvite, close } = await open();
      const kim = await seedUser(accounts, 'kim', 2);
      await seedUser(accounts, 'lee', 1);
      await admin.disableUser({ userId: kim.userId, now: NOW });
      await seedInvite(Buffer.from('open'), 2, null);
      const counts = await admin.counts(NOW);
      assert.deepEqual([counts.users, counts.disabledUsers, counts.devices, counts.invitesOpen], [2, 1, 1, 1]);
      // Real booleans, whatever the engine stores.
      assert.deepEqual((await admin.listUsers()).map((user) => [user.username, user.disabled]), [['kim', true], ['lee', false]]);
      assert.deepEqual(await admin.pushCounts(), { sent: 0, failed: 0, droppedTokens: 0, skipped: 0, queued: 0 });
      assert.equal(await admin.badgeCount(kim.userId), 0, 'in no thread: nothing unread');
      await close();
    });

    it('changes a display name, but not of a deleted user', async () => {
      const { accounts, admin, close } = await open();
      const kim = await seedUser(accounts, 'kim', 0);
      const gone = await seedUser(accounts, 'gone', 0);
      await admin.deleteUser({ userId: gone.userId, now: NOW });
      assert.equal(await accounts.setDisplayName(kim.userId, 'Kim Lee ✨'), true);
      assert.equal((await accounts.userById(kim.userId))?.displayName, 'Kim Lee ✨');
      assert.equal(await accounts.setDisplayName(gone.userId, 'Back'), false, 'deleted');
      assert.equal((await accounts.userById(gone.userId))?.displayName, 'gone');
      assert.equal(await accounts.setDisplayName(999_999, 'Nobody'), false, 'unknown');
      await close();
    });

    it('finds people by a prefix of the username, the display name or a word of it, never disabled, deleted or the searcher', async () => {
      const { accounts, admin, close } = await open();
      const me = await seedUser(accounts, 'alex', 0);
      const ids = new Map<string, number>();
      for (const name of ['alexandra', 'Al', 'bob', 'carol', 'al_x', 'alxx', 'gone', 'off']) ids.set(name, (await seedUser(accounts, name, 0)).userId);
      await accounts.setDisplayName(ids.get('bob') as number, 'Albert Bob');
      await accounts.setDisplayName(ids.get('carol') as number, 'Carol Alvarez');
      await accounts.setDisplayName(ids.get('gone') as number, 'Alfred Gone');
      await accounts.setDisplayName(ids.get('off') as number, 'Alma Off');
      await admin.deleteUser({ userId: ids.get('gone') as number, now: NOW });
      await admin.disableUser({ userId: ids.get('off') as number, now: NOW });
      const names = async (match: 'prefix' | 'exact', query: string, limit = 10): Promise<string[]> =>
        (await accounts.findUsers({ match, query, excludeUserId: me.userId, limit })).map((user) => user.username);
      // A whole-username match first ("Al" for "al"), then by username, case folded; a word of a display name counts ("Alvarez").
      assert.deepEqual(await names('prefix', 'al'), ['Al', 'al_x', 'alexandra', 'alxx', 'bob', 'carol']);
      assert.deepEqual(await names('prefix', 'AL', 3), ['Al', 'al_x', 'alexandra']);
      assert.deepEqual(await names('prefix', 'alb'), ['bob'], 'display name prefix');
      // LIKE's wildcards are literal: "al_" is not "al" and any character.
      assert.deepEqual(await names('prefix', 'al_'), ['al_x']);
      assert.deepEqual(await names('prefix', '%'), []);
      assert.deepEqual(await names('prefix', 'ale'), ['alexandra'], 'the searcher is never found');
      assert.deepEqual(await names('prefix', 'alf'), [], 'deleted');
      assert.deepEqual(await names('prefix', 'alm'), [], 'disabled');
      assert.deepEqual(await names('exact', 'ALEXANDRA'), ['alexandra']);
      assert.deepEqual(await names('exact', 'alexand'), [], 'exact is the whole username');
      assert.deepEqual(await names('exact', 'off'), [], 'disabled');
      await close();
    });
  });
}
