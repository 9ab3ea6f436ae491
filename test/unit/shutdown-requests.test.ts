import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ShutdownStep, type StopRequest, shutdownRequests } from '../../src/cli/shutdown-requests.js';

/** Feeds the requests at the given times (ms) and returns the steps. */
function steps(requests: [StopRequest, number][]): ShutdownStep[] {
  let clock = 0;
  const step = shutdownRequests(() => clock, 1_000);
  return requests.map(([request, at]) => {
    clock = at;
    return step(request);
  });
}

describe('the requests that stop chatd serve', () => {
  it('begin a clean shutdown once, whether the signal or the parent loss is handled first', () => {
    assert.deepEqual(steps([['SIGTERM', 0], ['parent gone', 5]]), ['begin', 'ignore']);
    // The flake in the npm package test: npm's shell died of the group's SIGTERM and chatd's parent check ran
    // before its own SIGTERM was handled; that SIGTERM was taken for a second request.
    assert.deepEqual(steps([['parent gone', 0], ['SIGTERM', 5]]), ['begin', 'ignore']);
    assert.deepEqual(steps([['parent gone', 0], ['SIGTERM', 5_000]]), ['begin', 'ignore']);
  });

  it('take a signal after chatd stopped itself (a TLS reload lost its socket) as the first request', () => {
    assert.deepEqual(steps([['listening socket lost', 0], ['SIGTERM', 5_000], ['SIGTERM', 9_000]]), ['begin', 'ignore', 'exit now']);
  });

  it('take a copy of the first signal at once (npx forwarding it) as the same request', () => {
    assert.deepEqual(steps([['SIGINT', 0], ['SIGINT', 999], ['parent gone', 1_200]]), ['begin', 'ignore', 'ignore']);
  });

  it('exit at once on a second signal: another one, or the same one later', () => {
    assert.deepEqual(steps([['SIGTERM', 0], ['SIGINT', 1]]), ['begin', 'exit now']);
    assert.deepEqual(steps([['SIGINT', 0], ['SIGINT', 1_000]]), ['begin', 'exit now']);
    assert.deepEqual(steps([['parent gone', 0], ['SIGINT', 10], ['SIGINT', 2_000]]), ['begin', 'ignore', 'exit now']);
    assert.deepEqual(steps([['SIGTERM', 0], ['SIGHUP', 10]]), ['begin', 'exit now']);
  });
});
