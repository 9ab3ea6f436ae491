import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatError } from '../../src/errors.js';
import { type ConnectionLimitSettings, ConnectionLimits } from '../../src/services/limits/connection-limits.js';
import { MemoryRateLimitStore } from '../../src/services/limits/memory-rate-limit-store.js';
import { SendBudget } from '../../src/services/limits/send-budget.js';
import { clientAddress } from '../../src/transport/client-address.js';
import { FakeClock } from '../contracts/rate-limit-store.contract.js';


const generous: ConnectionLimitSettings = {
  pauseAfterFloodMs: 10_000,
  connectionsPerAddressPerMinute: 1_000,
  authPerAddressPerMinute: 1_000,
  authPerUserPerMinute: 1_000,
  authPerDevicePerMinute: 1_000,
  maxUnauthenticated: 1_000,
  maxUnauthenticatedPerAddress: 1_000,
  maxConnectionsPerUser: 1_000,
  maxConnectionsPerDevice: 1_000,
};

function limitsWith(settings: Partial<ConnectionLimitSettings>, clock = new FakeClock()) {
  const shared = new MemoryRateLimitStore(clock);
  const limits = new ConnectionLimits({ shared, local: new MemoryRateLimitStore(clock), settings: { ...generous, ...settings } });
  return { limits, clock, shared };
}

/** The rate_limited refusal `run` throws, with its retry hint. */
function refusal(run: () => unknown): ChatError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ChatError, String(error));
    assert.equal(error.code, 'rate_limited');
    return error;
  }
  assert.fail('expected a rate_limited refusal');
}

describe('ConnectionLimits', () => {
  it('pauses the device and user of a flooder: their next connection is refused until the pause is over, another user is not', () => {
    const { limits, clock } = limitsWith({});
    const slot = limits.open('10.0.0.1');
    slot.authenticated(1, 11);
    assert.equal(slot.flooded(), 10);
    slot.release();
    const again = limits.open('10.0.0.1');
    assert.equal(refusal(() => again.authenticated(1, 11)).retryAfterSeconds, 10);
    again.release();
    const otherDevice = limits.open('10.0.0.1');
    assert.equal(refusal(() => otherDevice.authenticated(1, 12)).retryAfterSeconds, 10, 'the user is paused, not only the device');
    otherDevice.release();
    limits.open('10.0.0.1').authenticated(2, 21);
    clock.time += 9_001;
    assert.equal(refusal(() => limits.open('10.0.0.1').authenticated(1, 11)).retryAfterSeconds, 1);
    clock.time += 999;
    limits.open('10.0.0.1').authenticated(1, 11);
  });

  it('pauses no address, not even that of a flooder that never authenticated: others behind it may connect', () => {
    const { limits } = limitsWith({ pauseAfterFloodMs: 3_000 });
    const slot = limits.open('10.0.0.1');
    assert.equal(slot.flooded(), 0);
    slot.release();
    limits.open('10.0.0.1').authenticated(2, 21);
  });

  it('counts the addresses of one IPv6 /64 as one address', () => {
    const { limits } = limitsWith({ maxUnauthenticatedPerAddress: 2 });
    limits.open('2001:db8:0:1::1');
    limits.open('2001:db8:0:1::2');
    assert.equal(refusal(() => limits.open('2001:db8:0:1:ffff::3')).details?.limit, 'limits.max_unauthenticated_per_address');
    limits.open('2001:db8:0:2::1');
  });

  it('caps the connections waiting for auth per address and in total; auth or close frees the place', () => {
    const { limits } = limitsWith({ maxUnauthenticated: 3, maxUnauthenticatedPerAddress: 2 });
    const a1 = limits.open('a');
    const a2 = limits.open('a');
    refusal(() => limits.open('a'));
    const b1 = limits.open('b');
    assert.match(refusal(() => limits.open('c')).message, /3 connections waiting to authenticate/);
    a1.authenticated(1, 11);
    const a3 = limits.open('a');
    refusal(() => limits.open('a'));
    b1.release();
    b1.release();
    limits.open('c');
    refusal(() => limits.open('d'));
    a2.release();
    a3.release();
  });

  it('limits new connections and auth attempts per address per minute', () => {
    const { limits, clock } = limitsWith({ connectionsPerAddressPerMinute: 2, authPerAddressPerMinute: 1 });
    const first = limits.open('a');
    first.authAttempt();
    first.release();
    const second = limits.open('a');
    assert.equal(refusal(() => second.authAttempt()).retryAfterSeconds, 60);
    second.release();
    assert.equal(refusal(() => limits.open('a')).retryAfterSeconds, 30);
    limits.open('b').authAttempt();
    clock.time += 30_000;
    limits.open('a');
  });

  it('limits authentications per device and per user per minute', () => {
    const { limits } = limitsWith({ authPerDevicePerMinute: 2, authPerUserPerMinute: 3 });
    const connect = (user: number, device: number): void => limits.open('a').authenticated(user, device);
    connect(1, 11);
    connect(1, 11);
    assert.match(refusal(() => connect(1, 11)).message, /this device/);
    connect(1, 12);
    assert.match(refusal(() => connect(1, 13)).message, /this user/);
    connect(2, 21);
  });

  it('caps live connections per device and per user until one of them closes', () => {
    const { limits } = limitsWith({ maxConnectionsPerDevice: 2, maxConnectionsPerUser: 3 });
    const live = (user: number, device: number) => {
      const slot = limits.open('a');
      slot.authenticated(user, device);
      return slot;
    };
    const first = live(1, 11);
    live(1, 11);
    assert.match(refusal(() => live(1, 11)).message, /this device already has 2/);
    live(1, 12);
    assert.match(refusal(() => live(1, 13)).message, /this user already has 3/);
    first.release();
    first.release();
    live(1, 13);
    refusal(() => live(1, 14));
  });

  it('a refused authentication leaves the connection waiting for auth, holding no live place', () => {
    const { limits } = limitsWith({ maxConnectionsPerUser: 1, maxUnauthenticated: 1 });
    limits.open('a').authenticated(1, 11);
    const refused = limits.open('a');
    refusal(() => refused.authenticated(1, 12));
    refusal(() => limits.open('b'));
    refused.release();
    limits.open('b');
  });
});

describe('SendBudget', () => {
  it('allows a burst of two seconds of sends per user across everything, then refuses until it refills', () => {
    const clock = new FakeClock();
    const budget = new SendBudget(new MemoryRateLimitStore(clock), 5);
    for (let i = 0; i < 10; i++) budget.spend(1);
    const refused = refusal(() => budget.spend(1));
    assert.equal(refused.retryAfterSeconds, 1);
    budget.spend(2);
    clock.time += 200;
    budget.spend(1);
    refusal(() => budget.spend(1));
  });
});

describe('clientAddress', () => {
  it('is the socket address unless the proxy is trusted, then the last X-Forwarded-For hop', () => {
    assert.equal(clientAddress('10.0.0.1', '203.0.113.9', false), '10.0.0.1');
    assert.equal(clientAddress('10.0.0.1', 'spoofed, 203.0.113.9', true), '203.0.113.9');
    assert.equal(clientAddress('10.0.0.1', undefined, true), '10.0.0.1');
    assert.equal(clientAddress('10.0.0.1', ' , ', true), '10.0.0.1');
  });
});
