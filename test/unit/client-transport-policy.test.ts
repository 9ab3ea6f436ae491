import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AttemptEnd, type TransportKind, TransportPolicy } from '../../src/client/transport-policy.js';
import { FakeClock } from '../helpers/fake-clock.js';

/**
 * The transport policy against a scripted series of connection attempts and a
 * fake clock: each attempt is what a socket of that transport did (never
 * opened, went silent, was cut right after its welcome, lived), and the
 * background tries of the WebSocket are answered by the test.
 */
describe('the transport policy', () => {
  const RETRY = 60_000;

  function world(transports: readonly TransportKind[] = ['websocket', 'stream', 'poll']) {
    const clock = new FakeClock();
    const probes: number[] = [];
    const switches: number[] = [];
    const policy = new TransportPolicy({
      transports, retryPreferredMs: RETRY, shortLivedMs: 3000, failuresToFallBack: 2, clock,
      probe: () => probes.push(clock.now()), switchBack: () => switches.push(clock.now()),
    });
    /** One attempt on the transport the policy picks, scripted; returns the transport it used. */
    const attempt = (script: 'never_opened' | 'silent' | 'cut_at_once' | 'lived' | 'unreachable' | 'rate_limited' | 'up'): TransportKind => {
      const kind = policy.next;
      const started = clock.now();
      const end = (ms: number, code: number, welcomed: boolean, failure?: AttemptEnd['failure']): void => {
        clock.advance(ms);
        policy.ended(kind, { welcomedAt: welcomed ? started + 5 : undefined, endedAt: clock.now(), code, failure });
      };
      switch (script) {
        case 'never_opened': end(20, 1006, false); break;
        case 'silent': end(10_000, 4000, false); break; // the connect timeout
        case 'unreachable': end(5, 1006, false, 'unreachable'); break;
        case 'cut_at_once': policy.up(kind); end(50, 1006, true); break;
        case 'lived': policy.up(kind); end(3_600_000, 1006, true); break;
        case 'rate_limited': end(50, 4004, true); break;
        case 'up': policy.up(kind); break;
      }
      return kind;
    };
    return { clock, policy, probes, switches, attempt };
  }

  it('falls back to the stream after the WebSocket fails to open twice in a row, not once', () => {
    const { attempt, policy } = world();
    assert.equal(attempt('never_opened'), 'websocket');
    assert.equal(attempt('never_opened'), 'websocket');
    assert.equal(policy.next, 'stream');
  });

  it('falls back when the WebSocket dies right after its welcome, twice (a proxy that kills upgraded connections)', () => {
    const { attempt, policy } = world();
    attempt('cut_at_once');
    attempt('never_opened');
    assert.equal(policy.next, 'stream');
  });

  it('stays on the WebSocket through cuts of connections that lived, silence after a welcome, and closes the server chose', () => {
    const { attempt, policy } = world();
    attempt('never_opened');
    attempt('lived'); // resets the count
    attempt('never_opened');
    attempt('rate_limited');
    attempt('lived');
    attempt('cut_at_once');
    attempt('lived');
    assert.equal(policy.next, 'websocket');
  });

  it('goes on to poll when the stream opens but no frame comes in time (a buffering proxy), and back to the start after poll fails too', () => {
    const { attempt, policy } = world();
    attempt('never_opened');
    attempt('never_opened');
    assert.equal(attempt('silent'), 'stream');
    assert.equal(attempt('silent'), 'stream');
    assert.equal(policy.next, 'poll');
    assert.equal(attempt('up'), 'poll');
    policy.ended('poll', { welcomedAt: undefined, endedAt: 0, code: 4000 });
    policy.ended('poll', { welcomedAt: undefined, endedAt: 0, code: 4000 });
    assert.equal(policy.next, 'websocket');
  });

  it('tries the WebSocket first again when a fallback cannot reach the server at all (the server is down, not the WebSocket blocked)', () => {
    const { attempt, policy } = world();
    attempt('never_opened');
    attempt('never_opened');
    assert.equal(attempt('unreachable'), 'stream');
    assert.equal(policy.next, 'websocket');
  });

  it('while on a fallback, tries the WebSocket every retry interval, and switches back when a try gets through', () => {
    const { attempt, policy, probes, clock } = world();
    attempt('never_opened');
    attempt('never_opened');
    const fellBackAt = clock.now();
    assert.equal(attempt('up'), 'stream');
    clock.advance(RETRY - 1);
    assert.deepEqual(probes, [], 'not before the interval');
    clock.advance(1);
    assert.deepEqual(probes, [fellBackAt + RETRY]);
    clock.advance(RETRY * 3);
    assert.equal(probes.length, 1, 'one try at a time: the next is timed from the end of this one');
    policy.probeEnded(false);
    assert.equal(policy.next, 'stream');
    clock.advance(RETRY);
    assert.equal(probes.length, 2);
    policy.probeEnded(true);
    assert.equal(policy.next, 'websocket');
    clock.advance(RETRY * 5);
    assert.equal(probes.length, 2, 'on the WebSocket: no more tries');
    assert.equal(clock.pending, 0);
  });

  it('times the next try from the fall back, not from each reconnect of the fallback', () => {
    const { attempt, policy, probes, clock } = world();
    attempt('never_opened');
    attempt('never_opened');
    attempt('up');
    clock.advance(RETRY / 2);
    policy.ended('stream', { welcomedAt: clock.now() - RETRY / 2, endedAt: clock.now(), code: 1006 });
    assert.equal(clock.pending, 0, 'no try while nothing is up');
    clock.advance(RETRY);
    assert.deepEqual(probes, []);
    attempt('up');
    clock.advance(0);
    assert.equal(probes.length, 1, 'overdue: tried as soon as the fallback is up again');
  });

  it('switches back only to a try that is still up 3 s after its welcome: one cut right after it never takes over (no flapping)', () => {
    const { attempt, policy, probes, switches, clock } = world();
    attempt('never_opened');
    attempt('never_opened');
    assert.equal(attempt('up'), 'stream');
    clock.advance(RETRY);
    assert.equal(probes.length, 1);
    // A proxy that kills upgraded connections: welcomed, cut 50 ms later.
    policy.probeWelcomed();
    clock.advance(50);
    policy.probeEnded(false);
    clock.advance(3000);
    assert.deepEqual(switches, [], 'a try cut right after its welcome is not switched to');
    assert.equal(policy.next, 'stream', 'the fallback carries on');
    clock.advance(RETRY - 3000 - 1);
    assert.equal(probes.length, 1);
    clock.advance(1);
    assert.equal(probes.length, 2, 'the next try, a retry interval after the last one ended');
    // This one lives.
    const welcomedAt = clock.now();
    policy.probeWelcomed();
    clock.advance(2999);
    assert.deepEqual(switches, []);
    clock.advance(1);
    assert.deepEqual(switches, [welcomedAt + 3000]);
    policy.probeEnded(true);
    assert.equal(policy.next, 'websocket');
    assert.equal(clock.pending, 0);
  });

  it('with one transport never changes, and never tries anything in the background', () => {
    const { attempt, policy, clock, probes } = world(['stream']);
    for (let i = 0; i < 5; i++) attempt('silent');
    attempt('up');
    clock.advance(RETRY * 2);
    assert.equal(policy.next, 'stream');
    assert.deepEqual(probes, []);
  });
});
