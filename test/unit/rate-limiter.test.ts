import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../helpers/fake-clock.js';
import { TokenBucket } from '../../src/services/limits/token-bucket.js';
import { RateLimiter } from '../../src/services/rate-limiter.js';


describe('RateLimiter', () => {
  it('allows a burst of capacity, then refuses with the seconds until the next attempt', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(clock, 3, 60_000);
    for (let i = 0; i < 3; i++) assert.deepEqual(limiter.take('alice'), { allowed: true });
    assert.deepEqual(limiter.take('alice'), { allowed: false, retryAfterSeconds: 20 });
  });

  it('peek says what take would answer without taking a token', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(clock, 2, 60_000);
    assert.deepEqual(limiter.peek('alice'), { allowed: true });
    limiter.take('alice');
    limiter.take('alice');
    assert.deepEqual(limiter.peek('alice'), { allowed: false, retryAfterSeconds: 30 });
    assert.deepEqual(limiter.peek('alice'), { allowed: false, retryAfterSeconds: 30 }, 'peeking took nothing');
    clock.time += 30_000;
    assert.deepEqual(limiter.peek('alice'), { allowed: true });
    assert.deepEqual(limiter.take('alice'), { allowed: true });
  });

  it('refills evenly over the window', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(clock, 3, 60_000);
    for (let i = 0; i < 3; i++) limiter.take('alice');
    clock.time += 19_999;
    assert.equal(limiter.take('alice').allowed, false);
    clock.time += 1;
    assert.equal(limiter.take('alice').allowed, true);
    assert.equal(limiter.take('alice').allowed, false);
  });

  it('keeps keys apart', () => {
    const limiter = new RateLimiter(new FakeClock(), 1, 60_000);
    assert.equal(limiter.take('alice').allowed, true);
    assert.equal(limiter.take('bob').allowed, true);
    assert.equal(limiter.take('alice').allowed, false);
  });

  it('forgets refilled buckets when it holds too many keys', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(clock, 1, 1_000, 2);
    limiter.take('a');
    limiter.take('b');
    clock.time += 1_000;
    limiter.take('c');
    // 'a' was forgotten (it had refilled), so it starts with a full bucket again.
    assert.equal(limiter.take('a').allowed, true);
    assert.equal(limiter.take('c').allowed, false);
  });
});

describe('TokenBucket (a connection\'s own budget)', () => {
  it('allows the burst, refuses with the seconds until the next token, and refills evenly, as the keyed buckets do', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(clock, { burst: 4, refillMs: 2000 });
    for (let i = 0; i < 4; i++) assert.deepEqual(bucket.take(), { allowed: true });
    assert.deepEqual(bucket.take(), { allowed: false, retryAfterSeconds: 1 });
    clock.advance(499);
    assert.equal(bucket.take().allowed, false);
    clock.advance(1);
    assert.equal(bucket.take().allowed, true, 'one token every 500 ms');
    assert.equal(bucket.take().allowed, false);
    clock.advance(60_000);
    for (let i = 0; i < 4; i++) assert.equal(bucket.take().allowed, true, 'never more than the burst');
    assert.equal(bucket.take().allowed, false);
  });
});
