import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PasswordHasher } from '../../src/crypto/passwords.js';
import { hashInviteCode } from '../../src/crypto/tokens.js';
import { ChatError } from '../../src/errors.js';
import { AccountService, type AccountSettings } from '../../src/services/accounts.js';
import { AdminService } from '../../src/services/admin.js';
import { MemoryAuditLog } from '../../src/services/audit.js';
import { RateLimiter } from '../../src/services/rate-limiter.js';
import type { Revocation } from '../../src/services/types.js';
import { SqliteAccountEventsStorage } from '../../src/storage/sqlite/account-events.js';
import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';
import { memoryStore } from '../contracts/sqlite-fixture.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** AccountService and AdminService over SQLite in memory, a fake clock, and a listener that records what it is told, with what was stored by then. */
function setUp(settings: Partial<AccountSettings> = {}) {
  const store = memoryStore();
  const storage = new SqliteAdminStorage(store);
  const events = new SqliteAccountEventsStorage(store);
  const clock = new FakeClock(10_000_000);
  const hasher = new PasswordHasher({ memoryKib: 1024, timeCost: 1, parallelism: 1 });
  const told: Array<{ revocations: Revocation[]; storedIds: Promise<number[]> }> = [];
  const revocations = {
    revoked: (list: readonly Revocation[]) => void told.push({ revocations: [...list], storedIds: events.accountEventsAfter(0, 100).then((rows) => rows.map((row) => row.id)) }),
  };
  const limiter = () => new RateLimiter(clock, 100, 60_000);
  const audit = new MemoryAuditLog();
  const accounts = new AccountService({
    storage,
    hasher,
    clock,
    settings: { registration: 'open', passwordMinLength: 8, loginSlowdownMs: 0, ...settings },
    limiters: { perAddress: limiter(), failuresPerUsernameAndAddress: limiter(), failuresPerUsername: limiter() },
    revocations,
    audit,
  });
  const admin = new AdminService({ storage, accounts, hasher, clock, passwordMinLength: 8, revocations, audit });
  return { store, accounts, admin, clock, told, audit };
}

const login = (accounts: AccountService, username: string, password = 'password-1') => accounts.login({ username, password, deviceName: 'phone', platform: 'ios' }, '10.0.0.1');

/** Rejects with this code, message and field (today's, which clients and tests rely on). */
function refusal(code: string, message: string | RegExp, field?: string) {
  return (error: unknown) => {
    assert.ok(error instanceof ChatError, String(error));
    assert.equal(error.code, code);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    if (field !== undefined) assert.equal(error.field, field);
    return true;
  };
}

