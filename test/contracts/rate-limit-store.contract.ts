import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RateLimitStore } from '../../src/services/limits/rate-limit-store.js';

import { FakeClock } from '../helpers/fake-clock.js';

export { FakeClock };

const rule = { burst: 3, refillMs: 3_000 };

/**
 * What every RateLimitStore must do, whatever keeps its state: run against the
 * in-memory store here, and against a networked one when there is one.
 */
export function rateLimitStoreContract(name: string, makeStore: (clock: FakeClock) => RateLimitStore): void {
  describe(`RateLimitStore contract: ${name}`, () => {
    it('allows a burst, then refuses with the seconds until the next token, and refills evenly', () => {
      const clock = new FakeClock();
      const store = makeStore(clock);
      for (let i = 0; i < 3; i++) assert.deepEqual(store.take('k', rule), { allowed: true });
      assert.deepEqual(store.take('k', rule), { allowed: false, retryAfterSeconds: 1 });
      clock.time += 999;
      assert.equal(store.take('k', rule).allowed, false);
      clock.time += 1;
      assert.equal(store.take('k', rule).allowed, true);
      assert.equal(store.take('other', rule).allowed, true, 'keys are apart');
    });

    it('peeks without taking, and gives a token back up to the burst, never past it', () => {
      const clock = new FakeClock();
      const store = makeStore(clock);
      assert.deepEqual(store.peek('k', rule), { allowed: true });
      for (let i = 0; i < 3; i++) store.take('k', rule);
      assert.deepEqual(store.peek('k', rule), { allowed: false, retryAfterSeconds: 1 });
      assert.deepEqual(store.peek('k', rule), { allowed: false, retryAfterSeconds: 1 }, 'peeking took nothing');
      store.giveBack('k', rule);
      assert.deepEqual(store.peek('k', rule), { allowed: true });
      assert.equal(store.take('k', rule).allowed, true);
      assert.equal(store.take('k', rule).allowed, false);
      store.giveBack('fresh', rule);
      for (let i = 0; i < 3; i++) assert.equal(store.take('fresh', rule).allowed, true);
      assert.equal(store.take('fresh', rule).allowed, false, 'a full bucket gets nothing more back');
    });

    it('rounds a wait up to whole seconds', () => {
      const clock = new FakeClock();
      const store = makeStore(clock);
      const slow = { burst: 1, refillMs: 60_000 };
      store.take('k', slow);
      clock.time += 500;
      assert.deepEqual(store.take('k', slow), { allowed: false, retryAfterSeconds: 60 });
    });

    it('refuses a paused key until the pause is over, keeping the longer of two pauses', () => {
      const clock = new FakeClock();
      const store = makeStore(clock);
      assert.equal(store.pausedFor('device:1'), 0);
      store.pause('device:1', 10_000);
      store.pause('device:1', 2_000);
      clock.time += 4_000;
      assert.equal(store.pausedFor('device:1'), 6_000);
      assert.equal(store.pausedFor('device:2'), 0);
      clock.time += 6_000;
      assert.equal(store.pausedFor('device:1'), 0);
    });

    it('counts holders up to a maximum, and a release makes room again', () => {
      const store = makeStore(new FakeClock());
      assert.equal(store.acquire('live:user:1', 2), true);
      assert.equal(store.acquire('live:user:1', 2), true);
      assert.equal(store.acquire('live:user:1', 2), false);
      assert.equal(store.acquire('live:user:2', 2), true, 'keys are apart');
      store.release('live:user:1');
      assert.equal(store.acquire('live:user:1', 2), true);
      assert.equal(store.acquire('live:user:1', 2), false);
    });
  });
}
