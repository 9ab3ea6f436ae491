import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../helpers/fake-clock.js';
import { PasswordHasher } from '../../src/crypto/passwords.js';
import { isChatError } from '../../src/errors.js';
import { AccountService } from '../../src/services/accounts.js';
import { MemoryAuditLog } from '../../src/services/audit.js';
import { RateLimiter } from '../../src/services/rate-limiter.js';
import { migrate, openDatabase } from '../../src/storage/database.js';
import { Store } from '../../src/storage/store.js';
import { SqliteAccountsStorage } from '../../src/storage/sqlite/accounts.js';


/** The service as app.ts builds it with the default [rate_limit] (5 and 30 per 60 s, slow down after 100), on a database in memory. */
async function accounts(): Promise<{ service: AccountService; clock: FakeClock; audit: MemoryAuditLog }> {
  const db = openDatabase({ file: ':memory:', synchronous: 'normal', busyTimeoutMs: 100 });
  migrate(db);
  const clock = new FakeClock();
  const audit = new MemoryAuditLog();
  const windowMs = 60_000;
  const service = new AccountService({
    storage: new SqliteAccountsStorage(new Store(db)),
    hasher: new PasswordHasher({ memoryKib: 1024, timeCost: 1, parallelism: 1 }),
    clock,
    settings: { registration: 'open', passwordMinLength: 8, loginSlowdownMs: 0 },
    limiters: {
      perAddress: new RateLimiter(clock, 30, windowMs),
      failuresPerUsernameAndAddress: new RateLimiter(clock, 5, windowMs),
      failuresPerUsername: new RateLimiter(clock, 100, windowMs),
    },
    revocations: { revoked: () => {} },
    audit,
  });
  await service.createUser({ username: 'alice', password: 'alice-password' });
  return { service, clock, audit };
}

const attempt = (service: AccountService, password: string, address: string) =>
  service.login({ username: 'alice', password, deviceName: 'phone', platform: 'ios' }, address).then(
    () => 'ok',
    (error: unknown) => (isChatError(error) ? error.code : 'thrown'),
  );

describe('login limits', () => {
  it('a wrong password every 10 s for an hour, a little faster than login_per_username refills, never keeps the owner out', async () => {
    const { service, clock } = await accounts();
    const answers = new Map<string, number>();
    for (let minute = 0; minute < 60; minute++) {
      for (let i = 0; i < 6; i++) {
        const answer = await attempt(service, 'guess-guess', '198.51.100.7');
        answers.set(answer, (answers.get(answer) ?? 0) + 1);
        clock.time += 10_000;
      }
      assert.equal(await attempt(service, 'alice-password', '203.0.113.5'), 'ok', `minute ${minute}`);
    }
    assert.deepEqual([...answers.keys()].sort(), ['invalid_credentials', 'rate_limited'], 'the guessing address itself is held back');
  });

  it('guesses sent all at once from one address get no more tries than login_per_username, and a right password gives its try back', async () => {
    const { service } = await accounts();
    const answers = await Promise.all(Array.from({ length: 12 }, () => attempt(service, 'guess-guess', '198.51.100.7')));
    assert.equal(answers.filter((answer) => answer === 'invalid_credentials').length, 5, answers.join(' '));
    const { service: other } = await accounts();
    for (let i = 0; i < 10; i++) assert.equal(await attempt(other, 'alice-password', '203.0.113.5'), 'ok', `login ${i}`);
  });

  it('a flood of guesses from one address is refused there, and the owner still logs in from theirs', async () => {
    const { service, audit } = await accounts();
    const answers: string[] = [];
    for (let i = 0; i < 8; i++) answers.push(await attempt(service, 'guess-guess', '198.51.100.7'));
    assert.deepEqual(answers, [...Array(5).fill('invalid_credentials'), ...Array(3).fill('rate_limited')]);
    assert.equal(await attempt(service, 'alice-password', '198.51.100.7'), 'rate_limited', 'that address waits, even with the right password');
    assert.equal(await attempt(service, 'alice-password', '203.0.113.5'), 'ok');
    assert.deepEqual(
      audit.events.find((event) => event.event === 'rate_limited'),
      { event: 'rate_limited', limit: 'rate_limit.login_per_username', reason: 'refused', userId: 1, address: '198.51.100.7', retryAfterSeconds: 12 },
    );
  });

  it('guesses from many addresses slow the username down but never refuse the right password', async () => {
    const { service, audit } = await accounts();
    for (let address = 0; address < 25; address++) {
      for (let i = 0; i < 5; i++) await attempt(service, 'guess-guess', `198.51.100.${address}`);
    }
    assert.equal(await attempt(service, 'alice-password', '203.0.113.5'), 'ok');
    assert.ok(audit.events.some((event) => event.event === 'rate_limited' && event.reason === 'slowed' && event.address === '203.0.113.5'));
    assert.ok(!audit.events.some((event) => event.event === 'rate_limited' && event.reason === 'refused'), 'no address was refused');
  });
});