describe('AccountService in process', () => {
  it('registers as the registration mode allows, with the errors clients know', async () => {
    const closed = setUp({ registration: 'closed' });
    await assert.rejects(closed.accounts.register({ username: 'amy', password: 'password-1' }, 'a'), refusal('registration_closed', /registration is closed/));
    const invite = setUp({ registration: 'invite' });
    await assert.rejects(invite.accounts.register({ username: 'amy', password: 'password-1' }, 'a'), refusal('invite_invalid', /invitation only/, 'invite'));
    await assert.rejects(
      invite.accounts.register({ username: 'amy', password: 'password-1', invite: 'nope' }, 'a'),
      refusal('invite_invalid', 'the invite code is unknown, used up, expired or revoked', 'invite'),
    );
    const created = await invite.admin.createInvite({ maxUses: 1, expiresInMs: null, note: '' });
    const amy = await invite.accounts.register({ username: 'amy', password: 'password-1', invite: created.code }, 'a');
    assert.equal(amy.username, 'amy');
    assert.equal((await invite.admin.listInvites())[0]?.uses, 1);
    assert.deepEqual(invite.audit.events.map((event) => event.event).slice(-2), ['invite_used', 'register']);
    const open = setUp();
    await open.accounts.register({ username: 'amy', password: 'password-1' }, 'a');
    await assert.rejects(open.accounts.register({ username: 'AMY', password: 'password-1' }, 'a'), refusal('username_taken', 'the username "AMY" is taken', 'username'));
  });

  it('logs in to a new device whose token authenticates until it is revoked', async () => {
    const { accounts, told } = setUp();
    await accounts.createUser({ username: 'ben', password: 'password-1' });
    await assert.rejects(login(accounts, 'ben', 'wrong-password'), refusal('invalid_credentials', 'wrong username or password'));
    const phone = await login(accounts, 'ben');
    const principal = await accounts.authenticate(phone.token, 'a');
    assert.deepEqual(principal, { user: phone.user, deviceId: phone.device.id });
    assert.equal(await accounts.isSignedIn(phone.device.id), true);
    await accounts.logout(principal);
    assert.deepEqual(told[0]?.revocations.map((r) => [r.deviceId, r.reason]), [[phone.device.id, 'device_revoked']]);
    assert.deepEqual(await told[0]?.storedIds, told[0]?.revocations.map((r) => r.id), 'the listener hears of it after the event committed');
    await assert.rejects(accounts.authenticate(phone.token), refusal('unauthorized', 'the token is unknown or was revoked; log in again'));
    assert.equal(await accounts.isSignedIn(phone.device.id), false);
    await assert.rejects(accounts.authenticate(''), refusal('unauthorized', /unknown or was revoked/));
  });

  it('changes a password and signs out the other devices, keeping the one that asked', async () => {
    const { accounts, told } = setUp();
    await accounts.createUser({ username: 'cat', password: 'password-1' });
    const [phone, laptop, tablet] = [await login(accounts, 'cat'), await login(accounts, 'cat'), await login(accounts, 'cat')];
    const principal = await accounts.authenticate(phone.token);
    await assert.rejects(
      accounts.changePassword(principal, { currentPassword: 'nope-nope', newPassword: 'password-2', revokeOtherDevices: true }),
      refusal('invalid_credentials', 'the password is wrong', 'current_password'),
    );
    assert.deepEqual(await accounts.changePassword(principal, { currentPassword: 'password-1', newPassword: 'password-2', revokeOtherDevices: true }), { revokedDevices: 2 });
    assert.deepEqual(told.flatMap((call) => call.revocations.map((r) => [r.deviceId, r.reason])), [
      [laptop.device.id, 'password_changed'],
      [tablet.device.id, 'password_changed'],
    ]);
    assert.deepEqual((await accounts.listDevices(principal)).map((device) => device.id), [phone.device.id]);
    await login(accounts, 'cat', 'password-2');
  });

  it("answers not_found for a device that is not the caller's, and shows a last-seen time before it is committed", async () => {
    const { accounts, clock } = setUp();
    await accounts.createUser({ username: 'dee', password: 'password-1' });
    await accounts.createUser({ username: 'eve', password: 'password-1' });
    const dee = await accounts.authenticate((await login(accounts, 'dee')).token);
    const eve = await login(accounts, 'eve');
    await assert.rejects(accounts.revokeDevice(dee, eve.device.id), refusal('not_found', `you have no device ${eve.device.id}`));
    clock.advance(5_000);
    accounts.deviceConnected(dee);
    assert.equal((await accounts.listDevices(dee))[0]?.lastSeenAt, clock.now(), 'answered from memory until the group commit');
  });

  it('refuses a disabled user at login and at authentication; the admin disables once, and a second revocation of a device is not_found', async () => {
    const { accounts, admin, told } = setUp();
    await accounts.createUser({ username: 'fin', password: 'password-1' });
    const phone = await login(accounts, 'fin');
    const disabled = await admin.setDisabled('fin', true);
    assert.deepEqual([disabled.disabled, disabled.revokedDevices], [true, 1]);
    await admin.setDisabled('fin', true);
    assert.deepEqual(told.map((call) => call.revocations.map((r) => [r.deviceId, r.reason])), [[[null, 'user_disabled']]], 'told once');
    await assert.rejects(login(accounts, 'fin'), refusal('account_disabled', 'this account is disabled; ask the server admin'));
    await assert.rejects(accounts.authenticate(phone.token), refusal('unauthorized', /revoked/));
    await admin.setDisabled('fin', false);
    const again = await login(accounts, 'fin');
    await admin.revokeDevice(again.device.id);
    await assert.rejects(admin.revokeDevice(again.device.id), refusal('not_found', `device ${again.device.id} is already revoked`));
    await assert.rejects(admin.revokeDevice(99_999), refusal('not_found', 'no device 99999'));
    await admin.deleteUser('fin');
    await assert.rejects(admin.deleteUser('fin'), refusal('not_found', 'no user "fin"'));
    await assert.rejects(accounts.createUser({ username: 'fin', password: 'password-1' }), refusal('username_taken', /taken/), 'the name stays reserved');
  });

  it('revokes an invite by the prefix the list shows only when one invite not yet revoked has it', async () => {
    const { admin, store } = setUp();
    const storage = new SqliteAdminStorage(store);
    // Two codes with the same first four letters (about one pair in a thousand invites).
    const ids = [];
    for (const code of ['abcd-2222-3333-4444', 'abcd-5555-6666-7777']) {
      ids.push(await storage.createInvite({ codeHash: hashInviteCode(code), codePrefix: 'abcd', now: 1, expiresAt: null, maxUses: 1, note: '' }));
    }
    await assert.rejects(admin.revokeInvite('abcd-…'), refusal('bad_request', `2 invites start with abcd (ids ${ids.join(', ')}): give the id`));
    await admin.revokeInvite(String(ids[0]));
    assert.equal((await admin.revokeInvite('ABCD')).id, ids[1], 'the one left not revoked; in any case');
    await assert.rejects(admin.revokeInvite('abcd'), refusal('not_found', /^no invite abcd/));

    // Four digits may be an id or a prefix: whichever exists; both, refused; "-…" says prefix.
    const digits = await storage.createInvite({ codeHash: hashInviteCode('2345-aaaa-bbbb-cccc'), codePrefix: '2345', now: 1, expiresAt: null, maxUses: 1, note: '' });
    assert.equal((await admin.revokeInvite('2345')).id, digits, 'no invite has id 2345: the prefix');
    const third = await storage.createInvite({ codeHash: hashInviteCode('0003-aaaa-bbbb-cccc'), codePrefix: `000${ids.length + 2}`, now: 1, expiresAt: null, maxUses: 1, note: '' });
    const clash = `000${ids.length + 2}`;
    assert.equal(third, ids.length + 2, `invite ${clash} is also the id of this one`);
    await assert.rejects(admin.revokeInvite(clash), refusal('bad_request', `${clash} is both the id of invite ${third} and the prefix of invite ${third}: give ${clash}-… for the prefix, or the whole code`));
    assert.equal((await admin.revokeInvite(`${clash}-…`)).id, third);
  });
});
