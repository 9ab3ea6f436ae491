import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHistogram } from 'node:perf_hooks';
import { delayHistogram } from '../../src/metrics.js';

const RESOLUTION_MS = 10;
const BOUNDS = [0.001, 0.002, 0.005, 0.01, 0.05] as const;

/** A histogram of intervals (nanoseconds) as libuv's delay monitor records them: each run's delay past the resolution. */
function intervals(delaysMs: readonly number[]): ReturnType<typeof createHistogram> {
  const histogram = createHistogram();
  for (const delay of delaysMs) histogram.record(Math.round((RESOLUTION_MS + delay) * 1e6));
  return histogram;
}

describe('the event-loop delay histogram read from intervals between timer runs', () => {
  it('counts each run under every bound its delay does not exceed, cumulatively', () => {
    // 50 runs on time (0.2 ms late), 30 at 1.5 ms, 15 at 4 ms, 4 at 30 ms, 1 at 200 ms.
    const delays = [...Array<number>(50).fill(0.2), ...Array<number>(30).fill(1.5), ...Array<number>(15).fill(4), ...Array<number>(4).fill(30), 200];
    const result = delayHistogram(intervals(delays), RESOLUTION_MS, BOUNDS);
    assert.deepEqual(result.cumulative, [50, 80, 95, 95, 99]);
    assert.equal(result.count, 100);
    const sum = delays.reduce((total, delay) => total + delay, 0) / 1000;
    assert.ok(Math.abs(result.sum - sum) < sum * 0.002, `sum ${result.sum} s, expected about ${sum} s`);
  });

  it('puts every run under every bound when none was late past the smallest', () => {
    const result = delayHistogram(intervals([0.1, 0.3, 0.5]), RESOLUTION_MS, BOUNDS);
    assert.deepEqual(result.cumulative, [3, 3, 3, 3, 3]);
    assert.equal(result.count, 3);
  });

  it('reports nothing before the first run', () => {
    assert.deepEqual(delayHistogram(createHistogram(), RESOLUTION_MS, BOUNDS), { cumulative: [0, 0, 0, 0, 0], count: 0, sum: 0 });
  });
});
