import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../helpers/fake-clock.js';
import { MemoryAuditLog } from '../../src/services/audit.js';
import { ThrottledAuditLog } from '../../src/services/audit-throttle.js';

describe('ThrottledAuditLog', () => {
  const setup = () => {
    const clock = new FakeClock();
    const inner = new MemoryAuditLog();
    return { clock, inner, audit: new ThrottledAuditLog(inner, clock, 3, 4) };
  };

  it('writes at most so many refusals a minute per event and address, then says how many it left out', () => {
    const { clock, inner, audit } = setup();
    for (let i = 0; i < 50; i++) audit.record('token_refused', { address: '198.51.100.7', reason: 'unauthorized' });
    audit.record('token_refused', { address: '203.0.113.5', reason: 'unauthorized' });
    assert.equal(inner.events.filter((event) => event.address === '198.51.100.7').length, 3);
    assert.equal(inner.events.filter((event) => event.address === '203.0.113.5').length, 1, 'another address has its own allowance');
    clock.time += 60_000;
    audit.record('token_refused', { address: '198.51.100.7', reason: 'unauthorized' });
    assert.equal(inner.events.at(-1)?.suppressed, 47);
  });

  it('passes every other event through, however many', () => {
    const { inner, audit } = setup();
    for (let i = 0; i < 20; i++) audit.record('login', { userId: 1, address: '198.51.100.7' });
    assert.equal(inner.events.length, 20);
  });

  it('keeps at most maxKeys windows', () => {
    const { inner, audit } = setup();
    for (let i = 0; i < 100; i++) audit.record('rate_limited', { address: `10.0.0.${i}`, limit: 'limits.x', reason: 'refused' });
    assert.equal(inner.events.length, 100);
    assert.ok((audit as unknown as { windows: Map<string, unknown> }).windows.size <= 4);
  });
});
