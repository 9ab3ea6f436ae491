import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryRateLimitStore } from '../../src/services/limits/memory-rate-limit-store.js';
import { FakeClock, rateLimitStoreContract } from './rate-limit-store.contract.js';

rateLimitStoreContract('in memory', (clock) => new MemoryRateLimitStore(clock));

const rule = { burst: 3, refillMs: 3_000 };

describe('MemoryRateLimitStore', () => {
  it('forgets an ended pause when it is read, and a count at zero', () => {
    const clock = new FakeClock();
    const store = new MemoryRateLimitStore(clock);
    store.pause('device:1', 1_000);
    store.acquire('live:user:1', 1);
    clock.time += 1_000;
    assert.equal(store.pausedFor('device:1'), 0);
    store.release('live:user:1');
    assert.deepEqual(store.size, { buckets: 0, pauses: 0, counts: 0 });
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
