import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ServerMetrics, loopFigures } from '../../bench/lib/server.js';

/** A scrape: cumulative delay counts for the bounds 0.001, 0.01, 0.1 and +Inf seconds. */
const scrape = (at: number, counts: [number, number, number, number], totals: Partial<ServerMetrics> = {}): ServerMetrics => ({
  at,
  transactions: 0,
  writes: 0,
  transactionSeconds: 0,
  gcSeconds: 0,
  storageRoundTrips: 0,
  busRoundTrips: 0,
  delay: [
    [0.001, counts[0]],
    [0.01, counts[1]],
    [0.1, counts[2]],
    [Number.POSITIVE_INFINITY, counts[3]],
  ],
  ...totals,
});

describe('bench: the server loop figures between two scrapes of /metrics', () => {
  it('turns counter differences into shares of the window and writes per commit', () => {
    const figures = loopFigures(
      scrape(1_000, [0, 0, 0, 0], { transactions: 10, writes: 100, transactionSeconds: 1, gcSeconds: 0.5 }),
      scrape(3_000, [0, 0, 0, 0], { transactions: 30, writes: 900, transactionSeconds: 2, gcSeconds: 0.7 }),
    );
    assert.equal(figures['in commits %'], 0.5, '1 s of 2 in commits');
    assert.equal(figures['writes/commit'], 40, '800 writes in 20 commits');
    assert.ok(Math.abs((figures['GC %'] as number) - 0.1) < 1e-9, '0.2 s of 2 in GC');
  });

  it('interpolates the p99 within its bucket, from the samples of the window only', () => {
    // 100 samples before the window, all fast; in it 1,000 more: 900 under 1 ms, 80 under 10 ms, 20 under 100 ms.
    const figures = loopFigures(scrape(0, [100, 100, 100, 100]), scrape(1_000, [1_000, 1_080, 1_100, 1_100]));
    // The 990th of 1,000 lies in (10, 100] ms, 10 of its 20 samples in: halfway, 55 ms.
    assert.ok(Math.abs((figures['loop delay p99 ms'] as number) - 55) < 1e-9, `p99 ${figures['loop delay p99 ms']} ms`);
  });

  it('reports the last finite bound when the p99 lies past it, and no p99 without samples', () => {
    assert.equal(loopFigures(scrape(0, [0, 0, 0, 0]), scrape(1_000, [0, 0, 0, 100]))['loop delay p99 ms'], 100);
    assert.ok(Number.isNaN(loopFigures(scrape(0, [5, 5, 5, 5]), scrape(1_000, [5, 5, 5, 5]))['loop delay p99 ms']));
  });
});
