import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryRateLimitStore } from '../../src/services/limits/memory-rate-limit-store.js';

class FakeClock {
  time = 1_000_000;
  now(): number {
    return this.time;
  }
}

const rule = { burst: 3, refillMs: 3_000 };

describe('MemoryRateLimitStore', () => {
  it('allows a burst, then refuses with the seconds until the next token, and refills evenly', () => {
    const clock = new FakeClock();
    const store = new MemoryRateLimitStore(clock);
    for (let i = 0; i < 3; i++) assert.deepEqual(store.take('k', rule), { allowed: true });
    assert.deepEqual(store.take('k', rule), { allowed: false, retryAfterSeconds: 1 });
    clock.time += 999;
    assert.equal(store.take('k', rule).allowed, false);
    clock.time += 1;
    assert.equal(store.take('k', rule).allowed, true);
    assert.equal(store.take('other', rule).allowed, true, 'keys are apart');
  });

  it('rounds a wait of less than a second up to one, and a longer one up to whole seconds', () => {
    const clock = new FakeClock();
    const store = new MemoryRateLimitStore(clock);
    const slow = { burst: 1, refillMs: 60_000 };
    store.take('k', slow);
    clock.time += 500;
    assert.deepEqual(store.take('k', slow), { allowed: false, retryAfterSeconds: 60 });
  });

  it('refuses a paused key until the pause is over, keeping the longer of two pauses', () => {
    const clock = new FakeClock();
    const store = new MemoryRateLimitStore(clock);
    assert.equal(store.pausedFor('device:1'), 0);
    store.pause('device:1', 10_000);
    store.pause('device:1', 2_000);
    clock.time += 4_000;
    assert.equal(store.pausedFor('device:1'), 6_000);
    assert.equal(store.pausedFor('device:2'), 0);
    clock.time += 6_000;
    assert.equal(store.pausedFor('device:1'), 0);
    assert.equal(store.size.pauses, 0, 'an expired pause is forgotten when read');
  });

  it('counts holders up to a maximum, and a release makes room again', () => {
    const store = new MemoryRateLimitStore(new FakeClock());
    assert.equal(store.acquire('live:user:1', 2), true);
    assert.equal(store.acquire('live:user:1', 2), true);
    assert.equal(store.acquire('live:user:1', 2), false);
    store.release('live:user:1');
    assert.equal(store.acquire('live:user:1', 2), true);
    store.release('live:user:1');
    store.release('live:user:1');
    assert.equal(store.size.counts, 0, 'a count at zero is forgotten');
  });

  it('forgets refilled buckets and ended pauses once it holds too many keys', () => {
    const clock = new FakeClock();
    const store = new MemoryRateLimitStore(clock, 4);
    for (let i = 0; i < 3; i++) store.take(`old${i}`, rule);
    for (let i = 0; i < 3; i++) store.pause(`old${i}`, 1_000);
    clock.time += 3_000;
    store.take('new', rule);
    store.pause('new', 1_000);
    assert.deepEqual(store.size, { buckets: 1, pauses: 1, counts: 0 });
  });

  it('keeps buckets that still carry information when it sweeps', () => {
    const clock = new FakeClock();
    const store = new MemoryRateLimitStore(clock, 2);
    const slow = { burst: 1, refillMs: 60_000 };
    store.take('a', slow);
    store.take('b', slow);
    assert.equal(store.take('a', slow).allowed, false, 'a is still empty after the sweep');
  });
});
