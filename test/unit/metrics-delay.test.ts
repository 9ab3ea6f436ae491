import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHistogram } from 'node:perf_hooks';
import { DelayTotals, delayHistogram, type IntervalCounts } from '../../src/metrics.js';

const RESOLUTION_MS = 10;
const BOUNDS = [0.001, 0.002, 0.005, 0.01, 0.05] as const;

/** A histogram of intervals (nanoseconds) as libuv's delay monitor records them: each run's delay past the resolution. */
function intervals(delaysMs: readonly number[]): ReturnType<typeof createHistogram> {
  const histogram = createHistogram();
  for (const delay of delaysMs) histogram.record(Math.round((RESOLUTION_MS + delay) * 1e6));
  return histogram;
}

/** The same histogram, counting the percentile() calls made of it. */
function countingPercentiles(recorded: IntervalCounts): { counting: IntervalCounts; calls: () => number } {
  let calls = 0;
  const counting: IntervalCounts = {
    count: recorded.count,
    min: recorded.min,
    max: recorded.max,
    mean: recorded.mean,
    percentile: (percentile) => {
      calls += 1;
      return recorded.percentile(percentile);
    },
  };
  return { counting, calls: () => calls };
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

  it('skips the bisection for a bound every run is under or every run is over', () => {
    const recorded = intervals([3, 4, 4.5]);
    const { counting, calls } = countingPercentiles(recorded);
    // 0.001 and 0.002 are under every run, 0.005 and up over every run.
    assert.deepEqual(delayHistogram(counting, RESOLUTION_MS, BOUNDS).cumulative, [0, 0, 3, 3, 3]);
    assert.equal(calls(), 0);
  });

  it('bisects a bound in about log2(count) steps, not a fixed number', () => {
    const delays = [...Array<number>(500).fill(0.2), ...Array<number>(500).fill(3)];
    const recorded = intervals(delays);
    const { counting, calls } = countingPercentiles(recorded);
    assert.deepEqual(delayHistogram(counting, RESOLUTION_MS, BOUNDS).cumulative, [500, 500, 1000, 1000, 1000]);
    // Two bounds fall between the runs; each takes log2(1000) + 3 steps or fewer.
    assert.ok(calls() <= 2 * 13, `${calls()} percentile calls`);
  });
});

describe('the event-loop delay totals read window by window', () => {
  it('starts a new window at each read and adds it to the totals, which never go down', () => {
    const totals = new DelayTotals(RESOLUTION_MS, BOUNDS);
    const window = createHistogram();
    const record = (delaysMs: readonly number[]): void => {
      for (const delay of delaysMs) window.record(Math.round((RESOLUTION_MS + delay) * 1e6));
    };
    record([0.2, 0.2, 1.5, 30]);
    const first = totals.take(window);
    assert.deepEqual(first.cumulative, [2, 3, 3, 3, 4]);
    assert.equal(first.count, 4);
    assert.equal(window.count, 0, 'the window starts again after a read');
    // A slow tick in the first window no longer hides the second one's runs from the max shortcut.
    record([0.2, 4]);
    const second = totals.take(window);
    assert.deepEqual(second.cumulative, [3, 4, 5, 5, 6]);
    assert.equal(second.count, 6);
    assert.ok(second.sum > first.sum);
    assert.ok(Math.abs(second.sum - (0.2 * 3 + 1.5 + 30 + 4) / 1000) < 1e-4, `sum ${second.sum} s`);
    // An empty window leaves the totals as they were.
    const third = totals.take(window);
    assert.deepEqual(third, second);
  });
});
